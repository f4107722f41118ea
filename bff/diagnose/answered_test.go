package diagnose_test

import (
	"context"
	"net/http"
	"testing"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

// Who wrote an answer is a fact of its own, apart from the cause: a proxy's 502 is bead_unavailable and
// a proxy's 429 rate_limited, yet Bead wrote neither (the incident page once said it did). AnswerOf, which
// the server records for each attempt, judges as Diagnose does.
func TestAnsweredBy(t *testing.T) {
	html := http.Header{"Server": {"awselb/2.0"}, "Content-Type": {"text/html"}}
	bad502 := "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
	realmHTML := tokenErr(diagnose.OpPasswordGrant, http.StatusForbidden, "", "")
	realmHTML.Shape, realmHTML.Header, realmHTML.Body = bead.ShapeHTML, html, []byte(wafPage)
	behindNginx := tokenErr(diagnose.OpPasswordGrant, http.StatusUnauthorized, "invalid_grant", "Invalid user credentials")
	behindNginx.Header.Set("Server", "nginx") // Keycloak behind nginx is normal
	tests := []struct {
		name  string
		in    diagnose.Incident
		cause string
		by    string
	}{
		{"a load balancer's HTML 502", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), http.StatusBadGateway, html, bead.ShapeHTML, bad502),
			diagnose.CauseBeadUnavailable, diagnose.AnsweredByProxy},
		{"Bead's ProblemDetails 500", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), http.StatusInternalServerError, beadHeaders(), bead.ShapeProblem,
			`{"title":"An error occurred while processing your request.","status":500,"traceId":"00-1-2-00"}`),
			diagnose.CauseBeadUnavailable, diagnose.AnsweredByBead},
		{"a CDN's HTML 429", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), http.StatusTooManyRequests,
			http.Header{"Server": {"cloudflare"}, "Cf-Ray": {"8f1e-FRA"}}, bead.ShapeHTML, "<html><title>429</title></html>"),
			diagnose.CauseRateLimited, diagnose.AnsweredByProxy},
		{"a WAF's HTML 403", paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), http.StatusForbidden, html, bead.ShapeHTML, wafPage),
			diagnose.CauseBlockedBeforeBead, diagnose.AnsweredByProxy},
		{"Bead's bare 403 with its headers", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), http.StatusForbidden, beadHeaders(), bead.ShapeEmpty, ""),
			diagnose.CauseTerminalMismatch, diagnose.AnsweredByBead},
		{"a bare 403 with no telling header", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), http.StatusForbidden, http.Header{}, bead.ShapeEmpty, ""),
			diagnose.CauseTerminalMismatch, diagnose.AnsweredByUnknown},
		{"the realm's invalid_grant behind nginx", diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: behindNginx, Now: now},
			diagnose.CauseInvalidCredentials, diagnose.AnsweredByBead},
		{"an HTML 403 in front of the realm", diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: realmHTML, Now: now},
			diagnose.CauseBlockedBeforeBead, diagnose.AnsweredByProxy},
		{"no answer in time", diagnose.Incident{Op: diagnose.OpCreatePayment, Now: now,
			Err: &bead.TransportError{Op: diagnose.OpCreatePayment, Timeout: true, Err: context.DeadlineExceeded}},
			diagnose.CauseBeadUnavailable, ""},
		{"refused here", diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalCSRFHeaderMissing, Now: now},
			diagnose.CauseCSRFHeaderMissing, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(tt.in)
			if d.Cause != tt.cause || d.AnsweredBy != tt.by {
				t.Errorf("cause %s, answered by %q; want %s, %q\n%s", d.Cause, d.AnsweredBy, tt.cause, tt.by, d.Summary)
			}
			if tt.in.Local == "" {
				if _, by := diagnose.AnswerOf(tt.in.Err); by != d.AnsweredBy {
					t.Errorf("AnswerOf says %q, Diagnose %q", by, d.AnsweredBy)
				}
			}
		})
	}
}
