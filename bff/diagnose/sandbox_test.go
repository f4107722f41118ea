package diagnose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
	"beadbff/bff/sandbox"
)

// These tests provoke every failure the sandbox can produce with the real Bead client and diagnose the
// real error: the sandbox is an independent implementation of Bead's wire format, so a rule that only
// fits hand-written fixtures fails here.

// world is one sandbox on a loopback port.
type world struct {
	t         *testing.T
	sb        *sandbox.Sandbox
	srv       *httptest.Server
	url       string
	terminals []sandbox.Terminal
}

func newWorld(t *testing.T, opts sandbox.Options) *world {
	t.Helper()
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { srv.Close(); sb.Close() })
	return &world{t: t, sb: sb, srv: srv, url: srv.URL, terminals: sb.Terminals()}
}

// client is a Bead client of the sandbox's nonprod realm, changed by edit.
func (w *world) client(edit func(*bead.Config)) *bead.Client {
	w.t.Helper()
	cfg := bead.Config{
		APIURL:         w.url,
		IdentityURL:    w.url + "/realms/nonprod",
		ClientID:       "bead-terminal",
		Scopes:         []string{"openid", "profile", "email"},
		UsernameSuffix: "@beadpay.io",
		Timeout:        5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := bead.New(cfg)
	if err != nil {
		w.t.Fatalf("bead.New: %v", err)
	}
	return c
}

func (w *world) login(c *bead.Client, terminal int) *bead.Token {
	w.t.Helper()
	tok, err := c.Login(context.Background(), w.terminals[terminal].Username, w.terminals[terminal].Password)
	if err != nil {
		w.t.Fatalf("login: %v", err)
	}
	return tok
}

func (w *world) fault(kind string, count int) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]any{"kind": kind, "count": count, "delayMs": 3000})
	resp, err := http.Post(w.url+"/_sandbox/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("fault %s: %d", kind, resp.StatusCode)
	}
}

// config is what the server would pass as Incident.Config for a session of terminal.
func (w *world) config(c *bead.Client, terminal int) diagnose.Config {
	return diagnose.Config{
		ClientID: c.ClientID(), Scopes: c.Scopes(), IdentityURL: c.IdentityURL(), APIURL: c.APIURL(),
		TerminalID: w.terminals[terminal].TerminalID, MerchantID: w.terminals[terminal].MerchantID,
	}
}

func (w *world) payment(c *bead.Client, tok *bead.Token, terminal int) *bead.CreatedPayment {
	w.t.Helper()
	p, err := c.CreatePayment(context.Background(), tok.AccessToken, w.createRequest(terminal), "key-"+w.terminals[terminal].TerminalID)
	if err != nil {
		w.t.Fatalf("create payment: %v", err)
	}
	return p
}

func (w *world) createRequest(terminal int) bead.CreatePaymentRequest {
	return bead.CreatePaymentRequest{
		TerminalID: w.terminals[terminal].TerminalID, MerchantID: w.terminals[terminal].MerchantID,
		RequestedAmount: decimal.RequireFromString("12.50"), Reference: "order-1", Description: "two coffees",
	}
}

// incident builds what the server would know after a failed call with tok.
func (w *world) incident(op string, c *bead.Client, tok *bead.Token, terminal int, err error) diagnose.Incident {
	in := diagnose.Incident{Op: op, Err: err, Config: w.config(c, terminal), Now: time.Now()}
	if tok != nil {
		in.Token = diagnose.TokenInfoOf(tok)
	}
	return in
}

// evidenceLike finds an evidence line from source whose fact contains want.
func evidenceLike(d diagnose.Diagnosis, source, want string) bool {
	for _, e := range d.Evidence {
		if e.Source == source && strings.Contains(e.Fact, want) {
			return true
		}
	}
	return false
}

func checkStatus(d diagnose.Diagnosis, id string) string {
	for _, c := range d.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return "missing"
}

func dump(t *testing.T, d diagnose.Diagnosis) string {
	t.Helper()
	b, _ := json.MarshalIndent(d, "", "  ")
	return string(b)
}

func TestDiagnoseRealSandboxFailures(t *testing.T) {
	w := newWorld(t, sandbox.Options{})
	ctx := context.Background()
	base := w.client(nil)

	type want struct {
		cause, confidence string
		source, fact      string            // a key evidence line: its source, and words its fact contains
		checks            map[string]string // check id -> status
	}
	tests := []struct {
		name string
		run  func(t *testing.T) diagnose.Incident
		want want
	}{
		{
			name: "waf_block: HTML 403 from an AWS load balancer",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				w.fault("waf_block", 1)
				_, err := base.Tracking(ctx, tok.AccessToken, strings.Repeat("a", 32))
				return w.incident(diagnose.OpTracking, base, tok, 0, err)
			},
			want: want{cause: diagnose.CauseBlockedBeforeBead, confidence: diagnose.ConfidenceHigh,
				source: "response header Server", fact: "Server: awselb/2.0 is an AWS load balancer",
				checks: map[string]string{diagnose.CheckMiddlebox: diagnose.CheckFailed, diagnose.CheckHeaders: diagnose.CheckPassed, diagnose.CheckJWT: diagnose.CheckPassed}},
		},
		{
			name: "strip_authorization: sent, but none arrived",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				w.fault("strip_authorization", 1)
				err := base.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, base, tok, 0, err)
			},
			want: want{cause: diagnose.CauseTokenMissing, confidence: diagnose.ConfidenceHigh,
				source: "request as sent vs response header WWW-Authenticate", fact: "chars); Bead says none arrived",
				checks: map[string]string{diagnose.CheckHeaders: diagnose.CheckFailed, diagnose.CheckProbe: diagnose.CheckFailed, diagnose.CheckMiddlebox: diagnose.CheckFailed}},
		},
		{
			name: "rate_limit: 429 is not an auth failure",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				w.fault("rate_limit", 1)
				_, err := base.CreatePayment(ctx, tok.AccessToken, w.createRequest(0), "rate-1")
				return w.incident(diagnose.OpCreatePayment, base, tok, 0, err)
			},
			want: want{cause: diagnose.CauseRateLimited, confidence: diagnose.ConfidenceHigh,
				source: "response header X-RateLimit-Limit", fact: "X-RateLimit-Limit: 100",
				checks: map[string]string{diagnose.CheckResource: diagnose.CheckPassed}},
		},
		{
			name: "expire_tokens: Bead says the token expired",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				w.fault("expire_tokens", 0)
				t.Cleanup(func() { clearFaults(t, w) })
				err := base.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, base, tok, 0, err)
			},
			want: want{cause: diagnose.CauseTokenExpired, confidence: diagnose.ConfidenceHigh,
				source: "response header WWW-Authenticate error_description", fact: "Bead says: The token expired at '"},
		},
		{
			name: "revoke_refresh_tokens: the refresh grant gets invalid_grant",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				w.fault("revoke_refresh_tokens", 0)
				t.Cleanup(func() { clearFaults(t, w) })
				_, err := base.Refresh(ctx, tok.RefreshToken)
				return w.incident(diagnose.OpRefreshGrant, base, nil, 0, err)
			},
			want: want{cause: diagnose.CauseRefreshTokenInvalid, confidence: diagnose.ConfidenceHigh,
				source: "token endpoint error_description", fact: "the refresh token was revoked",
				checks: map[string]string{diagnose.CheckHeaders: diagnose.CheckNotApplicable, diagnose.CheckJWT: diagnose.CheckNotApplicable}},
		},
		{
			name: "a refresh token used twice",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				if _, err := base.Refresh(ctx, tok.RefreshToken); err != nil {
					t.Fatal(err)
				}
				_, err := base.Refresh(ctx, tok.RefreshToken)
				return w.incident(diagnose.OpRefreshGrant, base, nil, 0, err)
			},
			want: want{cause: diagnose.CauseRefreshTokenInvalid, confidence: diagnose.ConfidenceHigh,
				source: "token endpoint error_description", fact: "already been used"},
		},
		{
			name: "slow: no answer in time",
			run: func(t *testing.T) diagnose.Incident {
				quick := w.client(func(c *bead.Config) { c.Timeout = 300 * time.Millisecond })
				tok := w.login(quick, 0)
				w.fault("slow", 1)
				err := quick.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, quick, tok, 0, err)
			},
			want: want{cause: diagnose.CauseBeadUnavailable, confidence: diagnose.ConfidenceHigh,
				source: "transport", fact: "no answer within the time budget",
				checks: map[string]string{diagnose.CheckMiddlebox: diagnose.CheckNotApplicable}},
		},
		{
			name: "connection refused",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				dead := httptest.NewServer(http.NotFoundHandler())
				deadURL := dead.URL
				dead.Close()
				c := w.client(func(c *bead.Config) { c.APIURL = deadURL })
				err := c.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, c, tok, 0, err)
			},
			want: want{cause: diagnose.CauseBeadUnavailable, confidence: diagnose.ConfidenceHigh,
				source: "transport", fact: "connection refused"},
		},
		{
			name: "client bead-integrator: the payments API refuses its tokens",
			run: func(t *testing.T) diagnose.Incident {
				c := w.client(func(c *bead.Config) { c.ClientID = "bead-integrator" })
				tok := w.login(c, 0)
				err := c.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, c, tok, 0, err)
			},
			want: want{cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
				source: "token claim azp", fact: "token client is bead-integrator; the payments API accepts bead-terminal",
				checks: map[string]string{diagnose.CheckJWT: diagnose.CheckFailed, diagnose.CheckMiddlebox: diagnose.CheckPassed}},
		},
		{
			name: "scope without openid: refused with 403",
			run: func(t *testing.T) diagnose.Incident {
				c := w.client(func(c *bead.Config) { c.Scopes = []string{"profile", "email"} })
				tok := w.login(c, 0)
				err := c.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, c, tok, 0, err)
			},
			want: want{cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
				source: "token claim scope", fact: `token scope is "profile email": no openid`},
		},
		{
			name: "unknown client: the realm refuses it",
			run: func(t *testing.T) diagnose.Incident {
				c := w.client(func(c *bead.Config) { c.ClientID = "bead-terminl" })
				_, err := c.Login(ctx, w.terminals[0].Username, w.terminals[0].Password)
				return w.incident(diagnose.OpPasswordGrant, c, nil, 0, err)
			},
			want: want{cause: diagnose.CauseWrongClientOrScope, confidence: diagnose.ConfidenceHigh,
				source: "request form client_id", fact: "client_id sent: bead-terminl"},
		},
		{
			name: "wrong password",
			run: func(t *testing.T) diagnose.Incident {
				_, err := base.Login(ctx, w.terminals[0].TerminalID, "not-the-password")
				return w.incident(diagnose.OpPasswordGrant, base, nil, 0, err)
			},
			want: want{cause: diagnose.CauseInvalidCredentials, confidence: diagnose.ConfidenceHigh,
				source: "token endpoint answer", fact: `invalid_grant: Invalid user credentials`},
		},
		{
			name: "prod realm token on the sandbox API",
			run: func(t *testing.T) diagnose.Incident {
				c := w.client(func(c *bead.Config) { c.IdentityURL = w.url + "/realms/prod" })
				tok := w.login(c, 0)
				err := c.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, c, tok, 0, err)
			},
			want: want{cause: diagnose.CauseRealmMismatch, confidence: diagnose.ConfidenceHigh,
				source: "response header WWW-Authenticate error_description", fact: "/realms/prod' is invalid"},
		},
		{
			name: "body names another terminal",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				_, err := base.CreatePayment(ctx, tok.AccessToken, w.createRequest(2), "other-terminal")
				return w.incident(diagnose.OpCreatePayment, base, tok, 0, err)
			},
			want: want{cause: diagnose.CauseTerminalMismatch, confidence: diagnose.ConfidenceHigh,
				source: "request body vs token claim terminalId", fact: "the request names terminal 5eadbeef00000000000b0001; the token's terminal is 5eadbeef00000000000a0001",
				checks: map[string]string{diagnose.CheckResource: diagnose.CheckFailed}},
		},
		{
			name: "another terminal's trackingId, the probe passing",
			run: func(t *testing.T) diagnose.Incident {
				owner := w.login(base, 2)
				p := w.payment(base, owner, 2)
				tok := w.login(base, 0)
				_, err := base.Tracking(ctx, tok.AccessToken, p.TrackingID)
				in := w.incident(diagnose.OpTracking, base, tok, 0, err)
				in.Probe = diagnose.NewProbeResult(base.Probe(ctx, tok.AccessToken))
				return in
			},
			want: want{cause: diagnose.CauseTerminalMismatch, confidence: diagnose.ConfidenceMedium,
				source: "probe", fact: "GET /currencies with the same token answered 200",
				checks: map[string]string{diagnose.CheckProbe: diagnose.CheckPassed, diagnose.CheckResource: diagnose.CheckNotApplicable}},
		},
		{
			name: "another terminal's trackingId, its owner known",
			run: func(t *testing.T) diagnose.Incident {
				owner := w.login(base, 2)
				p := w.payment(base, owner, 2)
				tok := w.login(base, 0)
				_, err := base.Tracking(ctx, tok.AccessToken, p.TrackingID)
				in := w.incident(diagnose.OpTracking, base, tok, 0, err)
				in.Resource = diagnose.Resource{TrackingID: p.TrackingID, TrackingOwner: w.terminals[2].TerminalID}
				return in
			},
			want: want{cause: diagnose.CauseTerminalMismatch, confidence: diagnose.ConfidenceHigh,
				source: "payment index vs token claim terminalId", fact: "was created by terminal 5eadbeef00000000000b0001",
				checks: map[string]string{diagnose.CheckResource: diagnose.CheckFailed}},
		},
		{
			name: "this server's clock two hours ahead: Bead accepts, the clocks disagree",
			run: func(t *testing.T) diagnose.Incident {
				ahead := func() time.Time { return time.Now().Add(2 * time.Hour) }
				c := w.client(func(c *bead.Config) { c.Now = ahead })
				tok := w.login(c, 0)
				err := c.Probe(ctx, tok.AccessToken)
				in := w.incident(diagnose.OpProbe, c, tok, 0, err)
				in.Now = ahead()
				return in
			},
			want: want{cause: diagnose.CauseClockSkew, confidence: diagnose.ConfidenceMedium,
				source: "token claim exp", fact: "this server's clock is ahead of the realm's",
				checks: map[string]string{diagnose.CheckProbe: diagnose.CheckPassed, diagnose.CheckJWT: diagnose.CheckFailed}},
		},
		{
			name: "healthy probe",
			run: func(t *testing.T) diagnose.Incident {
				tok := w.login(base, 0)
				err := base.Probe(ctx, tok.AccessToken)
				return w.incident(diagnose.OpProbe, base, tok, 0, err)
			},
			want: want{cause: "", source: "token", fact: "token starts eyJ",
				checks: map[string]string{diagnose.CheckHeaders: diagnose.CheckPassed, diagnose.CheckJWT: diagnose.CheckPassed,
					diagnose.CheckProbe: diagnose.CheckPassed, diagnose.CheckResource: diagnose.CheckNotApplicable, diagnose.CheckMiddlebox: diagnose.CheckPassed}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(tt.run(t))
			if d.Cause != tt.want.cause || d.Confidence != tt.want.confidence {
				t.Errorf("cause = %q (%s), want %q (%s)\n%s", d.Cause, d.Confidence, tt.want.cause, tt.want.confidence, dump(t, d))
			}
			if !evidenceLike(d, tt.want.source, tt.want.fact) {
				t.Errorf("no evidence from %q containing %q\n%s", tt.want.source, tt.want.fact, dump(t, d))
			}
			for id, status := range tt.want.checks {
				if got := checkStatus(d, id); got != status {
					t.Errorf("check %s = %s, want %s\n%s", id, got, status, dump(t, d))
				}
			}
			if testing.Verbose() {
				t.Log(dump(t, d))
			}
		})
	}
}

func clearFaults(t *testing.T, w *world) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, w.url+"/_sandbox/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
