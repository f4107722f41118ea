package main

import (
	"fmt"
	"net/http"
	"net/url"
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

// Found by a walkthrough: in demo mode, registering the webhook (which the page offers as optional)
// flashed "Registered: Bead now sends …", when it is the built-in sandbox that does.
func TestDemoWebhookRegistrationNamesTheSandbox(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"BEAD_API_URL": "", "BEAD_IDENTITY_URL": "",
		"BFF_SANDBOX_ADDR": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}})
	staff := e.client()
	e.login(staff, 0)
	page := e.do(staff, "GET", e.url+"/webhooks", nil, nil)
	m := csrfField.FindSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		t.Fatalf("webhooks page: %d, csrf field found %v", page.status, m != nil)
	}
	if r := e.form(staff, "/webhooks/register", "csrf="+url.QueryEscape(string(m[1]))); r.status != http.StatusSeeOther {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	body := string(e.do(staff, "GET", e.url+"/webhooks?registered=1", nil, nil).body)
	if !strings.Contains(body, "Registered: The sandbox now sends") || strings.Contains(body, "Bead now sends") {
		t.Errorf("demo-mode registration flash does not name the sandbox: %s", flashOf(body))
	}
}

// flashOf is the page's flash paragraph, for a failure message.
func flashOf(body string) string {
	if i := strings.Index(body, `data-testid="flash"`); i >= 0 {
		return body[i:min(len(body), i+200)]
	}
	return "(no flash)"
}
