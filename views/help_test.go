package views

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

func sampleHelp() HelpView {
	return HelpView{
		Page:         Page{Nonce: testNonce},
		SupportEmail: "developers@bead.xyz",
		Causes: []HelpCause{
			{Code: "token_expired", Title: "The access token had expired", Meaning: "exp had passed.", Fix: "Refresh the token."},
			{Code: "blocked_before_bead", Title: "Blocked before reaching Bead", Meaning: "A WAF answered.", Fix: "Allow this server's address."},
		},
	}
}

func sampleIncident() IncidentView {
	return IncidentView{
		Page:         loggedInPage(),
		ID:           "Zm9vYmFyYmF6cXV4cXV1eA",
		At:           "2026-12-03T10:02:11Z (UTC)",
		Summary:      "A firewall in front of Bead answered with an HTML 403; Bead never saw the request.",
		Cause:        "blocked_before_bead",
		CauseTitle:   "Blocked before reaching Bead",
		Confidence:   "high",
		HelpURL:      "/help/403#blocked_before_bead",
		RequestID:    "req-7f3a",
		Status:       502,
		StatusText:   "Bad Gateway",
		StatusReason: "the refusal came from something on the way to Bead, not from Bead",
		BeadAnswer:   "A firewall or proxy in front of Bead (not Bead itself) answered 403 Forbidden",
		Evidence: []IncidentEvidence{
			{Fact: "Server: awselb/2.0 is not Bead's API server", Source: "response header Server"},
			{Fact: "the body is an HTML page titled \"403 Forbidden\"", Source: "response body"},
		},
		Fix:   []string{"Allow this server's outgoing address in the WAF."},
		Tried: []string{"Refreshed the access token once.", "Retried the same call once with the new token."},
		Checks: []IncidentCheck{
			{Name: "Authorization header", Status: "passed", Finding: "sent: Bearer eyJhbGciOi… (1187 chars)"},
			{Name: "Network middle-boxes", Status: "failed", Finding: "Server: awselb/2.0"},
			{Name: "Token vs resource ids", Status: "not_applicable", Finding: "no ids in the request"},
		},
		Bundle: &SupportBundle{Timestamp: "2026-12-03T10:02:11Z (UTC)", Path: "POST /payments/crypto", RequestID: "req-7f3a",
			JWTPrefix: "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIiwia2lkIiA6IC", Email: "developers@bead.xyz",
			MailtoURL: "mailto:developers@bead.xyz?subject=x", Text: "Timestamp: …"},
	}
}

// The help guide has one section per cause, reachable by its code as the anchor, and an index linking them.
func TestHelpSectionsAndAnchors(t *testing.T) {
	doc, _ := render(t, Help(sampleHelp()))
	for _, c := range sampleHelp().Causes {
		sec := doc.Find("section#" + c.Code)
		if sec.Length() != 1 || !strings.Contains(sec.Text(), c.Title) || !strings.Contains(sec.Text(), c.Fix) {
			t.Errorf("section %s missing or incomplete", c.Code)
		}
		if doc.Find(`a[href="#`+c.Code+`"]`).Length() != 1 {
			t.Errorf("index does not link #%s", c.Code)
		}
	}
}

func TestIncidentPage(t *testing.T) {
	doc, _ := render(t, Incident(sampleIncident()))
	if got := text(one(t, doc, "incident-cause")); got != "blocked_before_bead" {
		t.Errorf("cause = %q", got)
	}
	if n := doc.Find(`[data-testid="evidence-row"]`).Length(); n != 2 {
		t.Errorf("%d evidence rows, want 2", n)
	}
	rows := doc.Find(`[data-testid="check-row"]`)
	if rows.Length() != 3 {
		t.Fatalf("%d check rows, want 3", rows.Length())
	}
	if got := rows.Eq(1).AttrOr("data-status", ""); got != "failed" {
		t.Errorf("second check status = %q, want failed", got)
	}
	// Both statuses, each with its owner (the page once showed a bare "Error 502" beside a 403 summary).
	if got := strings.Join(strings.Fields(text(one(t, doc, "incident-statuses"))), " "); got != "A firewall or proxy in front of Bead (not Bead itself) answered 403 Forbidden; "+
		"beadbff answered 502 Bad Gateway because the refusal came from something on the way to Bead, not from Bead." {
		t.Errorf("status line = %q", got)
	}
	if got := text(one(t, doc, "bundle-jwt-prefix")); len(got) != 50 {
		t.Errorf("bundle JWT prefix %q has %d characters, want 50", got, len(got))
	}
}

// The help pages' whole <main>, pinned; `go test ./views -update` rewrites them after a deliberate change.
func TestHelpPagesGolden(t *testing.T) {
	tests := []struct {
		name string
		doc  *goquery.Document
	}{
		{"help_403", first(render(t, Help(sampleHelp())))},
		{"incident", first(render(t, Incident(sampleIncident())))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, tt.doc) })
	}
}

func first[A, B any](a A, _ B) A { return a }
