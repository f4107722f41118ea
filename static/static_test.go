package static

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestNames(t *testing.T) {
	want := []string{"app.css", "app.js", "beadbff-embed.js", "embed.css", "embed.js", "favicon.svg", "live.js"}
	if diff := cmp.Diff(want, Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	// Callers get their own copy.
	Names()[0] = "changed"
	if Names()[0] != "app.css" {
		t.Error("Names returned the shared slice")
	}
}

func TestURLIsHashedAndStable(t *testing.T) {
	hashed := regexp.MustCompile(`^/static/app\.[0-9a-f]{8}\.css$`)
	first := URL("app.css")
	if !hashed.MatchString(first) {
		t.Fatalf("URL(app.css) = %q, want /static/app.<8 hex>.css", first)
	}
	if again := URL("app.css"); again != first {
		t.Errorf("URL changed between calls: %q then %q", first, again)
	}
	content, _, _ := Lookup(strings.TrimPrefix(first, Prefix))
	sum := sha256.Sum256(content)
	if want := "/static/app." + hex.EncodeToString(sum[:])[:8] + ".css"; first != want {
		t.Errorf("URL = %q, want the first 8 hex digits of the content's SHA-256: %q", first, want)
	}
}

func TestURLOfUnknownNameIsUnhashed(t *testing.T) {
	if got := URL("missing.css"); got != "/static/missing.css" {
		t.Errorf("URL(missing.css) = %q", got)
	}
	if _, _, ok := Lookup("missing.css"); ok {
		t.Error("Lookup serves the unhashed URL of a missing asset")
	}
}

func TestLookup(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			hashedName := strings.TrimPrefix(URL(name), Prefix)
			content, _, ok := Lookup(hashedName)
			if !ok || len(content) == 0 {
				t.Fatalf("Lookup(%q) = %d bytes, %v", hashedName, len(content), ok)
			}
			want, err := assetsFS.ReadFile("assets/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if string(content) != string(want) {
				t.Error("Lookup returned other content than the embedded file")
			}
		})
	}
}

func TestLookupRefusesAnythingButTheCurrentHashedName(t *testing.T) {
	current := strings.TrimPrefix(URL("app.js"), Prefix)
	tests := []struct {
		name, lookup string
	}{
		{"plain name", "app.js"},
		{"wrong hash", "app.00000000.js"},
		{"with the /static/ prefix", Prefix + current},
		{"other extension", strings.TrimSuffix(current, ".js") + ".css"},
		{"empty", ""},
		{"path traversal", "../static.go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if content, _, ok := Lookup(tt.lookup); ok || content != nil {
				t.Errorf("Lookup(%q) found %d bytes", tt.lookup, len(content))
			}
		})
	}
}

func TestContentTypes(t *testing.T) {
	tests := []struct{ name, want string }{
		{"app.css", "text/css; charset=utf-8"},
		{"app.js", "text/javascript; charset=utf-8"},
		{"favicon.svg", "image/svg+xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, ok := Lookup(strings.TrimPrefix(URL(tt.name), Prefix))
			if !ok || got != tt.want {
				t.Errorf("content type = %q (found %v), want %q", got, ok, tt.want)
			}
		})
	}
	if got := contentType("data.unknownext"); got != "application/octet-stream" {
		t.Errorf("unknown extension: %q", got)
	}
}

func TestHashedName(t *testing.T) {
	content := []byte("body{}")
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:4])
	tests := []struct{ name, want string }{
		{"app.css", "app." + hash + ".css"},
		{"vendor/qr.min.js", "vendor/qr.min." + hash + ".js"},
		{"LICENSE", "LICENSE." + hash},
	}
	for _, tt := range tests {
		if got := hashedName(tt.name, content); got != tt.want {
			t.Errorf("hashedName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBuildTableIncludesSubdirectories(t *testing.T) {
	fsys := fstest.MapFS{
		"assets/a.css":         {Data: []byte("a")},
		"assets/vendor/lib.js": {Data: []byte("lib")},
	}
	tab, err := buildTable(fsys, "assets")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.css", "vendor/lib.js"}, tab.names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if a := tab.byName["vendor/lib.js"]; a == nil || tab.byHashed[a.hashedName] != a {
		t.Error("vendor/lib.js is not indexed by its hashed name")
	}
}

// The script must stay CSP-safe: no eval or string-to-code constructs.
func TestAppJSHasNoDynamicCode(t *testing.T) {
	js, err := assetsFS.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, banned := range []string{"eval(", "new Function", "innerHTML", "document.write", "setTimeout(\"", "setInterval("} {
		if strings.Contains(string(js), banned) {
			t.Errorf("app.js contains %q", banned)
		}
	}
}
