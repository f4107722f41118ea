package bff

import (
	"testing"

	"beadbff/bff/diagnose"
)

// Break-it review (round 2) of the two-status incident page, defects 5 and 5b: who answered was read from
// the cause, not from the answer. Both run through the server's real refresh-and-retry and read the page
// it shows (the table in incident_wording_test.go reads every cause the same way).

// incidentFor creates a payment through the API with the front's steps set, and reads its incident page.
func incidentFor(t *testing.T, e *pageEnv, steps ...frontStep) (incidentPage, string) {
	t.Helper()
	e.w.front.steps = steps
	p := e.create(t, `{"requestedAmount":"2.00","reference":"order-6"}`)
	id, _ := p["incidentId"].(string)
	if id == "" {
		t.Fatalf("no incident: %v", p)
	}
	detail, _ := p["detail"].(string)
	return e.page(t, id), detail
}

// Regression (defect 5): the page blamed Bead for a proxy's 5xx. An HTML 502 from `Server: awselb/2.0`
// was diagnosed bead_unavailable with the evidence "the answer came from a proxy in front of Bead", yet
// the status line and "What was tried" said "Bead answered 502 Bad Gateway" and the problem+json detail
// "Bead answered 502": only blocked_before_bead counted as a proxy's answer. The diagnosis's AnsweredBy
// decides it now.
func TestBreak6IncidentNamesTheProxyNotBeadForAProxys5xx(t *testing.T) {
	w := newPageWorld(t)
	pg, detail := incidentFor(t, w.serve(nil, 0, 0), proxys502)
	if d := pg.stored.Diagnosis; d.Cause != diagnose.CauseBeadUnavailable || d.AnsweredBy != diagnose.AnsweredByProxy {
		t.Fatalf("cause %s, answered by %q; want bead_unavailable, answered by a proxy", d.Cause, d.AnsweredBy)
	}
	if got, want := pg.text("incident-bead-status"), "A firewall or proxy in front of Bead (not Bead itself) answered 502 Bad Gateway"; got != want {
		t.Errorf("status line says %q, want %q", got, want)
	}
	if got, want := pg.tried(), "Sent the call; "+firewall+" answered 502 Bad Gateway."; len(got) != 1 || got[0] != want {
		t.Errorf("tried %q, want [%q]", got, want)
	}
	for what, s := range map[string]string{"status line": pg.text("incident-statuses"), "summary": pg.text("incident-summary"), "problem+json detail": detail} {
		if m := namesBeadAsAnswerer(s); m != "" {
			t.Errorf("the %s says %q of the proxy's answer: %q", what, m, s)
		}
	}
}

// Regression (defect 5b): "What was tried" named the first answer's owner after the last answer's cause.
// Bead's own 401 (an expired token) followed, after the refresh, by a firewall's HTML 403 read "Sent the
// call; something in front of Bead answered 401 Unauthorized". The recovery record keeps who gave the
// first answer and who gave the retry's, and each step is worded by its own.
func TestBreak6TriedStepsNameEachAnswersOwnOwner(t *testing.T) {
	w := newPageWorld(t)
	e := w.serve(nil, 0, 0)
	w.fault("expire_tokens", 0)
	pg, _ := incidentFor(t, e, nil, w.faultFirst("waf_block", 1)) // the first create meets the expiry, the retry the WAF
	if c := pg.stored.Diagnosis.Cause; c != diagnose.CauseBlockedBeforeBead {
		t.Fatalf("cause %s, want blocked_before_bead (the retry's)", c)
	}
	tried := pg.tried()
	if len(tried) < 3 {
		t.Fatalf("tried %q: want the call, the refresh and the retry", tried)
	}
	if want := "Sent the call; Bead answered 401 Unauthorized."; tried[0] != want {
		t.Errorf("tried[0] = %q, want %q: Bead's own 401 is not the firewall's", tried[0], want)
	}
	if want := retried + firewall + " answered 403 Forbidden."; tried[2] != want {
		t.Errorf("tried[2] = %q, want %q", tried[2], want)
	}
}
