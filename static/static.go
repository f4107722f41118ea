// Package static owns beadbff's embedded browser assets (the stylesheet, the small script and the favicon)
// and their content-hashed URLs.
//
// Every asset is served under a name that carries the first 8 hex digits of the SHA-256 of its content,
// "app.css" becoming "app.3f2a1b9c.css", so a response for it may be cached for a year as immutable: a
// change to the file changes its URL. Pages ask URL for the current address of an asset; the server asks
// Lookup for the bytes behind a hashed name and serves nothing else.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"slices"
	"strings"
	"sync"
)

// Prefix is the URL path under which the server mounts Lookup.
const Prefix = "/static/"

// CacheControl is the Cache-Control value for a response of Lookup: a hashed name never changes content.
const CacheControl = "public, max-age=31536000, immutable"

//go:embed assets
var assetsFS embed.FS

// asset is one embedded file with its hashed name.
type asset struct {
	content     []byte
	contentType string
	hashedName  string
}

// table indexes the embedded files both ways. It is built once, on first use, from the embedded files,
// which cannot change while the process runs.
type table struct {
	byName   map[string]*asset // "app.css" -> asset
	byHashed map[string]*asset // "app.3f2a1b9c.css" -> asset
	names    []string          // sorted plain names
}

var assets = sync.OnceValue(func() table {
	t, err := buildTable(assetsFS, "assets")
	if err != nil {
		// The files are compiled into the binary, so this only happens if the embed directive and the
		// directory name disagree: a programming error that every test run catches.
		panic("static: " + err.Error())
	}
	return t
})

func buildTable(fsys fs.FS, root string) (table, error) {
	t := table{byName: map[string]*asset{}, byHashed: map[string]*asset{}}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, root+"/")
		a := &asset{content: content, contentType: contentType(name), hashedName: hashedName(name, content)}
		t.byName[name] = a
		t.byHashed[a.hashedName] = a
		t.names = append(t.names, name)
		return nil
	})
	slices.Sort(t.names)
	return t, err
}

// hashedName puts 8 hex digits of the content's SHA-256 before the extension: "app.css" -> "app.3f2a1b9c.css",
// "vendor/qr.min.js" -> "vendor/qr.min.<hash>.js", "LICENSE" -> "LICENSE.<hash>".
func hashedName(name string, content []byte) string {
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:4])
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// knownTypes pins the content types of the asset kinds this package ships, so that they do not depend on
// the host's mime tables.
var knownTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := knownTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// URL returns the path at which the asset of the given plain name is served, e.g. "app.css" ->
// "/static/app.3f2a1b9c.css". For a name that is not embedded it returns "/static/"+name, which Lookup
// does not serve: a typo in a template then shows up as a 404 in the browser, not as a panic in the middle
// of rendering a page. The views' tests check that every asset they link resolves.
func URL(name string) string {
	if a, ok := assets().byName[name]; ok {
		return Prefix + a.hashedName
	}
	return Prefix + name
}

// Lookup returns the content and content type of the asset served as hashedName, the part of the URL after
// "/static/", e.g. "app.3f2a1b9c.css". Plain names and stale hashes are not found: every name Lookup
// serves is immutable, so it can be cached with CacheControl. The content is shared: do not modify it.
func Lookup(hashedName string) (content []byte, contentType string, ok bool) {
	a, ok := assets().byHashed[hashedName]
	if !ok {
		return nil, "", false
	}
	return a.content, a.contentType, true
}

// Names returns the plain names of the embedded assets, sorted, e.g. ["app.css", "app.js", "favicon.svg"].
func Names() []string {
	return slices.Clone(assets().names)
}
