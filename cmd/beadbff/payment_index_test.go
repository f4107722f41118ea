package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Regression: the "Token vs resource ids" check never used the payment index. Only the diagnosis's own
// tests set Resource.TrackingOwner, so every incident of a payment read said "Not applicable: the request
// reads payment …, whose terminal this server does not know", even for a payment this server had just
// created with the same terminal, and another terminal's payment was judged from the /currencies probe
// alone. The server now reads its index for the session's terminal before diagnosing a payment read.
func TestIncidentOfAPaymentReadUsesThePaymentIndex(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	owner := e.client()
	ownerTerm := e.login(owner, 0)
	created := e.api(owner, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "3.00", "reference": "indexed"})
	id, _ := created.json(t)["trackingId"].(string)
	if created.status != http.StatusCreated || id == "" {
		t.Fatalf("create: %d %s", created.status, created.body)
	}

	t.Run("this terminal's own payment", func(t *testing.T) {
		e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "rate_limit", "count": 1})
		r := e.api(owner, "GET", "/api/v1/payments/"+id, nil)
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429: %s", r.status, r.body)
		}
		status, finding := resourceCheck(t, r)
		if status != "passed" || !strings.Contains(finding, "which the token's terminal "+ownerTerm.TerminalID+" created (payment index)") {
			t.Errorf("resource check %s: %q; want passed, naming the payment index", status, finding)
		}
		if ev := evidenceFrom(t, e, owner, r, "payment index"); !strings.Contains(ev, "was created through this server by terminal "+ownerTerm.TerminalID) {
			t.Errorf("payment-index evidence %q, want it to say this terminal created the payment", ev)
		}
	})

	t.Run("another terminal reads it", func(t *testing.T) {
		other := e.client()
		otherTerm := e.login(other, 1)
		r := e.api(other, "GET", "/api/v1/payments/"+id, nil)
		if r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403: %s", r.status, r.body)
		}
		p := r.json(t)
		// Still medium: not being in this terminal's index does not prove the payment another's (it may
		// have been made without this server, or expired from the index), and this server never reads
		// another terminal's index to find out.
		if p["cause"] != "terminal_mismatch" || p["confidence"] != "medium" {
			t.Errorf("cause %v (%v), want terminal_mismatch (medium)", p["cause"], p["confidence"])
		}
		status, finding := resourceCheck(t, r)
		if status != "not_applicable" || !strings.Contains(finding, "which terminal "+otherTerm.TerminalID+" did not create through this server (payment index)") {
			t.Errorf("resource check %s: %q; want it to say the index was read and holds no such payment", status, finding)
		}
		ev := evidenceFrom(t, e, other, r, "payment index")
		if !strings.Contains(ev, "is not among the payments terminal "+otherTerm.TerminalID+" created through this server") {
			t.Errorf("payment-index evidence %q, want it to say the payment is not this terminal's here", ev)
		}
		if strings.Contains(ev, ownerTerm.TerminalID) {
			t.Errorf("the other terminal's page names the owner %s: %q", ownerTerm.TerminalID, ev)
		}
	})
}

// resourceCheck is the "Token vs resource ids" step of a problem+json's checklist.
func resourceCheck(t *testing.T, r reply) (status, finding string) {
	t.Helper()
	checks, _ := r.json(t)["checks"].([]any)
	for _, c := range checks {
		if m, _ := c.(map[string]any); m["id"] == "resource" {
			status, _ = m["status"].(string)
			finding, _ = m["finding"].(string)
			return status, finding
		}
	}
	t.Fatalf("no resource check: %s", r.body)
	return "", ""
}

// evidenceFrom is the facts of the incident page's evidence rows whose source is source, joined.
func evidenceFrom(t *testing.T, e *env, c *http.Client, r reply, source string) string {
	t.Helper()
	id, _ := r.json(t)["incidentId"].(string)
	page := e.do(c, "GET", e.url+"/help/incidents/"+id, nil, nil)
	if page.status != http.StatusOK {
		t.Fatalf("incident page: %d", page.status)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page.body))
	if err != nil {
		t.Fatal(err)
	}
	var facts []string
	doc.Find(`[data-testid="evidence-row"]`).Each(func(_ int, row *goquery.Selection) {
		if strings.TrimSpace(row.Find("td.source").Text()) == source {
			facts = append(facts, strings.TrimSpace(row.Find("td").First().Text()))
		}
	})
	return strings.Join(facts, "; ")
}
