package bff

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
)

func TestNeedsRefresh(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	hour := session.Token{ObtainedAt: now.Add(-50 * time.Minute), Expiry: now.Add(10 * time.Minute)}
	tests := []struct {
		name   string
		tok    session.Token
		jitter time.Duration
		want   bool
	}{
		{"an hour's token with 10 min left is kept", hour, 0, false},
		{"an hour's token 2 min before expiry is refreshed", session.Token{ObtainedAt: now.Add(-58 * time.Minute), Expiry: now.Add(2 * time.Minute)}, 0, true},
		{"jitter widens the margin", session.Token{ObtainedAt: now.Add(-57 * time.Minute), Expiry: now.Add(2*time.Minute + 30*time.Second)}, 40 * time.Second, true},
		{"an expired token is refreshed", session.Token{ObtainedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Minute)}, 0, true},
		{"a 3 s sandbox token is kept in its first 2 s", session.Token{ObtainedAt: now.Add(-1 * time.Second), Expiry: now.Add(2 * time.Second)}, 0, false},
		{"a 3 s sandbox token is refreshed in its last second", session.Token{ObtainedAt: now.Add(-2500 * time.Millisecond), Expiry: now.Add(500 * time.Millisecond)}, 0, true},
		{"no expiry known: never refreshed ahead", session.Token{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsRefresh(tt.tok, now, tt.jitter); got != tt.want {
				t.Errorf("needsRefresh = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/payments/abc":         "/payments/abc",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"payments":              "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	a1, a2 := idempotencyKey("t1", "order-42"), idempotencyKey("t1", "order-42")
	if a1 != a2 {
		t.Errorf("the same caller key gave %q and %q; a retry must reuse the key", a1, a2)
	}
	if idempotencyKey("t2", "order-42") == a1 {
		t.Error("two terminals' keys collide")
	}
	if fresh1, fresh2 := idempotencyKey("t1", ""), idempotencyKey("t1", ""); fresh1 == fresh2 {
		t.Error("without a caller key every create must get a fresh key")
	}
}

// The support bundle shows the first 50 characters of the JWT and never more: the one deliberate
// exception to "no token anywhere".
func TestSupportBundleShowsOnlyTheJWTPrefix(t *testing.T) {
	token := "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIiwia2lkIiA6ICJrMSJ9." + strings.Repeat("p", 400) + ".sig"
	sent := bead.SentRequest{Method: "POST", URL: "https://api.test.devs.beadpay.io/payments/crypto?x=secret",
		RequestID: "req-12345678", SentAt: time.Date(2026, 12, 3, 10, 2, 11, 0, time.UTC)}
	b := supportBundle(time.Now(), sent, token, "SANDBOX")
	if b.JWTPrefix != token[:50] {
		t.Errorf("JWTPrefix = %q, want the first 50 characters", b.JWTPrefix)
	}
	if b.Path != "POST /payments/crypto" || b.Timestamp != "2026-12-03T10:02:11Z (UTC)" || b.RequestID != "req-12345678" {
		t.Errorf("bundle = %+v", b)
	}
	for _, s := range []string{b.Text, b.MailtoURL} {
		if strings.Contains(s, token[:51]) || strings.Contains(s, "secret") {
			t.Errorf("bundle text leaks more than the prefix or the query: %q", s)
		}
	}
}

func TestValidatePayment(t *testing.T) {
	sess := &session.Session{TerminalID: "term-a", MerchantID: "merch-a"}
	tests := []struct {
		name      string
		in        string
		wantCause string
		wantField string
		wantAmt   string
	}{
		{"decimal string", `{"requestedAmount":"12.50","reference":"r1"}`, "", "", "12.5"},
		{"JSON number keeps its digits", `{"requestedAmount":12345678.99,"reference":"r1"}`, "", "", "12345678.99"},
		{"amount abc", `{"requestedAmount":"abc","reference":"r1"}`, CauseInvalidRequest, "requestedAmount", ""},
		{"amount missing", `{"reference":"r1"}`, CauseInvalidRequest, "requestedAmount", ""},
		{"amount negative", `{"requestedAmount":"-1","reference":"r1"}`, CauseInvalidRequest, "requestedAmount", ""},
		{"amount zero", `{"requestedAmount":0,"reference":"r1"}`, CauseInvalidRequest, "requestedAmount", ""},
		{"three decimals", `{"requestedAmount":"1.005","reference":"r1"}`, CauseInvalidRequest, "requestedAmount", ""},
		{"amount as a bool", `{"requestedAmount":true,"reference":"r1"}`, CauseInvalidRequest, "requestedAmount", ""},
		{"reference missing", `{"requestedAmount":"1"}`, CauseInvalidRequest, "reference", ""},
		{"reference too long", `{"requestedAmount":"1","reference":"` + strings.Repeat("x", 101) + `"}`, CauseInvalidRequest, "reference", ""},
		{"reference with a control character", `{"requestedAmount":"1","reference":"a\u0000b"}`, CauseInvalidRequest, "reference", ""},
		{"redirect not absolute", `{"requestedAmount":"1","reference":"r","redirectUrl":"/thanks"}`, CauseInvalidRequest, "redirectUrl", ""},
		{"redirect javascript", `{"requestedAmount":"1","reference":"r","redirectUrl":"javascript:alert(1)"}`, CauseInvalidRequest, "redirectUrl", ""},
		{"own terminal named", `{"requestedAmount":"1","reference":"r","terminalId":"term-a","merchantId":"merch-a"}`, "", "", "1"},
		{"another terminal", `{"requestedAmount":"1","reference":"r","terminalId":"term-b"}`, CauseTerminalMismatch, "", ""},
		{"another merchant", `{"requestedAmount":"1","reference":"r","merchantId":"merch-b"}`, CauseTerminalMismatch, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in paymentInput
			if err := json.Unmarshal([]byte(tt.in), &in); err != nil {
				t.Fatal(err)
			}
			req, err := validatePayment(in, sess)
			if tt.wantCause == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				if req.RequestedAmount.String() != tt.wantAmt || req.TerminalID != "term-a" || req.MerchantID != "merch-a" {
					t.Errorf("request = %+v, want amount %s for term-a/merch-a", req, tt.wantAmt)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) || p.Cause != tt.wantCause {
				t.Fatalf("err = %v, want cause %s", err, tt.wantCause)
			}
			if tt.wantField != "" && p.Fields[tt.wantField] == "" {
				t.Errorf("fields = %v, want a message for %s", p.Fields, tt.wantField)
			}
			if tt.wantCause == CauseTerminalMismatch && p.Status != http.StatusForbidden {
				t.Errorf("status %d, want 403", p.Status)
			}
		})
	}
}

// Every cause the server can answer has its section on /help/403, which every helpUrl points at.
func TestEveryCauseHasAHelpSection(t *testing.T) {
	all := []string{CauseTokenMissing, CauseTokenExpired, CauseWrongClientOrScope, CauseTerminalMismatch, CauseRealmMismatch,
		CauseClockSkew, CauseRefreshTokenInvalid, CauseBlockedBeforeBead, CauseWebhookSignatureInvalid, CauseCORSOriginNotAllowed,
		CauseCSRFHeaderMissing, CauseRateLimited, CauseBeadUnavailable, CauseSessionStoreUnavailable, CauseNotAuthenticated,
		CauseInvalidRequest, CauseUnknown, CauseInvalidCredentials, CauseNotFound, CauseCSRFTokenInvalid, CauseInternal}
	have := map[string]bool{}
	for _, c := range helpSections() {
		if have[c.Code] {
			t.Errorf("cause %s has two sections", c.Code)
		}
		have[c.Code] = true
		if c.Title == "" || c.Meaning == "" || c.Fix == "" {
			t.Errorf("cause %s: section incomplete", c.Code)
		}
	}
	for _, c := range all {
		if !have[c] {
			t.Errorf("cause %s has no section on /help/403", c)
		}
	}
}

// Each kind of bad amount gets a message that says what is wrong with it (a regression: "1.005" and "-1"
// were once both called "not a plain decimal number").
func TestAmountMessages(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:           "Enter the amount as a number with a dot before the cents, e.g. 12.50.",
		`"12,50"`:         "Enter the amount as a number with a dot before the cents, e.g. 12.50.",
		`"-1"`:            "The amount must be more than zero.",
		`-1`:              "The amount must be more than zero.",
		`"0"`:             "The amount must be more than zero.",
		`0.00`:            "The amount must be more than zero.",
		`"1.005"`:         "Use at most two decimals (cents), e.g. 12.50.",
		`""`:              "Enter the amount as a number with a dot before the cents, e.g. 12.50.",
		`null`:            "Enter an amount, e.g. 12.50.",
		`"1000000000.00"`: "The amount may be at most 999999999.99.",
	} {
		if _, got := parseAmountJSON(json.RawMessage(in)); got != want {
			t.Errorf("parseAmountJSON(%s) = %q, want %q", in, got, want)
		}
	}
	if d, msg := parseAmountJSON(json.RawMessage(`"0.10"`)); msg != "" || d.String() != "0.1" {
		t.Errorf(`parseAmountJSON("0.10") = %v, %q`, d, msg)
	}
}

// The store keeps a session until its idle timeout, its absolute lifetime or its refresh token's end,
// whichever comes first.
func TestSessionTTL(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	srv := &Server{cfg: &config.Config{SessionIdleTimeout: 8 * time.Hour, SessionMaxLifetime: 24 * time.Hour}, now: func() time.Time { return now }}
	tests := []struct {
		name string
		sess session.Session
		want time.Duration
	}{
		{"fresh session: the idle timeout", session.Session{CreatedAt: now}, 8 * time.Hour},
		{"near its absolute end", session.Session{CreatedAt: now.Add(-22 * time.Hour)}, 2 * time.Hour},
		{"already over: still a positive TTL", session.Session{CreatedAt: now.Add(-25 * time.Hour)}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := srv.sessionTTL(&tt.sess); got != tt.want {
				t.Errorf("sessionTTL = %v, want %v", got, tt.want)
			}
		})
	}
}
