package main

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Regression: when Bead refused the create of the HTML form (a WAF in between, a rate limit), the staff
// member landed on the incident page and what they had typed was lost. Now the form comes back, with the
// problem's status, holding the amount, reference and description as typed, under a banner that names
// the cause in plain words and links to the incident page, which opens for this session only. No payment
// is recorded, and no token or password is on the page.
func TestFormCreateRefusedKeepsInput(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	staff := e.client()
	term := e.login(staff, 0)
	dash := e.do(staff, "GET", e.url+"/", nil, nil)
	csrf := csrfField.FindSubmatch(dash.body)
	if csrf == nil {
		t.Fatal("no form token on the dashboard")
	}
	const (
		amount      = "12.34"
		reference   = "order-<5501>"
		description = `Two coffees & a "croissant"`
	)
	body := url.Values{"amount": {amount}, "reference": {reference}, "description": {description}, "csrf": {string(csrf[1])}}.Encode()

	tests := []struct {
		name       string
		fault      map[string]any
		status     int
		cause      string
		causeTitle string // the cause in plain words
		advice     string
	}{
		// Two blocks: the first refusal is retried once after a refresh, and the WAF refuses that too.
		{"a WAF in front of Bead", map[string]any{"kind": "waf_block", "count": 2}, http.StatusBadGateway,
			"blocked_before_bead", "Blocked before reaching Bead", "fail the same way until the cause is fixed"},
		{"rate limited by Bead", map[string]any{"kind": "rate_limit", "count": 1}, http.StatusTooManyRequests,
			"rate_limited", "Rate limited by Bead", "then create it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.sb("DELETE", "/_sandbox/faults", nil)
			e.sb("POST", "/_sandbox/faults", tt.fault)
			r := e.form(staff, "/payments", body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want the form page", ct)
			}
			if tt.cause == "rate_limited" && r.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			doc, err := goquery.NewDocumentFromReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			find := func(sel string) *goquery.Selection {
				t.Helper()
				s := doc.Find(sel)
				if s.Length() != 1 {
					t.Fatalf("want one %s on the page shown again, got %d (title %q)", sel, s.Length(), doc.Find("title").Text())
				}
				return s
			}
			// What was typed is in the form again, exactly.
			form := find(`[data-testid="new-payment-form"]`)
			for name, want := range map[string]string{"amount": amount, "reference": reference} {
				if got, _ := form.Find(`input[name="` + name + `"]`).Attr("value"); got != want {
					t.Errorf("%s = %q, want %q as typed", name, got, want)
				}
			}
			if got := form.Find(`textarea[name="description"]`).Text(); got != description {
				t.Errorf("description = %q, want %q as typed", got, description)
			}
			if got, _ := form.Find(`input[name="csrf"]`).Attr("value"); got != string(csrf[1]) {
				t.Errorf("form token %q, want the session's, so that the form can be sent again", got)
			}
			// The banner says why, in words, and leads to the diagnosis.
			banner := find(`[data-testid="create-failure"]`)
			if got := strings.TrimSpace(banner.Find(`[data-testid="create-failure-heading"]`).Text()); got != "The payment was not created." {
				t.Errorf("banner heading %q", got)
			}
			if got := strings.TrimSpace(banner.Find(`[data-testid="create-failure-cause-title"]`).Text()); got != tt.causeTitle {
				t.Errorf("cause in words %q, want %q", got, tt.causeTitle)
			}
			if got := strings.TrimSpace(banner.Find(`[data-testid="create-failure-cause"]`).Text()); got != tt.cause {
				t.Errorf("cause code %q, want %s", got, tt.cause)
			}
			if got := banner.Find(`[data-testid="create-failure-advice"]`).Text(); !strings.Contains(got, tt.advice) {
				t.Errorf("advice %q, want it to say %q", got, tt.advice)
			}
			if got := strings.TrimSpace(banner.Find(`[data-testid="create-failure-request-id"]`).Text()); got != r.header.Get("X-Request-Id") {
				t.Errorf("request id %q, want this answer's %q", got, r.header.Get("X-Request-Id"))
			}
			link, _ := banner.Find(`[data-testid="create-failure-incident"]`).Attr("href")
			id, ok := strings.CutPrefix(link, "/help/incidents/")
			if !ok || len(id) != 22 {
				t.Fatalf("incident link %q, want /help/incidents/{id}", link)
			}
			// The incident page opens for this session, names the cause, and is nobody else's to see.
			inc := e.do(staff, "GET", e.url+link, nil, nil)
			if inc.status != http.StatusOK || !bytes.Contains(inc.body, []byte(`data-testid="incident-cause">`+tt.cause+`<`)) {
				t.Errorf("incident page %s: %d, want it to name %s", link, inc.status, tt.cause)
			}
			if !bytes.Contains(inc.body, []byte(r.header.Get("X-Request-Id"))) {
				t.Errorf("incident page does not carry the refused create's request id")
			}
			if tt.cause == "blocked_before_bead" && !bytes.Contains(inc.body, []byte(`data-testid="support-bundle"`)) {
				t.Error("incident page lacks the support bundle")
			}
			other := e.client()
			e.login(other, 1)
			if r := e.do(other, "GET", e.url+link, nil, nil); r.status != http.StatusNotFound {
				t.Errorf("another session opens the incident: %d", r.status)
			}
			// Nothing secret on the page shown again; and no payment was made.
			if m := fullJWT.Find(r.body); m != nil {
				t.Errorf("the page holds a whole token %.60s…", m)
			}
			if bytes.Contains(r.body, []byte(term.Password)) {
				t.Error("the page holds the password")
			}
			if list := e.api(staff, "GET", "/api/v1/payments", nil).json(t); len(list["payments"].([]any)) != 0 {
				t.Errorf("a refused create left payments: %v", list)
			}
		})
	}

	// The same form, once Bead accepts again, makes the payment: the input shown again is good to send.
	e.sb("DELETE", "/_sandbox/faults", nil)
	if r := e.form(staff, "/payments", body); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/payments/") {
		t.Errorf("sent again: %d %q, want a redirect to the new payment", r.status, r.header.Get("Location"))
	}
}
