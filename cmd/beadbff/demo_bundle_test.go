package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Regression: in demo mode (the embedded sandbox, as `make run` starts it) a simulated fault's incident
// page offered "Email Bead support", a mail to developers@bead.xyz about a firewall that is the sandbox's
// own simulation. There is no one to mail: the bundle says so instead, and its text stays to be read.
func TestDemoBundleOffersNoMailToBead(t *testing.T) {
	sandboxAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"BEAD_API_URL": "", "BEAD_IDENTITY_URL": "", // demo mode: the embedded sandbox
		"BFF_SANDBOX_ADDR": sandboxAddr,
	}})
	app := e.client()
	e.login(app, 0)
	if r := e.do(http.DefaultClient, "POST", "http://"+sandboxAddr+"/_sandbox/faults", map[string]any{"kind": "waf_block", "count": 2}, nil); r.status != http.StatusOK {
		t.Fatalf("fault on the embedded sandbox: %d %s", r.status, r.body)
	}
	r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "2.00", "reference": "demo-bundle"})
	p := r.json(t)
	if r.status != http.StatusBadGateway || p["cause"] != "blocked_before_bead" {
		t.Fatalf("status %d, cause %v, want 502 blocked_before_bead: %s", r.status, p["cause"], r.body)
	}
	support, _ := p["support"].(map[string]any)
	if support["email"] != "" || !strings.Contains(fmt.Sprint(support["note"]), "built-in sandbox") {
		t.Errorf("problem+json support = %v, want no email and a note naming the sandbox", support)
	}
	id, _ := p["incidentId"].(string)
	page := e.do(app, "GET", e.url+"/help/incidents/"+id, nil, nil)
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page.body))
	if err != nil {
		t.Fatal(err)
	}
	bundle := doc.Find(`[data-testid="support-bundle"]`)
	if bundle.Length() != 1 {
		t.Fatalf("incident page (%d) has no support bundle", page.status)
	}
	if n := bundle.Find(`[data-testid="bundle-mailto"]`).Length(); n != 0 {
		t.Error("demo mode offers to mail the bundle")
	}
	if strings.Contains(bundle.Text(), "developers@bead.xyz") || strings.Contains(bundle.Text(), "Email Bead support") {
		t.Errorf("demo mode's bundle names Bead's support address or mail: %q", strings.Join(strings.Fields(bundle.Text()), " "))
	}
	if note := bundle.Find(`[data-testid="bundle-note"]`).Text(); !strings.Contains(note, "built-in sandbox") || !strings.Contains(note, "no one to mail") {
		t.Errorf("bundle note %q, want it to say the sandbox answered and there is no one to mail", note)
	}
	if text := bundle.Find(`[data-testid="bundle-text"]`).Text(); !strings.Contains(text, "x-request-id: ") {
		t.Errorf("bundle text %q, want it kept to be read", text)
	}
	if help := e.do(app, "GET", e.url+"/help/403", nil, nil); !bytes.Contains(help.body, []byte(`data-testid="help-demo-note"`)) {
		t.Errorf("/help/403 (%d) in demo mode does not say there is no one to send a bundle to", help.status)
	}
}
