package diagnose_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

type ev = diagnose.Evidence

// TestDiagnoseEveryCause holds at least one incident per cause, each with the evidence line that
// decides it.
func TestDiagnoseEveryCause(t *testing.T) {
	expired := func(c map[string]any) {
		c["iat"] = now.Add(-64*time.Minute - 12*time.Second).Unix()
		c["exp"] = now.Add(-4*time.Minute - 12*time.Second).Unix() // 10:02:11Z
	}
	tests := []struct {
		name       string
		in         diagnose.Incident
		cause      string
		confidence string
		key        diagnose.Evidence
		auto       bool
	}{
		{
			name: "token_missing: sent, but Bead says none arrived",
			in: paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 401,
				beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, ""),
			cause: diagnose.CauseTokenMissing, confidence: diagnose.ConfidenceHigh,
			key: ev{"sent: " + redactedBearer(jwt(claims())) + "; Bead says none arrived", "request as sent vs response header WWW-Authenticate"},
		},
		{
			name: "token_missing: this server failed to send it (a bug here)",
			in: paymentIncident(diagnose.OpTracking, claims(), func(string) bead.SentRequest {
				return sent(http.MethodGet, "/payments/tracking/c10b29e3c8104e0f8dc139c20d9eeb6c", "", "")
			}, 401, beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, ""),
			cause: diagnose.CauseTokenMissing, confidence: diagnose.ConfidenceHigh,
			key: ev{"sent: no Authorization header", "request as sent"},
		},
		{
			name: "token_missing: the token arrived unreadable",
			in: paymentIncident(diagnose.OpProbe, claims(), probeReq, 401,
				beadHeaders("WWW-Authenticate", `Bearer error="invalid_token"`), bead.ShapeEmpty, ""),
			cause: diagnose.CauseTokenMissing, confidence: diagnose.ConfidenceMedium,
			key: ev{`WWW-Authenticate: Bearer error="invalid_token" with no description: the token could not be parsed`, "response header WWW-Authenticate"},
		},
		{
			name: "token_missing: the session had no usable token, nothing sent",
			in: diagnose.Incident{Op: diagnose.OpCreatePayment, Err: fmt.Errorf("bead: create payment: %w", bead.ErrNoAccessToken),
				Config: cfg(), Now: now},
			cause: diagnose.CauseTokenMissing, confidence: diagnose.ConfidenceHigh,
			key: ev{"the Bead client refused to send: the access token is empty or not a well-formed bearer token", "bead client"},
		},
		{
			name: "token_expired: Bead says so, and exp agrees",
			in: paymentIncident(diagnose.OpTracking, claims(expired), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 401,
				beadHeaders("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token expired at '05/01/2026 10:02:11'"`), bead.ShapeEmpty, ""),
			cause: diagnose.CauseTokenExpired, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"token exp 2026-05-01T10:02:11Z was 4 min 12 s before Bead's answer (2026-05-01T10:06:23Z)", "token claim exp"},
		},
		{
			name: "token_expired: a bare 403 with exp in the past (the article's most common 403)",
			in: paymentIncident(diagnose.OpCreatePayment, claims(expired), createReq(terminal1, merchant1), 403,
				beadHeaders(), bead.ShapeEmpty, ""),
			cause: diagnose.CauseTokenExpired, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"token exp 2026-05-01T10:02:11Z was 4 min 12 s before Bead's answer (2026-05-01T10:06:23Z)", "token claim exp"},
		},
		{
			name: "token_expired: a fresh token did not cure it, no automatic recovery left",
			in: func() diagnose.Incident {
				in := paymentIncident(diagnose.OpTracking, claims(expired), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 401,
					beadHeaders("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token expired at '05/01/2026 10:02:11'"`), bead.ShapeEmpty, "")
				in.Recovery = diagnose.Recovery{Refreshed: true, Retried: true, FirstStatus: 401}
				return in
			}(),
			cause: diagnose.CauseTokenExpired, confidence: diagnose.ConfidenceHigh, auto: false,
			key: ev{"the token was refreshed and the call retried once; it was refused again", "recovery"},
		},
		{
			name: "clock_skew: Bead says expired, and the token's iat is in the future of this server's clock",
			in: func() diagnose.Incident {
				c := claims(func(c map[string]any) {
					c["iat"] = now.Add(-20 * time.Second).Unix()
					c["exp"] = now.Add(-10 * time.Second).Unix()
				})
				in := paymentIncident(diagnose.OpProbe, c, probeReq, 401,
					beadHeaders("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token expired at '05/01/2026 10:06:13'"`), bead.ShapeEmpty, "")
				in.Token.ObtainedAt = now.Add(-10 * time.Minute) // this server's clock runs 9 min 40 s behind the realm's
				in.Token.Expiry = in.Token.ObtainedAt.Add(10 * time.Second)
				return in
			}(),
			cause: diagnose.CauseClockSkew, confidence: diagnose.ConfidenceHigh,
			key: ev{"token iat 2026-05-01T10:06:03Z is 9 min 40 s after this server asked for it (2026-05-01T09:56:23Z by its clock): this server's clock is behind the realm's", "token claim iat"},
		},
		{
			name: "clock_skew: Bead says the token is not valid yet",
			in: paymentIncident(diagnose.OpProbe, claims(), probeReq, 401,
				beadHeaders("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token is not valid before '05/01/2026 10:16:23'"`), bead.ShapeEmpty, ""),
			cause: diagnose.CauseClockSkew, confidence: diagnose.ConfidenceHigh,
			key: ev{"Bead says: The token is not valid before '05/01/2026 10:16:23'", "response header WWW-Authenticate error_description"},
		},
		{
			name: "clock_skew: Bead's Date is 10 minutes from this server's clock",
			in: paymentIncident(diagnose.OpProbe, claims(), probeReq, 401,
				beadHeaders("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token expired at '05/01/2026 10:02:11'"`,
					"Date", now.Add(10*time.Minute).Format(http.TimeFormat)), bead.ShapeEmpty, ""),
			cause: diagnose.CauseClockSkew, confidence: diagnose.ConfidenceHigh,
			key: ev{"Bead's Date header says 2026-05-01T10:16:23Z, this server's clock said 2026-05-01T10:06:23Z: 10 min apart", "response header Date"},
		},
		{
			name: "wrong_client_or_scope: azp is bead-integrator",
			in: paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["azp"] = "bead-integrator" }), probeReq, 403,
				beadHeaders("Content-Type", "application/problem+json; charset=utf-8"), bead.ShapeProblem, problem403),
			cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
			key: ev{"token client is bead-integrator; the payments API accepts bead-terminal", "token claim azp"},
		},
		{
			name: "wrong_client_or_scope: a client_id claim wins over azp",
			in: paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["client_id"] = "merchant-portal" }), probeReq, 403,
				beadHeaders(), bead.ShapeProblem, problem403),
			cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
			key: ev{"token client is merchant-portal; the payments API accepts bead-terminal", "token claim client_id"},
		},
		{
			name: "wrong_client_or_scope: scope without openid",
			in: paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["scope"] = "profile email" }), probeReq, 403,
				beadHeaders(), bead.ShapeProblem, problem403),
			cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
			key: ev{`token scope is "profile email": no openid`, "token claim scope"},
		},
		{
			name: "wrong_client_or_scope: the realm does not know the client",
			in: diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: tokenErr(diagnose.OpPasswordGrant, 401, "invalid_client", "Invalid client or Invalid client credentials"),
				Config: cfg(), Now: now},
			cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
			key: ev{"the realm answered 401 invalid_client: Invalid client or Invalid client credentials", "token endpoint answer"},
		},
		{
			name: "wrong_client_or_scope: the realm refuses the scope",
			in: diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: tokenErr(diagnose.OpPasswordGrant, 400, "invalid_scope", "Invalid scopes: openid profile email"),
				Config: cfg(), Now: now},
			cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
			key: ev{"scope sent: openid profile email", "request form scope"},
		},
		{
			name: "realm_mismatch: Bead says the issuer is invalid",
			in: paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["iss"] = "https://identity.beadpay.io/realms/prod" }), probeReq, 401,
				beadHeaders("WWW-Authenticate", `Bearer error="invalid_token", error_description="The issuer 'https://identity.beadpay.io/realms/prod' is invalid"`), bead.ShapeEmpty, ""),
			cause: diagnose.CauseRealmMismatch, confidence: diagnose.ConfidenceHigh,
			key: ev{"Bead says: The issuer 'https://identity.beadpay.io/realms/prod' is invalid", "response header WWW-Authenticate error_description"},
		},
		{
			name: "realm_mismatch: a bare 403 and the token's iss is not the configured realm",
			in: paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["iss"] = "https://identity.beadpay.io/realms/prod" }), probeReq, 403,
				beadHeaders(), bead.ShapeEmpty, ""),
			cause: diagnose.CauseRealmMismatch, confidence: diagnose.ConfidenceHigh,
			key: ev{"token iss is https://identity.beadpay.io/realms/prod; the configured realm is " + realm, "token claim iss vs BEAD_IDENTITY_URL"},
		},
		{
			name: "realm_mismatch: the sandbox API with the prod realm configured",
			in: func() diagnose.Incident {
				in := paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["iss"] = "https://identity.beadpay.io/realms/prod" }), probeReq, 403,
					beadHeaders(), bead.ShapeEmpty, "")
				in.Config.IdentityURL = "https://identity.beadpay.io/realms/prod"
				return in
			}(),
			cause: diagnose.CauseRealmMismatch, confidence: diagnose.ConfidenceMedium,
			key: ev{"the API https://api.test.devs.beadpay.io is Bead's nonprod environment, the token's realm is prod", "configuration BEAD_API_URL vs token claim iss"},
		},
		{
			name: "realm_mismatch: discovery names another issuer",
			in: diagnose.Incident{Op: diagnose.OpDiscovery, Config: cfg(), Now: now,
				Err: fmt.Errorf("bead: discover: %w: issuer is %q, configured realm is %q", bead.ErrDiscoveryMismatch, "https://identity.beadpay.io/realms/prod", realm)},
			cause: diagnose.CauseRealmMismatch, confidence: diagnose.ConfidenceHigh,
			key: ev{`error: bead: discover: discovery document does not match the configuration: issuer is "https://identity.beadpay.io/realms/prod", configured realm is "` + realm + `"`, "error"},
		},
		{
			name: "terminal_mismatch: caught here, nothing sent",
			in: diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalTerminalMismatch, Config: cfg(), Now: now,
				Resource: diagnose.Resource{TerminalID: terminal2}},
			cause: diagnose.CauseTerminalMismatch, confidence: diagnose.ConfidenceHigh,
			key: ev{"the request names terminal " + terminal2 + "; the session's terminal is " + terminal1, "request body"},
		},
		{
			name:  "terminal_mismatch: Bead's empty 403 to a body naming another terminal",
			in:    paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), 403, beadHeaders(), bead.ShapeEmpty, ""),
			cause: diagnose.CauseTerminalMismatch, confidence: diagnose.ConfidenceHigh,
			key: ev{"the request names terminal " + terminal2 + "; the token's terminal is " + terminal1, "request body vs token claim terminalId"},
		},
		{
			name: "terminal_mismatch: a bare 403 after a good refresh and retry, the token fine",
			in: func() diagnose.Incident {
				in := paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 403, beadHeaders(), bead.ShapeEmpty, "")
				in.Recovery = diagnose.Recovery{Refreshed: true, Retried: true, FirstStatus: 403}
				return in
			}(),
			cause: diagnose.CauseTerminalMismatch, confidence: diagnose.ConfidenceMedium,
			key: ev{"the token was refreshed and the call retried once; Bead refused it again", "recovery"},
		},
		{
			name: "refresh_token_invalid: the refresh token expired",
			in: diagnose.Incident{Op: diagnose.OpRefreshGrant, Err: tokenErr(diagnose.OpRefreshGrant, 400, "invalid_grant", "Token is not active"),
				Config: cfg(), Now: now},
			cause: diagnose.CauseRefreshTokenInvalid, confidence: diagnose.ConfidenceHigh,
			key: ev{"the refresh token had expired", "token endpoint error_description"},
		},
		{
			name: "invalid_credentials: the password grant gets invalid_grant",
			in: diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: tokenErr(diagnose.OpPasswordGrant, 401, "invalid_grant", "Invalid user credentials"),
				Config: cfg(), Now: now},
			cause: diagnose.CauseInvalidCredentials, confidence: diagnose.ConfidenceHigh,
			key: ev{"username sent: " + terminal1 + "@beadpay.io", "request form username"},
		},
		{
			name: "blocked_before_bead: Cloudflare's HTML 403",
			in: paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), 403,
				http.Header{"Server": {"cloudflare"}, "Cf-Ray": {"8c1f2a3b4d5e6f70-FRA"}, "Content-Type": {"text/html; charset=UTF-8"}},
				bead.ShapeHTML, "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>"),
			cause: diagnose.CauseBlockedBeforeBead, confidence: diagnose.ConfidenceHigh,
			key: ev{"Server: cloudflare is Cloudflare, not Bead's API server (Kestrel)", "response header Server"},
		},
		{
			name:  "blocked_before_bead: an empty 403 from nginx with none of Bead's headers",
			in:    paymentIncident(diagnose.OpProbe, claims(), probeReq, 403, http.Header{"Server": {"nginx/1.25.3"}}, bead.ShapeEmpty, ""),
			cause: diagnose.CauseBlockedBeforeBead, confidence: diagnose.ConfidenceMedium,
			key: ev{"Server: nginx/1.25.3 is nginx, not Bead's API server (Kestrel)", "response header Server"},
		},
		{
			name: "blocked_before_bead: a WAF in front of the realm",
			in: diagnose.Incident{Op: diagnose.OpPasswordGrant, Config: cfg(), Now: now, Err: func() error {
				te := tokenErr(diagnose.OpPasswordGrant, 403, "", "")
				te.Shape, te.Body, te.Header = bead.ShapeHTML, []byte(wafPage), http.Header{"Server": {"awselb/2.0"}, "Content-Type": {"text/html"}}
				return te
			}()},
			cause: diagnose.CauseBlockedBeforeBead, confidence: diagnose.ConfidenceHigh,
			key: ev{`the body is an HTML page titled "403 Forbidden"; Bead's API answers JSON or nothing`, "response body"},
		},
		{
			name:  "webhook_signature_invalid: refused here",
			in:    diagnose.Incident{Op: "POST /webhooks/bead", Local: diagnose.LocalWebhookSignatureInvalid, LocalDetail: "signature timestamp is 10 min old (limit 5 min)", Now: now},
			cause: diagnose.CauseWebhookSignatureInvalid, confidence: diagnose.ConfidenceHigh,
			key: ev{"signature timestamp is 10 min old (limit 5 min)", "refusal by this server"},
		},
		{
			name:  "cors_origin_not_allowed: refused here",
			in:    diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalCORSOriginNotAllowed, LocalDetail: "Origin https://shop.example.net is not in CORS_ALLOWED_ORIGINS", Now: now},
			cause: diagnose.CauseCORSOriginNotAllowed, confidence: diagnose.ConfidenceHigh,
			key: ev{"Origin https://shop.example.net is not in CORS_ALLOWED_ORIGINS", "refusal by this server"},
		},
		{
			name:  "csrf_header_missing: refused here",
			in:    diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalCSRFHeaderMissing, Now: now},
			cause: diagnose.CauseCSRFHeaderMissing, confidence: diagnose.ConfidenceHigh,
			key: ev{"nothing was sent to Bead", "refusal by this server"},
		},
		{
			name: "rate_limited: 429 with Retry-After and X-RateLimit-*",
			in: func() diagnose.Incident {
				in := paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), 429,
					beadHeaders("Retry-After", "30", "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0",
						"X-RateLimit-Reset", fmt.Sprint(now.Add(30*time.Second).Unix())),
					bead.ShapeCodeError, `{"code":429,"error":"rate_limit_exceeded","message":"Too many requests for this terminal."}`)
				in.Err.(*bead.APIError).RetryAfter = 30 * time.Second
				return in
			}(),
			cause: diagnose.CauseRateLimited, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"X-RateLimit-Reset: " + fmt.Sprint(now.Add(30*time.Second).Unix()) + " (2026-05-01T10:06:53Z)", "response header X-RateLimit-Reset"},
		},
		{
			name: "bead_unavailable: 503",
			in: paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 503, beadHeaders(), bead.ShapeProblem,
				`{"type":"https://tools.ietf.org/html/rfc9110#section-15.6.4","title":"Service Unavailable","status":503,"traceId":"00-1-2-00"}`),
			cause: diagnose.CauseBeadUnavailable, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"status 503 (problem body)", "response status"},
		},
		{
			name: "bead_unavailable: a timeout",
			in: diagnose.Incident{Op: diagnose.OpTracking, Config: cfg(), Now: now, Token: tokenOf(claims()),
				Err: &bead.TransportError{Op: diagnose.OpTracking, Timeout: true, Err: context.DeadlineExceeded, Request: probeReq(jwt(claims()))}},
			cause: diagnose.CauseBeadUnavailable, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"no answer within the time budget (BEAD_TIMEOUT)", "transport"},
		},
		{
			name: "bead_unavailable: connection refused",
			in: diagnose.Incident{Op: diagnose.OpProbe, Config: cfg(), Now: now,
				Err: &bead.TransportError{Op: diagnose.OpProbe, Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}},
			cause: diagnose.CauseBeadUnavailable, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"connection refused: nothing listens at the address", "transport"},
		},
		{
			name:  "session_store_unavailable: refused here",
			in:    diagnose.Incident{Op: "GET /api/v1/payments", Local: diagnose.LocalSessionStoreUnavailable, LocalDetail: "redis: 2 s timeout", Now: now},
			cause: diagnose.CauseSessionStoreUnavailable, confidence: diagnose.ConfidenceHigh, auto: true,
			key: ev{"redis: 2 s timeout", "refusal by this server"},
		},
		{
			name:  "not_authenticated: refused here",
			in:    diagnose.Incident{Op: "GET /api/v1/payments", Local: diagnose.LocalNotAuthenticated, Now: now},
			cause: diagnose.CauseNotAuthenticated, confidence: diagnose.ConfidenceHigh,
			key: ev{"no valid session cookie came with the request", "refusal by this server"},
		},
		{
			name:  "invalid_request: refused here",
			in:    diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalInvalidRequest, LocalDetail: "requestedAmount: at most two decimals", Now: now},
			cause: diagnose.CauseInvalidRequest, confidence: diagnose.ConfidenceHigh,
			key: ev{"requestedAmount: at most two decimals", "refusal by this server"},
		},
		{
			name: "invalid_request: Bead's ValidationProblemDetails",
			in: func() diagnose.Incident {
				in := paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), 400, beadHeaders(), bead.ShapeProblem,
					`{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"One or more validation errors occurred.","status":400,"errors":{"Reference":["The Reference field is required."]},"traceId":"00-1-2-00"}`)
				in.Err.(*bead.APIError).FieldErrors = map[string][]string{"Reference": {"The Reference field is required."}}
				return in
			}(),
			cause: diagnose.CauseInvalidRequest, confidence: diagnose.ConfidenceHigh,
			key: ev{"Reference: The Reference field is required.", "response body errors"},
		},
		{
			name:  "not_found: Bead does not know the payment",
			in:    paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 404, beadHeaders(), bead.ShapeProblem, `{"title":"Not Found","status":404}`),
			cause: diagnose.CauseNotFound, confidence: diagnose.ConfidenceMedium,
			key: ev{"status 404 to GET /payments/tracking/c10b29e3c8104e0f8dc139c20d9eeb6c", "response status"},
		},
		{
			name:  "unknown: Bead's ProblemDetails 403, the token fine, nothing else known; all evidence shown",
			in:    paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 403, beadHeaders(), bead.ShapeProblem, problem403),
			cause: diagnose.CauseUnknown, confidence: diagnose.ConfidenceLow,
			key: ev{problem403, "response body"},
		},
		{
			name:  "unknown: a status nobody documents",
			in:    paymentIncident(diagnose.OpProbe, claims(), probeReq, 418, beadHeaders(), bead.ShapeText, "I'm a teapot"),
			cause: diagnose.CauseUnknown, confidence: diagnose.ConfidenceLow,
			key: ev{"I'm a teapot", "response body"},
		},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(tt.in)
			if d.Cause != tt.cause || d.Confidence != tt.confidence {
				t.Errorf("cause = %q (%s), want %q (%s)\n%s", d.Cause, d.Confidence, tt.cause, tt.confidence, dump(t, d))
			}
			if !hasEvidence(d, tt.key) {
				t.Errorf("missing evidence %+v\n%s", tt.key, dump(t, d))
			}
			if d.AutoRecoverable != tt.auto {
				t.Errorf("AutoRecoverable = %v, want %v", d.AutoRecoverable, tt.auto)
			}
			if d.Summary == "" || len(d.Fix) == 0 || len(d.Checks) != 5 {
				t.Errorf("summary %q, %d fix steps, %d checks: want a summary, fix steps and the five checks", d.Summary, len(d.Fix), len(d.Checks))
			}
		})
		seen[tt.cause] = true
	}
	for _, c := range diagnose.Causes() {
		if !seen[c.Code] {
			t.Errorf("no incident in the table diagnosed as %s", c.Code)
		}
	}
}

// TestLookAlikes runs pairs of incidents that look the same from afar and must not be confused; the
// evidence that separates them must be there.
func TestLookAlikes(t *testing.T) {
	expiredClaims := claims(func(c map[string]any) {
		c["iat"] = now.Add(-64 * time.Minute).Unix()
		c["exp"] = now.Add(-4 * time.Minute).Unix()
	})
	expiredChallenge := `Bearer error="invalid_token", error_description="The token expired at '05/01/2026 10:02:23'"`
	type side struct {
		in    diagnose.Incident
		cause string
		sep   diagnose.Evidence // the fact that tells this side from the other
	}
	tests := []struct {
		name string
		a, b side
	}{
		{
			name: "a 403 from Bead vs one from a WAF",
			a: side{paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), 403, beadHeaders(), bead.ShapeEmpty, ""),
				diagnose.CauseTerminalMismatch, ev{"x-request-id " + requestID + " echoed, as Bead's API does", "response header x-request-id"}},
			b: side{paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), 403,
				http.Header{"Server": {"awselb/2.0"}, "Content-Type": {"text/html"}}, bead.ShapeHTML, wafPage),
				diagnose.CauseBlockedBeforeBead, ev{"none of Bead's headers (Server: Kestrel, x-request-id)", "response headers"}},
		},
		{
			name: "the header stripped on the way vs never sent",
			a: side{paymentIncident(diagnose.OpProbe, claims(), probeReq, 401, beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, ""),
				diagnose.CauseTokenMissing, ev{"sent: " + redactedBearer(jwt(claims())) + "; Bead says none arrived", "request as sent vs response header WWW-Authenticate"}},
			b: side{paymentIncident(diagnose.OpProbe, claims(), func(string) bead.SentRequest { return sent(http.MethodGet, "/currencies", "", "") },
				401, beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, ""),
				diagnose.CauseTokenMissing, ev{"sent: no Authorization header", "request as sent"}},
		},
		{
			name: "expiry vs clock skew",
			a: side{paymentIncident(diagnose.OpProbe, expiredClaims, probeReq, 401, beadHeaders("WWW-Authenticate", expiredChallenge), bead.ShapeEmpty, ""),
				diagnose.CauseTokenExpired, ev{"token exp 2026-05-01T10:02:23Z was 4 min before Bead's answer (2026-05-01T10:06:23Z)", "token claim exp"}},
			b: side{func() diagnose.Incident {
				// The same answer, but the token's exp had passed before this server even obtained it.
				in := paymentIncident(diagnose.OpProbe, expiredClaims, probeReq, 401, beadHeaders("WWW-Authenticate", expiredChallenge), bead.ShapeEmpty, "")
				in.Token.ObtainedAt = now.Add(-90 * time.Second)
				in.Token.Expiry = now.Add(58*time.Minute + 30*time.Second)
				return in
			}(), diagnose.CauseClockSkew, ev{"token exp 2026-05-01T10:02:23Z had passed 2 min 30 s before this server obtained it (2026-05-01T10:04:53Z by its clock): this server's clock is ahead of the realm's", "token claim exp"}},
		},
		{
			name: "wrong client vs a scope without openid",
			a: side{paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["azp"] = "bead-integrator" }), probeReq, 403, beadHeaders(), bead.ShapeProblem, problem403),
				diagnose.CauseWrongClientOrScope, ev{"token client is bead-integrator; the payments API accepts bead-terminal", "token claim azp"}},
			b: side{paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["scope"] = "email profile" }), probeReq, 403, beadHeaders(), bead.ShapeProblem, problem403),
				diagnose.CauseWrongClientOrScope, ev{`token scope is "email profile": no openid`, "token claim scope"}},
		},
		{
			name: "terminal mismatch caught here vs reported by Bead",
			a: side{diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalTerminalMismatch, Config: cfg(), Now: now,
				Resource: diagnose.Resource{TerminalID: terminal2, MerchantID: merchant2}},
				diagnose.CauseTerminalMismatch, ev{"nothing was sent to Bead", "refusal by this server"}},
			b: side{paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), 403, beadHeaders(), bead.ShapeEmpty, ""),
				diagnose.CauseTerminalMismatch, ev{"the request names merchant " + merchant2 + "; the token's merchant is " + merchant1, "request body vs token claim merchantId"}},
		},
		{
			name: "a resource refusal vs a global one (the probe)",
			a: side{func() diagnose.Incident {
				in := paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 403, beadHeaders(), bead.ShapeEmpty, "")
				in.Probe = diagnose.NewProbeResult(nil)
				return in
			}(), diagnose.CauseTerminalMismatch, ev{"GET /currencies with the same token answered 200", "probe"}},
			b: side{func() diagnose.Incident {
				in := paymentIncident(diagnose.OpTracking, claims(), trackingReq("c10b29e3c8104e0f8dc139c20d9eeb6c"), 403, beadHeaders(), bead.ShapeEmpty, "")
				in.Probe = diagnose.NewProbeResult(apiErr(diagnose.OpProbe, probeReq(jwt(claims())), 403, beadHeaders(), bead.ShapeEmpty, ""))
				return in
			}(), diagnose.CauseUnknown, ev{"GET /currencies with the same token failed too: the failure is global (the token or a firewall), not this resource", "probe"}},
		},
		{
			name: "429 is never an auth failure, even with a challenge and an HTML body",
			a: side{paymentIncident(diagnose.OpProbe, claims(), probeReq, 429,
				http.Header{"Server": {"cloudflare"}, "Retry-After": {"5"}, "WWW-Authenticate": {"Bearer"}}, bead.ShapeHTML, "<html><title>Too Many Requests</title></html>"),
				diagnose.CauseRateLimited, ev{"Retry-After: 5", "response header Retry-After"}},
			b: side{paymentIncident(diagnose.OpProbe, claims(), probeReq, 401, beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, ""),
				diagnose.CauseTokenMissing, ev{"WWW-Authenticate: Bearer (no error: no token was presented)", "response header WWW-Authenticate"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, s := range []side{tt.a, tt.b} {
				d := diagnose.Diagnose(s.in)
				if d.Cause != s.cause {
					t.Errorf("side %d: cause = %q, want %q\n%s", i, d.Cause, s.cause, dump(t, d))
				}
				if !hasEvidence(d, s.sep) {
					t.Errorf("side %d: missing the separating evidence %+v\n%s", i, s.sep, dump(t, d))
				}
			}
			if ea, eb := diagnose.Diagnose(tt.a.in).Evidence, diagnose.Diagnose(tt.b.in).Evidence; cmp.Equal(ea, eb) {
				t.Errorf("both sides have the same evidence")
			}
		})
	}
}

// TestChecklist pins each step's status on representative incidents.
func TestChecklist(t *testing.T) {
	statuses := func(d diagnose.Diagnosis) map[string]string {
		m := map[string]string{}
		for _, c := range d.Checks {
			m[c.ID] = c.Status
		}
		return m
	}
	const p, f, na = diagnose.CheckPassed, diagnose.CheckFailed, diagnose.CheckNotApplicable
	tests := []struct {
		name string
		in   diagnose.Incident
		want map[string]string
	}{
		{"WAF block on a create", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), 403,
			http.Header{"Server": {"awselb/2.0"}}, bead.ShapeHTML, wafPage),
			map[string]string{"headers": p, "jwt": p, "probe": na, "resource": p, "middlebox": f}},
		{"stripped header on the probe", paymentIncident(diagnose.OpProbe, claims(), probeReq, 401, beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, ""),
			map[string]string{"headers": f, "jwt": p, "probe": f, "resource": na, "middlebox": f}},
		{"another terminal in the body", paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant1), 403, beadHeaders(), bead.ShapeEmpty, ""),
			map[string]string{"headers": p, "jwt": p, "probe": na, "resource": f, "middlebox": p}},
		{"a stale token sent", paymentIncident(diagnose.OpProbe, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }), probeReq, 403, beadHeaders(), bead.ShapeEmpty, ""),
			map[string]string{"headers": f, "jwt": f, "probe": f, "resource": na, "middlebox": p}},
		{"a token that is not a JWT", func() diagnose.Incident {
			in := paymentIncident(diagnose.OpProbe, claims(), probeReq, 403, beadHeaders(), bead.ShapeEmpty, "")
			in.Token = diagnose.NewTokenInfo("opaque-token-value-0123456789", "", now, now.Add(time.Hour))
			return in
		}(), map[string]string{"headers": p, "jwt": f, "probe": f, "resource": na, "middlebox": p}},
		{"a refused refresh", diagnose.Incident{Op: diagnose.OpRefreshGrant, Err: tokenErr(diagnose.OpRefreshGrant, 400, "invalid_grant", "Stale token"), Now: now},
			map[string]string{"headers": na, "jwt": na, "probe": na, "resource": na, "middlebox": p}},
		{"a refusal made here", diagnose.Incident{Op: "POST /api/v1/payments", Local: diagnose.LocalCSRFHeaderMissing, Now: now},
			map[string]string{"headers": na, "jwt": na, "probe": na, "resource": na, "middlebox": na}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(tt.in)
			if diff := cmp.Diff(tt.want, statuses(d)); diff != "" {
				t.Errorf("check statuses (-want +got):\n%s\n%s", diff, dump(t, d))
			}
			for _, c := range d.Checks {
				if c.Finding == "" || c.Name == "" {
					t.Errorf("check %s has no name or finding", c.ID)
				}
			}
		})
	}
}

func TestHealthyCallHasNoCause(t *testing.T) {
	in := diagnose.Incident{Op: diagnose.OpProbe, Token: tokenOf(claims()), Config: cfg(), Now: now, Probe: diagnose.NewProbeResult(nil)}
	d := diagnose.Diagnose(in)
	if !d.Healthy() || d.Fix != nil || d.AutoRecoverable {
		t.Errorf("want healthy with no fix, got %q %v\n%s", d.Cause, d.Fix, dump(t, d))
	}
	for _, c := range d.Checks {
		if c.Status == diagnose.CheckFailed {
			t.Errorf("check %s failed on a healthy call: %s", c.ID, c.Finding)
		}
	}
}

// The support bundle's "first 50 characters of the JWT" is the one part of a token a diagnosis shows.
func TestDiagnosisNeverHoldsTheToken(t *testing.T) {
	c := claims()
	tok := jwt(c)
	in := paymentIncident(diagnose.OpProbe, c, probeReq, 401, beadHeaders("WWW-Authenticate", "Bearer"), bead.ShapeEmpty, "")
	out := dump(t, diagnose.Diagnose(in))
	if len(tok) < 200 {
		t.Fatalf("the fixture token is too short to test with")
	}
	for _, part := range []string{tok, tok[:51], tok[len(tok)-60:]} {
		if containsText(out, part) {
			t.Errorf("the diagnosis holds more of the token than its 50-character prefix")
		}
	}
	if !containsText(out, tok[:50]) {
		t.Errorf("the diagnosis lacks the token's 50-character prefix")
	}
}

func TestCauseTable(t *testing.T) {
	codes := map[string]bool{}
	for _, c := range diagnose.Causes() {
		if codes[c.Code] || c.Title == "" || c.Meaning == "" || len(c.Fix) == 0 {
			t.Errorf("cause %q: duplicate or incomplete", c.Code)
		}
		codes[c.Code] = true
	}
	// CONTRACT.md's list, every one of which must be explained.
	for _, code := range []string{"token_missing", "token_expired", "wrong_client_or_scope", "terminal_mismatch", "realm_mismatch", "clock_skew",
		"refresh_token_invalid", "blocked_before_bead", "webhook_signature_invalid", "cors_origin_not_allowed", "csrf_header_missing",
		"rate_limited", "bead_unavailable", "session_store_unavailable", "not_authenticated", "invalid_request", "unknown"} {
		if !codes[code] {
			t.Errorf("CONTRACT.md cause %s is not in the table", code)
		}
	}
	info, ok := diagnose.LookupCause(diagnose.CauseRateLimited)
	if !ok || !info.AutoRecoverable {
		t.Errorf("LookupCause(rate_limited) = %+v, %v", info, ok)
	}
	info.Fix[0] = "changed"
	if again, _ := diagnose.LookupCause(diagnose.CauseRateLimited); again.Fix[0] == "changed" {
		t.Errorf("LookupCause shares its table with the caller")
	}
}

func containsText(s, part string) bool { return part != "" && strings.Contains(s, part) }
