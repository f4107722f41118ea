package diagnose_test

import (
	"context"
	"net/http"
	"testing"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

// Regression: summaries put the op's code word after "the", so a rate-limited status read said "Bead
// answered 429 Too Many Requests to the tracking" (and a login "to the password grant"). Every op now
// reads as a phrase; a row per op, and every op the diagnosis knows has a row. (A logout that timed out
// also said "Bead's payments API did not answer": the logout goes to the realm.)
func TestSummariesNameEveryOpNaturally(t *testing.T) {
	realmAnswer := func(op string) error { return tokenErr(op, http.StatusTooManyRequests, "", "") }
	apiAnswer := func(op string) error {
		return apiErr(op, sent(http.MethodGet, "/payments/tracking/c10b29e3c8104e0f8dc139c20d9eeb6c", "", ""), http.StatusTooManyRequests,
			beadHeaders(), bead.ShapeEmpty, "")
	}
	tests := []struct {
		op       string
		answer   func(op string) error // a 429 of the op
		limited  string                // its summary
		timedOut string                // the summary of the op's call that got no answer in time
	}{
		{diagnose.OpCreatePayment, apiAnswer,
			"Bead answered 429 Too Many Requests to the payment creation request: a rate limit, not an authorisation failure.",
			"Bead's payments API did not answer the payment creation request in time."},
		{diagnose.OpTracking, apiAnswer,
			"Bead answered 429 Too Many Requests to the payment status read: a rate limit, not an authorisation failure.",
			"Bead's payments API did not answer the payment status read in time."},
		{diagnose.OpProbe, apiAnswer,
			"Bead answered 429 Too Many Requests to the probe (GET /currencies): a rate limit, not an authorisation failure.",
			"Bead's payments API did not answer the probe (GET /currencies) in time."},
		{diagnose.OpRegisterWebhook, apiAnswer,
			"Bead answered 429 Too Many Requests to the webhook registration: a rate limit, not an authorisation failure.",
			"Bead's payments API did not answer the webhook registration in time."},
		{diagnose.OpDiscovery, apiAnswer,
			"Bead's identity realm answered 429 Too Many Requests to the discovery request: a rate limit, not an authorisation failure.",
			"Bead's identity realm did not answer the discovery request in time."},
		{diagnose.OpPasswordGrant, realmAnswer,
			"Bead's identity realm answered 429 Too Many Requests to the login (password grant): a rate limit, not an authorisation failure.",
			"Bead's identity realm did not answer the login (password grant) in time."},
		{diagnose.OpRefreshGrant, realmAnswer,
			"Bead's identity realm answered 429 Too Many Requests to the token refresh (refresh grant): a rate limit, not an authorisation failure.",
			"Bead's identity realm did not answer the token refresh (refresh grant) in time."},
		{diagnose.OpLogout, realmAnswer,
			"Bead's identity realm answered 429 Too Many Requests to the logout: a rate limit, not an authorisation failure.",
			"Bead's identity realm did not answer the logout in time."},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.op] = true
		t.Run(tt.op, func(t *testing.T) {
			if got := diagnose.Diagnose(diagnose.Incident{Op: tt.op, Err: tt.answer(tt.op), Config: cfg(), Now: now}).Summary; got != tt.limited {
				t.Errorf("429 summary:\n  %s\nwant\n  %s", got, tt.limited)
			}
			// The op named only by the error, as doctor's calls and the Bead client's errors do.
			timeout := &bead.TransportError{Op: tt.op, Timeout: true, Err: context.DeadlineExceeded}
			if got := diagnose.Diagnose(diagnose.Incident{Err: timeout, Config: cfg(), Now: now}).Summary; got != tt.timedOut {
				t.Errorf("timeout summary:\n  %s\nwant\n  %s", got, tt.timedOut)
			}
		})
	}
	for op := range diagnose.OpNames {
		if !covered[op] {
			t.Errorf("op %q has no row", op)
		}
	}
}
