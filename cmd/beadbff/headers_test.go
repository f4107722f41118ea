package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// Every page: a CSP whose script nonce is fresh per response and that allows no inline script or style,
// nosniff, a Referrer-Policy, a Permissions-Policy; frame-ancestors 'none' except on /embed; pages that
// hold session data never stored by a cache; static assets content-hashed and immutable.
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"FRAME_ANCESTORS": merchantOrigin}})
	p := e.createPayment(0, "8.00", "headers")
	staff := e.client()
	e.login(staff, 0)

	type page struct {
		name    string
		c       *http.Client
		path    string
		status  int
		embed   bool
		noStore bool // holds session data (or a per-response token)
	}
	pages := []page{
		{"login", e.client(), "/login", 200, false, true},
		{"help, logged out", e.client(), "/help/403", 200, false, false},
		{"help, logged in", staff, "/help/403", 200, false, true},
		{"dashboard", staff, "/", 200, false, true},
		{"new payment", staff, "/payments/new", 200, false, true},
		{"payment", staff, "/payments/" + p["trackingId"].(string), 200, false, true},
		{"404 page", staff, "/nope", 404, false, true},
		{"embedded checkout", e.client(), strings.TrimPrefix(p["checkoutUrl"].(string), e.url), 200, true, true},
		{"embedded checkout, unknown", e.client(), "/embed/checkout/" + strings.Repeat("B", 43), 404, true, true},
	}
	nonce := regexp.MustCompile(`script-src 'self' 'nonce-([A-Za-z0-9+/]{22})'`)
	seen := map[string]bool{}
	for _, pg := range pages {
		t.Run(pg.name, func(t *testing.T) {
			r := e.do(pg.c, "GET", e.url+pg.path, nil, nil)
			if r.status != pg.status {
				t.Fatalf("%d, want %d", r.status, pg.status)
			}
			csp := r.header.Get("Content-Security-Policy")
			m := nonce.FindStringSubmatch(csp)
			switch {
			case m == nil:
				t.Errorf("CSP %q has no script nonce", csp)
			case seen[m[1]]:
				t.Errorf("nonce %s used twice", m[1])
			case !strings.Contains(string(r.body), `nonce="`+m[1]+`"`):
				t.Errorf("the page's script does not carry the response's nonce")
			}
			if m != nil {
				seen[m[1]] = true
			}
			for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*;"} {
				if strings.Contains(csp, bad) {
					t.Errorf("CSP allows %s: %q", bad, csp)
				}
			}
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "base-uri 'none'") {
				t.Errorf("CSP %q lacks default-src 'none' or base-uri 'none'", csp)
			}
			wantFrame := "frame-ancestors 'none'"
			if pg.embed {
				wantFrame = "frame-ancestors " + merchantOrigin
			}
			if !strings.HasSuffix(csp, wantFrame) {
				t.Errorf("CSP %q, want %s", csp, wantFrame)
			}
			for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin", "X-Frame-Options": ""} {
				if got := r.header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if pp := r.header.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") || !strings.Contains(pp, "geolocation=()") {
				t.Errorf("Permissions-Policy %q", pp)
			}
			if r.header.Get("Strict-Transport-Security") != "" {
				t.Error("HSTS on a plain-http public URL: browsers ignore it there, and it would be a lie")
			}
			if cc := r.header.Get("Cache-Control"); pg.noStore && cc != "no-store" {
				t.Errorf("Cache-Control %q on a page with session data, want no-store", cc)
			}
		})
	}

	// Static assets: content-hashed names cached for a year; a plain or stale name is not served.
	dash := e.do(staff, "GET", e.url+"/", nil, nil)
	assets := regexp.MustCompile(`/static/[a-z0-9-]+\.[0-9a-f]{8}\.(?:css|js|svg)`).FindAllString(string(dash.body), -1)
	if len(assets) < 3 {
		t.Fatalf("dashboard links %d hashed assets, want app.css, app.js and the favicon", len(assets))
	}
	for _, a := range assets {
		r := e.do(e.client(), "GET", e.url+a, nil, nil)
		if r.status != 200 || r.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %d %q", a, r.status, r.header.Get("Cache-Control"))
		}
	}
	for _, stale := range []string{"/static/app.css", "/static/app.00000000.css"} {
		if r := e.do(e.client(), "GET", e.url+stale, nil, nil); r.status != 404 {
			t.Errorf("%s: %d, want 404", stale, r.status)
		}
	}
}

// HSTS is sent when the public URL is https (even though a proxy in front terminates TLS).
func TestHSTSWhenPublicURLIsHTTPS(t *testing.T) {
	port := freePort(t)
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"BFF_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "BFF_PUBLIC_URL": "https://pay.shop.example"}})
	r := e.do(e.client(), "GET", e.url+"/login", nil, nil)
	if got := r.header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS %q", got)
	}
	// Under https the login form's cookie takes the __Host- prefix and is Secure.
	found := false
	for _, sc := range r.header.Values("Set-Cookie") {
		if strings.Contains(sc, "beadbff_login") {
			found = true
			if !strings.HasPrefix(sc, "__Host-beadbff_login=") || !strings.Contains(sc, "secure") {
				t.Errorf("login form cookie under https: %q", sc)
			}
		}
	}
	if !found {
		t.Errorf("no login form cookie set: %v", r.header.Values("Set-Cookie"))
	}
}
