package bead

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const tokenPath = "/realms/nonprod/protocol/openid-connect/token"

const tokenAnswer = `{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","expires_in":3600,"refresh_expires_in":36000,` +
	`"refresh_token":"new-refresh","token_type":"bearer","id_token":"eyJpZCI6MX0.e30.c2ln","not-before-policy":0,` +
	`"session_state":"ss-1","scope":"openid email profile"}`

func TestLoginSendsThePasswordGrant(t *testing.T) {
	tests := []struct {
		name         string
		username     string
		wantUsername string
	}{
		{"suffix appended to a bare terminal id", "0123456789abcdef01234567", "0123456789abcdef01234567@beadpay.io"},
		{"full login name left alone", "staff@shop.example", "staff@shop.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK, tokenAnswer))
			c := newTestClient(t, fake)
			got, err := c.Login(WithRequestID(context.Background(), "login-1"), tt.username, "s3cret pass")
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			want := &Token{
				AccessToken: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", RefreshToken: "new-refresh", IDToken: "eyJpZCI6MX0.e30.c2ln",
				TokenType: "bearer", Scope: "openid email profile",
				Expiry: testNow.Add(time.Hour), RefreshExpiry: testNow.Add(10 * time.Hour), ObtainedAt: testNow,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
			req := fake.only(t)
			if req.Method != http.MethodPost || req.Path != tokenPath {
				t.Errorf("request = %s %s, want POST %s", req.Method, req.Path, tokenPath)
			}
			wantForm := url.Values{
				"grant_type": {"password"}, "client_id": {"bead-terminal"}, "username": {tt.wantUsername},
				"password": {"s3cret pass"}, "scope": {"openid profile email"},
			}
			if diff := cmp.Diff(wantForm, req.Form); diff != "" {
				t.Errorf("form (-want +got), no client_secret expected:\n%s", diff)
			}
			if v := req.Header.Get("Authorization"); v != "" {
				t.Errorf("Authorization = %q, want none for a public client", v)
			}
			if v := req.Header.Get("X-Request-Id"); v != "login-1" {
				t.Errorf("x-request-id = %q, want login-1", v)
			}
		})
	}
}

func TestLoginInvalidGrant(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusUnauthorized, `{"error":"invalid_grant","error_description":"Invalid user credentials"}`))
	c := newTestClient(t, fake)
	_, err := c.Login(context.Background(), "abc", "wrong-password")
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want *TokenError", err)
	}
	if te.Status != 401 || te.Code != "invalid_grant" || te.Description != "Invalid user credentials" || te.Shape != ShapeErrorMessage {
		t.Errorf("TokenError = %d %q %q %q", te.Status, te.Code, te.Description, te.Shape)
	}
	if !IsInvalidGrant(err) {
		t.Error("IsInvalidGrant = false")
	}
	if want := "bead: password grant: 401 invalid_grant: Invalid user credentials"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if want := "client_id=bead-terminal&grant_type=password&password=[redacted]&scope=openid+profile+email&username=abc%40beadpay.io"; te.Request.BodySummary != want {
		t.Errorf("BodySummary = %q, want %q", te.Request.BodySummary, want)
	}
}

func TestClientSecretIsSentAndRedacted(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusBadRequest, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`))
	c := newTestClient(t, fake, func(cfg *Config) { cfg.ClientSecret = "very-secret-value" })
	_, err := c.Login(context.Background(), "abc", "pw")
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want *TokenError", err)
	}
	if got := fake.only(t).Form.Get("client_secret"); got != "very-secret-value" {
		t.Errorf("client_secret sent = %q", got)
	}
	if strings.Contains(te.Request.BodySummary, "very-secret-value") || !strings.Contains(te.Request.BodySummary, "client_secret=[redacted]") {
		t.Errorf("BodySummary = %q, want the secret redacted", te.Request.BodySummary)
	}
	if IsInvalidGrant(err) {
		t.Error("IsInvalidGrant = true for unauthorized_client")
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name        string
		answer      string
		wantRefresh string
	}{
		{"rotated refresh token is kept", tokenAnswer, "new-refresh"},
		{"old refresh token kept when none is returned",
			`{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","expires_in":300,"token_type":"Bearer"}`, "old-refresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK, tt.answer))
			c := newTestClient(t, fake)
			got, err := c.Refresh(WithRequestID(context.Background(), "refresh-1"), "old-refresh")
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got.RefreshToken != tt.wantRefresh {
				t.Errorf("RefreshToken = %q, want %q", got.RefreshToken, tt.wantRefresh)
			}
			if got.AccessToken != "eyJhbGciOiJSUzI1NiJ9.e30.c2ln" {
				t.Errorf("AccessToken = %q", got.AccessToken)
			}
			req := fake.only(t)
			wantForm := url.Values{"grant_type": {"refresh_token"}, "client_id": {"bead-terminal"}, "refresh_token": {"old-refresh"}}
			if diff := cmp.Diff(wantForm, req.Form); diff != "" {
				t.Errorf("form (-want +got):\n%s", diff)
			}
			if v := req.Header.Get("X-Request-Id"); v != "refresh-1" {
				t.Errorf("x-request-id = %q, want refresh-1", v)
			}
		})
	}
}

func TestRefreshInvalidGrant(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Token is not active"}`))
	c := newTestClient(t, fake)
	_, err := c.Refresh(context.Background(), "revoked-refresh-token")
	if !IsInvalidGrant(err) {
		t.Fatalf("IsInvalidGrant(%v) = false", err)
	}
	var te *TokenError
	errors.As(err, &te)
	if te.Op != "refresh grant" || strings.Contains(te.Request.BodySummary, "revoked-refresh-token") {
		t.Errorf("op %q, BodySummary %q: want the refresh token redacted", te.Op, te.Request.BodySummary)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	tests := []struct {
		name      string
		handle    http.HandlerFunc
		timeout   time.Duration
		wantShape string // for a *TokenError
		wantErr   error  // for a sentinel
		wantTime  bool   // for a *TransportError with Timeout
	}{
		{
			name: "WAF page in front of the realm",
			handle: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte("<html><title>Access denied</title></html>"))
			},
			wantShape: ShapeHTML,
		},
		{
			name:    "2xx without an access token",
			handle:  answerJSON(http.StatusOK, `{"token_type":"Bearer"}`),
			wantErr: ErrUnexpectedAnswer,
		},
		{
			name: "slow realm",
			handle: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(2 * time.Second):
				}
			},
			timeout:  50 * time.Millisecond,
			wantTime: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, tt.handle)
			c := newTestClient(t, fake, func(cfg *Config) {
				if tt.timeout > 0 {
					cfg.Timeout = tt.timeout
				}
			})
			_, err := c.Login(context.Background(), "abc", "pw")
			var te *TokenError
			var tr *TransportError
			switch {
			case tt.wantShape != "":
				if !errors.As(err, &te) || te.Shape != tt.wantShape || te.Code != "" {
					t.Errorf("error = %v, want a *TokenError of shape %s", err, tt.wantShape)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			case tt.wantTime:
				if !errors.As(err, &tr) || !tr.Timeout || tr.Op != "password grant" {
					t.Errorf("error = %#v, want a *TransportError with Timeout", err)
				}
			}
		})
	}
}

func TestLogout(t *testing.T) {
	fake := newFake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	c := newTestClient(t, fake)
	if err := c.Logout(WithRequestID(context.Background(), "logout-1"), "the-refresh"); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	req := fake.only(t)
	if req.Method != http.MethodPost || req.Path != "/realms/nonprod/protocol/openid-connect/logout" {
		t.Errorf("request = %s %s", req.Method, req.Path)
	}
	if diff := cmp.Diff(url.Values{"client_id": {"bead-terminal"}, "refresh_token": {"the-refresh"}}, req.Form); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
	if v := req.Header.Get("X-Request-Id"); v != "logout-1" {
		t.Errorf("x-request-id = %q", v)
	}
}

func TestLogoutRefused(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Invalid refresh token"}`))
	c := newTestClient(t, fake)
	err := c.Logout(context.Background(), "stale")
	if !IsInvalidGrant(err) {
		t.Fatalf("IsInvalidGrant(%v) = false", err)
	}
	if want := "bead: logout: 400 invalid_grant: Invalid refresh token"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestLogoutWithoutRefreshTokenSendsNothing(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusNoContent, ""))
	c := newTestClient(t, fake)
	if err := c.Logout(context.Background(), ""); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if n := len(fake.requests()); n != 0 {
		t.Errorf("fake got %d requests, want none", n)
	}
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name    string
		doc     func(base string) string
		status  int
		wantErr error
		wantAPI bool
	}{
		{
			name: "matching realm",
			doc: func(b string) string {
				return `{"issuer":"` + b + `/realms/nonprod","token_endpoint":"` + b + tokenPath + `"}`
			},
			status: 200,
		},
		{
			name: "another realm",
			doc: func(b string) string {
				return `{"issuer":"` + b + `/realms/prod","token_endpoint":"` + b + tokenPath + `"}`
			},
			status:  200,
			wantErr: ErrDiscoveryMismatch,
		},
		{
			name:    "no token endpoint",
			doc:     func(b string) string { return `{"issuer":"` + b + `/realms/nonprod"}` },
			status:  200,
			wantErr: ErrDiscoveryMismatch,
		},
		{
			name:    "not JSON",
			doc:     func(string) string { return `<html>hello</html>` },
			status:  200,
			wantErr: ErrUnexpectedAnswer,
		},
		{
			name:    "no such realm",
			doc:     func(string) string { return `{"error":"Realm does not exist"}` },
			status:  404,
			wantAPI: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			fake := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				answerJSON(tt.status, tt.doc(base))(w, r)
			})
			base = fake.srv.URL
			c := newTestClient(t, fake)
			err := c.Discover(WithRequestID(context.Background(), "discover-1"))
			var ae *APIError
			switch {
			case tt.wantAPI:
				if !errors.As(err, &ae) || ae.Status != tt.status {
					t.Errorf("error = %v, want *APIError %d", err, tt.status)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("Discover: %v", err)
			}
			req := fake.only(t)
			if req.Path != "/realms/nonprod/.well-known/openid-configuration" || req.Header.Get("X-Request-Id") != "discover-1" {
				t.Errorf("request = %s with x-request-id %q", req.Path, req.Header.Get("X-Request-Id"))
			}
		})
	}
}

func TestRequestIDOnEveryCallKind(t *testing.T) {
	token := sampleToken(t)
	calls := []struct {
		kind string
		run  func(ctx context.Context, c *Client) error
	}{
		{"password grant", func(ctx context.Context, c *Client) error { _, err := c.Login(ctx, "a", "b"); return err }},
		{"refresh grant", func(ctx context.Context, c *Client) error { _, err := c.Refresh(ctx, "r"); return err }},
		{"logout", func(ctx context.Context, c *Client) error { return c.Logout(ctx, "r") }},
		{"discover", func(ctx context.Context, c *Client) error { return c.Discover(ctx) }},
		{"create payment", func(ctx context.Context, c *Client) error {
			_, err := c.CreatePayment(ctx, token, sampleCreate(t), "k")
			return err
		}},
		{"tracking", func(ctx context.Context, c *Client) error { _, err := c.Tracking(ctx, token, "t1"); return err }},
		{"probe", func(ctx context.Context, c *Client) error { return c.Probe(ctx, token) }},
	}
	for _, call := range calls {
		t.Run(call.kind, func(t *testing.T) {
			// Every kind is answered with a 500: the point is what was sent, and the error path also
			// shows the recorded request id.
			fake := newFake(t, answerJSON(http.StatusInternalServerError, `{"error":"server_error"}`))
			c := newTestClient(t, fake)
			id := "rid-" + strings.ReplaceAll(call.kind, " ", "-")
			err := call.run(WithRequestID(context.Background(), id), c)
			if err == nil {
				t.Fatal("want an error from the 500")
			}
			if got := fake.only(t).Header.Get("X-Request-Id"); got != id {
				t.Errorf("x-request-id = %q, want %q", got, id)
			}
			var ae *APIError
			var te *TokenError
			switch {
			case errors.As(err, &ae):
				if ae.Request.RequestID != id || ae.Op != call.kind {
					t.Errorf("APIError request id, op = %q, %q", ae.Request.RequestID, ae.Op)
				}
			case errors.As(err, &te):
				if te.Request.RequestID != id || te.Op != call.kind {
					t.Errorf("TokenError request id, op = %q, %q", te.Request.RequestID, te.Op)
				}
			default:
				t.Errorf("error = %v, want *APIError or *TokenError", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	valid := Config{APIURL: "https://api.test.devs.beadpay.io/", IdentityURL: "https://identity.beadpay.io/realms/nonprod", ClientID: "bead-terminal"}
	tests := []struct {
		name     string
		adjust   func(*Config)
		wantText []string // each must appear in the error; none means success
	}{
		{name: "valid, defaults filled"},
		{name: "empty URLs", adjust: func(c *Config) { c.APIURL, c.IdentityURL = "", " " }, wantText: []string{"APIURL: empty", "IdentityURL: empty"}},
		{name: "wrong scheme", adjust: func(c *Config) { c.APIURL = "ftp://api.example" }, wantText: []string{"scheme must be http or https"}},
		{name: "relative", adjust: func(c *Config) { c.IdentityURL = "/realms/nonprod" }, wantText: []string{"IdentityURL"}},
		{name: "credentials in the URL", adjust: func(c *Config) { c.APIURL = "https://u:p@api.example" }, wantText: []string{"credentials in the URL"}},
		{name: "query", adjust: func(c *Config) { c.APIURL = "https://api.example/?x=1" }, wantText: []string{"no query"}},
		{name: "no client", adjust: func(c *Config) { c.ClientID = "" }, wantText: []string{"ClientID"}},
		{name: "tracking path", adjust: func(c *Config) { c.TrackingPath = "byId" }, wantText: []string{"TrackingPath"}},
		{name: "negative timeout", adjust: func(c *Config) { c.Timeout = -time.Second }, wantText: []string{"Timeout"}},
		{name: "API key with a newline", adjust: func(c *Config) { c.APIKey = "k\n" }, wantText: []string{"APIKey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			if tt.adjust != nil {
				tt.adjust(&cfg)
			}
			c, err := New(cfg)
			if len(tt.wantText) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.APIURL() != "https://api.test.devs.beadpay.io" || c.cfg.Timeout != DefaultTimeout || c.cfg.TrackingPath != TrackingByID || c.cfg.Now == nil {
					t.Errorf("defaults: APIURL %q, Timeout %s, TrackingPath %q", c.APIURL(), c.cfg.Timeout, c.cfg.TrackingPath)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusOK, "{}"))
	scopes := []string{"openid", "profile", "email"}
	c := newTestClient(t, fake, func(cfg *Config) { cfg.Scopes = scopes })
	scopes[0] = "changed by the caller"
	got := []string{c.APIURL(), c.IdentityURL(), c.ClientID(), strings.Join(c.Scopes(), " ")}
	want := []string{fake.srv.URL, fake.srv.URL + "/realms/nonprod", "bead-terminal", "openid profile email"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accessors (-want +got):\n%s", diff)
	}
	c.Scopes()[0] = "changed through the accessor"
	if c.Scopes()[0] != "openid" {
		t.Error("Scopes() hands out the client's own slice")
	}
}
