package bff

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"beadbff/bff/bead"
)

// Regression: the support bundle was written for Bead's support whoever had answered. Beside a WAF's
// block ("Bead never saw the request") it said "With these details Bead's support can find your request
// in their logs", and the mail's subject was "Request refused by the payments API". The bundle now
// follows who answered (the diagnosis's AnsweredBy), as the page's status line does.
func TestSupportBundleFollowsWhoAnswered(t *testing.T) {
	w := newPageWorld(t)
	tests := []struct {
		name    string
		edit    func(*bead.Config)
		faults  map[string]int
		steps   func() []frontStep
		heading string
		intro   []string // pieces of the bundle's paragraph, in order
		notSaid string   // words it must not say
		subject string
		mail    string   // the mail link's words
		answer  string   // the text's "Answer:" line
		lines   []string // other lines the text must hold (a walkthrough found the WAF's text silent on both)
	}{
		{name: "waf_block: a WAF's 403", faults: map[string]int{"waf_block": 2},
			heading: "Still blocked? Send this to whoever runs the firewall",
			intro:   []string{"The request did not reach Bead", "your network team", "Bead's support only when", "Bead's own"},
			notSaid: "can find your request in their logs",
			subject: "[SANDBOX] [P2] Request blocked before reaching the payments API",
			mail:    "Email Bead support (only if the firewall is Bead's)",
			answer:  "Answer: A firewall or proxy in front of Bead (not Bead itself) answered 403 Forbidden",
			lines:   []string{"Reached Bead: no (refused by a firewall or proxy in front of it)", "beadbff answered: 502 Bad Gateway"}},
		{name: "a load balancer's HTML 502", steps: func() []frontStep { return []frontStep{proxys502} },
			heading: "Still failing? Send this to whoever runs the proxy",
			intro:   []string{"A proxy in front of Bead answered, not Bead", "your network team"},
			notSaid: "can find your request in their logs",
			subject: "[SANDBOX] [P2] Request to the payments API failed at a proxy in front of it",
			mail:    "Email Bead support (only if the proxy is Bead's)",
			answer:  "Answer: A firewall or proxy in front of Bead (not Bead itself) answered 502 Bad Gateway"},
		{name: "Bead's own 403 for another client's token, after the retry", edit: func(c *bead.Config) { c.ClientID = "bead-integrator" },
			heading: "Still blocked? Send this to Bead support",
			intro:   []string{"Refreshing the token and trying again did not help. With these details Bead's support can find your request in their logs."},
			notSaid: "firewall",
			subject: "[SANDBOX] [P2] Request refused by the payments API",
			mail:    "Email Bead support",
			answer:  "Answer: Bead answered 403 Forbidden"},
		{name: "Bead's own 500: no retry, no refusal", steps: func() []frontStep { return []frontStep{beads500} },
			heading: "Still failing? Send this to Bead support",
			intro:   []string{"With these details Bead's support can find your request in their logs."},
			notSaid: "Refreshing the token",
			subject: "[SANDBOX] [P2] Request to the payments API failed",
			mail:    "Email Bead support",
			answer:  "Answer: Bead answered 500 Internal Server Error",
			lines:   []string{"beadbff answered: 502 Bad Gateway"}},
		{name: "no answer within BEAD_TIMEOUT", edit: func(c *bead.Config) { c.Timeout = 300 * time.Millisecond }, faults: map[string]int{"slow": 1},
			heading: "Still failing? Send this to Bead support",
			intro:   []string{"If the request reached Bead, these details let Bead's support find it in their logs."},
			notSaid: "Refreshing the token",
			subject: "[SANDBOX] [P2] Request to the payments API failed",
			mail:    "Email Bead support"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.clearFaults()
			e := w.serve(tt.edit, 0, 0)
			for kind, n := range tt.faults {
				w.fault(kind, n)
			}
			if tt.steps != nil {
				w.front.steps = tt.steps()
			}
			t.Cleanup(func() { w.front.steps = nil })
			p := e.create(t, `{"requestedAmount":"2.00","reference":"bundle"}`)
			id, _ := p["incidentId"].(string)
			if id == "" {
				t.Fatalf("no incident: %v", p)
			}
			pg := e.page(t, id)
			if got := pg.text("bundle-heading"); got != tt.heading {
				t.Errorf("heading %q, want %q", got, tt.heading)
			}
			intro := pg.text("bundle-intro")
			rest := intro
			for _, piece := range tt.intro {
				i := strings.Index(rest, piece)
				if i < 0 {
					t.Errorf("bundle paragraph %q lacks %q (in order)", intro, piece)
					break
				}
				rest = rest[i+len(piece):]
			}
			if strings.Contains(intro, tt.notSaid) {
				t.Errorf("bundle paragraph says %q: %q", tt.notSaid, intro)
			}
			link := pg.doc.Find(`[data-testid="bundle-mailto"]`)
			if got := strings.TrimSpace(link.Text()); got != tt.mail {
				t.Errorf("mail link %q, want %q", got, tt.mail)
			}
			href, _ := link.Attr("href")
			mail, err := url.Parse(href)
			if err != nil {
				t.Fatal(err)
			}
			if got := mail.Query().Get("subject"); got != tt.subject {
				t.Errorf("mail subject %q, want %q", got, tt.subject)
			}
			text := pg.text("bundle-text")
			if tt.answer != "" && !strings.Contains(text, tt.answer) {
				t.Errorf("bundle text %q lacks %q", text, tt.answer)
			}
			for _, line := range tt.lines {
				if !strings.Contains(text, line) {
					t.Errorf("bundle text %q lacks %q", text, line)
				}
			}
			if strings.Contains(text, "Reached Bead: no") && !strings.Contains(tt.name, "waf_block") {
				t.Errorf("bundle text says the request did not reach Bead: %q", text)
			}
			if !strings.Contains(mail.Query().Get("body"), "x-request-id: ") {
				t.Errorf("mail body %q is not the bundle's text", mail.Query().Get("body"))
			}
		})
	}
}
