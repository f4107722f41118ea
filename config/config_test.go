package config

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func key(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

func TestLoadDefaultsAreDemoMode(t *testing.T) {
	c := Load(env(nil))
	if ps := c.Validate(); ps != nil {
		t.Fatalf("defaults should be valid, got %v", ps)
	}
	got := map[string]any{
		"Addr": c.Addr, "PublicURL": c.PublicURL.String(), "Demo": c.Demo, "ClientID": c.BeadClientID,
		"Scope": c.BeadScope, "Suffix": c.UsernameSuffix, "Secure": c.Secure(), "Origin": c.Origin(),
		"Idle": c.SessionIdleTimeout, "Timeout": c.BeadTimeout,
	}
	want := map[string]any{
		"Addr": "127.0.0.1:8080", "PublicURL": "http://localhost:8080", "Demo": true, "ClientID": "bead-terminal",
		"Scope": "openid profile email", "Suffix": "@beadpay.io", "Secure": false, "Origin": "http://localhost:8080",
		"Idle": 8 * time.Hour, "Timeout": 10 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadProduction(t *testing.T) {
	c := Load(env(map[string]string{
		"BFF_PUBLIC_URL":         "https://pay.shop.example",
		"BEAD_API_URL":           "https://api.test.devs.beadpay.io/",
		"BEAD_IDENTITY_URL":      "https://identity.beadpay.io/realms/nonprod",
		"SESSION_KEYS":           key('a') + " , " + key('b'),
		"BEAD_WEBHOOK_SECRET":    base64.StdEncoding.EncodeToString([]byte("whsec")),
		"CORS_ALLOWED_ORIGINS":   "https://shop.example, https://*.shop.example",
		"REDIS_URL":              "redis://:hunter2@127.0.0.1:6379/0",
		"BEAD_TERMINAL_USERNAME": "t1",
		"BEAD_TERMINAL_PASSWORD": "pw-secret",
	}))
	if ps := c.Validate(); ps != nil {
		t.Fatalf("unexpected problems: %v", ps)
	}
	if c.Demo || !c.Secure() || c.BeadAPIURL != "https://api.test.devs.beadpay.io" || len(c.SessionKeys) != 2 ||
		len(c.CORSAllowedOrigins) != 2 || string(c.WebhookSecrets[0]) != "whsec" {
		t.Errorf("loaded wrongly: %+v", c)
	}
	s := c.String()
	for _, secret := range []string{"hunter2", "pw-secret", key('a'), "whsec", base64.StdEncoding.EncodeToString([]byte("whsec"))} {
		if strings.Contains(s, secret) {
			t.Errorf("String() leaks %q:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, "redis://:REDACTED@127.0.0.1:6379/0") {
		t.Errorf("String() should show the Redis URL with its password redacted:\n%s", s)
	}
}

// Validate must report every problem at once, each naming its variable.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := Load(env(map[string]string{
		"BFF_ADDR":               "nonsense",
		"BFF_PUBLIC_URL":         "ftp://x",
		"BEAD_API_URL":           "not a url",
		"BEAD_SCOPE":             "profile email",
		"SESSION_KEYS":           base64.StdEncoding.EncodeToString([]byte("short")),
		"BEAD_TIMEOUT":           "soon",
		"REDIS_URL":              "http://localhost:6379",
		"CORS_ALLOWED_ORIGINS":   "*,null,https://*.com,https://shop.example/path,https://a.*.example.com",
		"BEAD_TERMINAL_USERNAME": "only-user",
		"LOG_FORMAT":             "xml",
	}))
	ps := c.Validate()
	got := map[string]int{}
	for _, p := range ps {
		got[p.Var]++
	}
	want := map[string]int{
		"BFF_ADDR": 1, "BFF_PUBLIC_URL": 1, "BEAD_API_URL": 1, "BEAD_IDENTITY_URL": 1, "BEAD_SCOPE": 1,
		"SESSION_KEYS": 1, "BEAD_TIMEOUT": 1, "REDIS_URL": 1, "CORS_ALLOWED_ORIGINS": 5,
		"BEAD_TERMINAL_USERNAME": 1, "LOG_FORMAT": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems per variable (-want +got):\n%s\nall: %v", diff, ps)
	}
}

func TestCheckOriginPattern(t *testing.T) {
	tests := []struct {
		origin string
		ok     bool
	}{
		{"https://shop.example.com", true},
		{"http://localhost:3000", true},
		{"https://*.example.com", true},
		{"https://*.example.com:8443", true},
		{"*", false},
		{"null", false},
		{"https://*", false},
		{"https://*.com", false},
		{"https://a.*.example.com", false},
		{"https://*example.com", false},
		{"https://shop.example.com/", false},
		{"https://shop.example.com/path", false},
		{"ftp://shop.example.com", false},
		{"shop.example.com", false},
		{"https://user@shop.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			err := CheckOriginPattern(tt.origin)
			if (err == nil) != tt.ok {
				t.Errorf("CheckOriginPattern(%q) = %v, want ok=%v", tt.origin, err, tt.ok)
			}
		})
	}
}

func TestIdentityWithoutAPIIsAProblem(t *testing.T) {
	c := Load(env(map[string]string{"BEAD_IDENTITY_URL": "https://identity.beadpay.io/realms/nonprod"}))
	ps := c.Validate()
	if len(ps) != 1 || ps[0].Var != "BEAD_IDENTITY_URL" {
		t.Errorf("want one BEAD_IDENTITY_URL problem, got %v", ps)
	}
}

func TestAddrPortRange(t *testing.T) {
	c := Load(env(map[string]string{"BFF_ADDR": "127.0.0.1:99999", "BFF_SANDBOX_ADDR": "127.0.0.1:-1"}))
	got := map[string]int{}
	for _, p := range c.Validate() {
		got[p.Var]++
	}
	if diff := cmp.Diff(map[string]int{"BFF_ADDR": 1, "BFF_SANDBOX_ADDR": 1}, got); diff != "" {
		t.Errorf("out-of-range ports (-want +got):\n%s", diff)
	}
}

// Moving the listen port moves the default public URL with it, and a loopback public URL on another port
// than the server listens on is refused (a regression: changing BFF_ADDR alone once broke every login).
func TestPublicURLFollowsListenPort(t *testing.T) {
	c := Load(env(map[string]string{"BFF_ADDR": "127.0.0.1:18080"}))
	if ps := c.Validate(); ps != nil || c.Origin() != "http://localhost:18080" {
		t.Errorf("BFF_ADDR alone: origin %q, problems %v; want http://localhost:18080 and none", c.Origin(), ps)
	}
	c = Load(env(map[string]string{"BFF_ADDR": "127.0.0.1:18080", "BFF_PUBLIC_URL": "http://localhost:8080"}))
	ps := c.Validate()
	if len(ps) != 1 || ps[0].Var != "BFF_PUBLIC_URL" {
		t.Errorf("loopback public URL on another port: %v, want one BFF_PUBLIC_URL problem", ps)
	}
	c = Load(env(map[string]string{"BFF_ADDR": "0.0.0.0:8080", "BFF_PUBLIC_URL": "https://pay.shop.example"}))
	if ps := c.Validate(); ps != nil {
		t.Errorf("behind a proxy on another port: %v, want none", ps)
	}
}
