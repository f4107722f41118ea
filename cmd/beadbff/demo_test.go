package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// In demo mode the first sandbox terminal is also the server's service account; the login page says so,
// on that terminal's demo login only, because it changes what a newcomer sees (its checkouts turn paid
// with nobody logged in, and its last staff logout keeps the realm session the account uses).
func TestDemoLoginNamesTheServiceAccount(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"BEAD_API_URL": "", "BEAD_IDENTITY_URL": "", // demo mode: the embedded sandbox
		"BFF_SANDBOX_ADDR": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}})
	r := e.do(e.client(), "GET", e.url+"/login", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("login page: %d", r.status)
	}
	if n := strings.Count(string(r.body), "(also the server&#39;s service account)") + strings.Count(string(r.body), "(also the server's service account)"); n != 1 {
		t.Errorf("the demo login page names the service account %d times, want once (on its terminal)", n)
	}
}
