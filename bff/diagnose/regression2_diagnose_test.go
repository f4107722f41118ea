package diagnose_test

import (
	"net/http"
	"strings"
	"testing"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

// AWS WAF in front of an API Gateway answers a blocked call with JSON, not HTML: {"message":"Forbidden"},
// with x-amzn-ErrorType: ForbiddenException and x-amzn-RequestId, no Server: Kestrel, no echoed
// x-request-id, no WWW-Authenticate. WAF rules usually match the request body (a reference such as
// "O'Brien; DROP"), so the simple GET /currencies probe passes. That is a 403 Bead never saw, yet the
// diagnosis blames the terminal ("most likely another terminal's") and tells the operator to fix ids.
func TestBreak2JSONWAFIsNotTerminalMismatch(t *testing.T) {
	h := http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {"ForbiddenException"},
		"X-Amzn-Requestid": {"6f1c0a4e-7d5b-4f5e-9a63-0b3c2d1e4f5a"}, "X-Amz-Apigw-Id": {"Qx1yZFs-oAMEbWw="},
		"Date": {now.Format(http.TimeFormat)}}
	in := paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), http.StatusForbidden, h,
		bead.ShapeJSON, `{"message":"Forbidden"}`)
	in.Probe = diagnose.NewProbeResult(nil) // GET /currencies worked
	d := diagnose.Diagnose(in)
	if d.Cause != diagnose.CauseBlockedBeforeBead {
		t.Errorf("AWS API Gateway/WAF JSON 403: cause %s (%s), want %s\n%s", d.Cause, d.Confidence, diagnose.CauseBlockedBeforeBead, d.Summary)
		for _, e := range d.Evidence {
			t.Logf("  evidence: %s [%s]", e.Fact, e.Source)
		}
	}
}

// Bead's JwtBearer with ShowPII on (common on a sandbox or a misconfigured gateway) echoes the token it
// refused in error_description and in the ProblemDetails detail. The 50-character prefix is the one
// allowed exception; the evidence quotes 200 characters of the detail and the WWW-Authenticate header
// as they are, so far more of the token goes to the incident page, problem+json and (through the error's
// message) the log line.
func TestBreak2EchoedTokenIsCutToThePrefix(t *testing.T) {
	c := claims()
	tok := jwt(c)
	detail := "IDX10223: Lifetime validation failed for token '" + tok + "'."
	h := beadHeaders("Content-Type", "application/problem+json",
		"WWW-Authenticate", `Bearer error="invalid_token", error_description="The token '`+tok+`' is invalid"`)
	body := `{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.2","title":"Unauthorized","status":401,"detail":"` + detail + `","traceId":"00-1-2-00"}`
	in := paymentIncident(diagnose.OpTracking, c, trackingReq("0123456789abcdef0123456789abcdef"), http.StatusUnauthorized, h, bead.ShapeProblem, body)
	in.Err.(*bead.APIError).Title, in.Err.(*bead.APIError).Detail = "Unauthorized", detail
	d := diagnose.Diagnose(in)
	leak := tok[:70] // 20 characters past the allowed prefix
	check := func(where, s string) {
		if strings.Contains(s, leak) {
			t.Errorf("%s holds more than the first 50 characters of the token: %.160s", where, s)
		}
	}
	check("summary", d.Summary)
	for _, e := range d.Evidence {
		check("evidence ["+e.Source+"]", e.Fact)
	}
	for _, ch := range d.Checks {
		check("check "+ch.ID, ch.Finding)
	}
	check("error message (logged by errorHandler)", in.Err.Error())
}
