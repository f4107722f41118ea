package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The tests talk to the sandbox over HTTP only, as the product does, and read Bead's wire format
// with their own small decoders rather than the package's types, so a wrong field name in the
// package shows up here.

type fixture struct {
	sb   *Sandbox
	base string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	sb, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		srv.Close()
		sb.Close()
	})
	return &fixture{sb: sb, base: srv.URL}
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tokenAnswer is Keycloak's token response as a client reads it.
type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	IDToken          string `json:"id_token"`
	NotBeforePolicy  *int   `json:"not-before-policy"`
	SessionState     string `json:"session_state"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (f *fixture) terminal(i int) Terminal { return f.sb.Terminals()[i] }

// postForm sends a form to a realm endpoint and decodes the JSON answer, if any.
func (f *fixture) postForm(t *testing.T, realm, endpoint string, form url.Values) (int, tokenAnswer) {
	t.Helper()
	resp, err := http.PostForm(f.base+"/realms/"+realm+"/protocol/openid-connect/"+endpoint, form)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans tokenAnswer
	if len(body) > 0 {
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatalf("POST %s: answer %q is not JSON: %v", endpoint, body, err)
		}
	}
	return resp.StatusCode, ans
}

func passwordForm(client string, term Terminal, scope string) url.Values {
	form := url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {term.Username}, "password": {term.Password}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return form
}

// login does a password grant that must succeed.
func (f *fixture) login(t *testing.T, realm, client string, term Terminal, scope string) tokenAnswer {
	t.Helper()
	status, ans := f.postForm(t, realm, "token", passwordForm(client, term, scope))
	if status != http.StatusOK {
		t.Fatalf("password grant (%s, %s): status %d, %s: %s", realm, client, status, ans.Error, ans.ErrorDescription)
	}
	return ans
}

// token returns a working access token of terminal i, as the product would hold one.
func (f *fixture) token(t *testing.T, i int) string {
	t.Helper()
	return f.login(t, "nonprod", "bead-terminal", f.terminal(i), "openid profile email").AccessToken
}

func (f *fixture) refresh(t *testing.T, realm, client, refreshToken string) (int, tokenAnswer) {
	t.Helper()
	return f.postForm(t, realm, "token", url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {refreshToken}})
}

// call makes an HTTP request to the sandbox. body is JSON-encoded unless it is a string or nil.
func (f *fixture) call(t *testing.T, method, path string, body any, header http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.base+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// paymentBody is a valid create-payment body for a terminal.
func paymentBody(term Terminal, amount string) map[string]any {
	return map[string]any{
		"terminalId":      term.TerminalID,
		"merchantId":      term.MerchantID,
		"requestedAmount": json.Number(amount),
		"paymentUrlType":  "web",
		"reference":       "ORDER-1",
		"description":     "Two espressos",
	}
}

type created struct {
	TrackingID    string          `json:"trackingId"`
	PaymentID     string          `json:"paymentId"`
	PaymentPageID string          `json:"paymentPageId"`
	PaymentURLs   json.RawMessage `json:"paymentUrls"`
}

// createPayment creates a payment that must succeed.
func (f *fixture) createPayment(t *testing.T, token string, body map[string]any) created {
	t.Helper()
	resp, raw := f.call(t, http.MethodPost, "/payments/crypto", body, bearer(token))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create payment: status %d: %s", resp.StatusCode, raw)
	}
	var c created
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("create payment answer %s: %v", raw, err)
	}
	return c
}

// tracking reads a payment's status object as a generic map.
func (f *fixture) tracking(t *testing.T, token, trackingID string) map[string]any {
	t.Helper()
	resp, raw := f.call(t, http.MethodGet, "/payments/tracking/"+trackingID, nil, bearer(token))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tracking: status %d: %s", resp.StatusCode, raw)
	}
	return decodeMap(t, raw)
}

func decodeMap(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	return m
}

// control calls a /_sandbox endpoint that must answer wantStatus.
func (f *fixture) control(t *testing.T, method, path string, body any, wantStatus int) []byte {
	t.Helper()
	resp, raw := f.call(t, method, path, body, nil)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, raw)
	}
	return raw
}

func (f *fixture) fault(t *testing.T, body map[string]any) {
	t.Helper()
	f.control(t, http.MethodPost, "/_sandbox/faults", body, http.StatusOK)
}

type statsAnswer struct {
	TokenRequests     map[string]int `json:"tokenRequests"`
	APIRequests       map[string]int `json:"apiRequests"`
	RefreshTokenReuse int            `json:"refreshTokenReuse"`
	PaymentsCreated   int            `json:"paymentsCreated"`
	WebhookDeliveries map[string]int `json:"webhookDeliveries"`
	FaultsApplied     map[string]int `json:"faultsApplied"`
}

func (f *fixture) stats(t *testing.T) statsAnswer {
	t.Helper()
	var s statsAnswer
	if err := json.Unmarshal(f.control(t, http.MethodGet, "/_sandbox/stats", nil, http.StatusOK), &s); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s
}

// jwks fetches a realm's JWKS and returns its keys by kid.
func (f *fixture) jwks(t *testing.T, realm string) map[string]*rsa.PublicKey {
	t.Helper()
	resp, raw := f.call(t, http.MethodGet, "/realms/"+realm+"/protocol/openid-connect/certs", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("certs: %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct{ Kid, Kty, Alg, Use, N, E string }
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("certs: %v", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" {
			t.Fatalf("certs: key %+v is not an RS256 signing key", k)
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("certs: bad n or e in %+v", k)
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys
}

// verifyJWT checks an RS256 token against a realm's JWKS and returns its claims.
func (f *fixture) verifyJWT(t *testing.T, realm, raw string) jwt.MapClaims {
	t.Helper()
	keys := f.jwks(t, realm)
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		t.Fatalf("token does not verify against the %s JWKS: %v", realm, err)
	}
	return claims
}

// verifyWebhook checks x-webhook-signature as a receiver following bead-api.md would.
func verifyWebhook(signingSecret, header string, body []byte, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(signingSecret)
	if err != nil {
		return false
	}
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "s":
			sig = v
		}
	}
	var ms int64
	if err := json.Unmarshal([]byte(ts), &ms); err != nil || ms == 0 {
		return false
	}
	if d := now.Sub(time.UnixMilli(ms)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

// eventually polls cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
