package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Regression: the incident page's header said "Error 502" while its summary spoke of Bead's 403 (a WAF
// block), and "Error 403" beside "Bead answered Unauthorized (401)" (a stripped Authorization header),
// with nothing saying which status was whose. Now the page names both: what came back from the call to
// Bead (and from whom), and what beadbff answered and why; no bare status is left without its owner.
func TestIncidentPageNamesBeadsStatusAndOurs(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	tests := []struct {
		name       string
		fault      map[string]any
		ours       string // beadbff's answer, as the page words it
		bead       string // what came back from the call to Bead, as the page words it
		reasonHint string // a piece of the reason for ours
	}{
		{"a WAF's 403 is answered 502", map[string]any{"kind": "waf_block", "count": 2},
			"beadbff answered 502 Bad Gateway", "A firewall or proxy in front of Bead (not Bead itself) answered 403 Forbidden", "not from Bead"},
		// Once "403 Forbidden because Bead refused the request", against a diagnosis saying a middle-box
		// stripped the header: the request was broken on the way, as with the WAF, so it is a 502 too.
		{"Bead's 401 for a stripped header is answered 502", map[string]any{"kind": "strip_authorization", "count": 2},
			"beadbff answered 502 Bad Gateway", "Bead answered 401 Unauthorized", "did not reach Bead intact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.sb("DELETE", "/_sandbox/faults", nil)
			e.sb("POST", "/_sandbox/faults", tt.fault)
			r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "2.00", "reference": "two-statuses"})
			id, _ := r.json(t)["incidentId"].(string)
			if id == "" {
				t.Fatalf("no incident: %d %s", r.status, r.body)
			}
			page := e.do(app, "GET", e.url+"/help/incidents/"+id, nil, nil)
			if page.status != http.StatusOK {
				t.Fatalf("incident page: %d", page.status)
			}
			doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page.body))
			if err != nil {
				t.Fatal(err)
			}
			text := func(testID string) string {
				t.Helper()
				s := doc.Find(`[data-testid="` + testID + `"]`)
				if s.Length() != 1 {
					t.Fatalf("want one %s on the incident page, got %d", testID, s.Length())
				}
				return strings.Join(strings.Fields(s.Text()), " ")
			}
			if got := text("incident-our-status"); got != tt.ours {
				t.Errorf("our status = %q, want %q", got, tt.ours)
			}
			if got := text("incident-bead-status"); got != tt.bead {
				t.Errorf("Bead's status = %q, want %q", got, tt.bead)
			}
			if got := text("incident-status-reason"); !strings.Contains(got, tt.reasonHint) {
				t.Errorf("reason = %q, want it to say %q", got, tt.reasonHint)
			}
			line := text("incident-statuses")
			if !strings.HasPrefix(line, tt.bead+"; "+tt.ours+" because ") || !strings.HasSuffix(line, ".") {
				t.Errorf("status line = %q, want one sentence: Bead's status; ours because …", line)
			}
			// No number on the page outside the status line stands without its owner: the old eyebrow
			// "Error 502" is gone.
			if eyebrow := strings.TrimSpace(doc.Find(".eyebrow").First().Text()); strings.ContainsAny(eyebrow, "0123456789") {
				t.Errorf("eyebrow %q still shows a bare status", eyebrow)
			}
		})
	}
}
