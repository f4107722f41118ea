package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Behind https the cookie is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/ with no Domain, HSTS is on,
// and no answer (login included) carries a token.
func TestBreakSecureCookieAttributes(t *testing.T) {
	port := freePort(t)
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"BFF_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "BFF_PUBLIC_URL": fmt.Sprintf("https://localhost:%d", port)}})
	term := e.sandbox.Terminals()[0]
	r := e.api(e.client(), "POST", "/api/v1/session", map[string]string{"username": term.TerminalID, "password": term.Password})
	if r.status != http.StatusCreated {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	sc := r.header.Get("Set-Cookie")
	for _, want := range []string{"__Host-beadbff_session=", "HttpOnly", "Secure", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(strings.ToLower(sc), strings.ToLower(want)) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(strings.ToLower(sc), "domain=") {
		t.Errorf("Set-Cookie %q has a Domain", sc)
	}
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS under https")
	}
	if strings.Contains(string(r.body), "eyJ") || strings.Contains(string(r.body), term.Password) {
		t.Errorf("login answer carries a token: %s", r.body)
	}
}
