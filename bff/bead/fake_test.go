package bead

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// testNow is the fixed clock of every test client.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seenRequest is one request as the fake Bead received it.
type seenRequest struct {
	Method  string
	Path    string // decoded
	RawPath string // as sent (escaped), "" when equal to Path
	Header  http.Header
	Body    string
	Form    url.Values // for form bodies
}

// fakeBead is an httptest server standing in for both the realm and the payments API. Each test gives
// it the handler answering the variant under test; it records every request it gets.
type fakeBead struct {
	srv *httptest.Server

	mu   sync.Mutex
	seen []seenRequest
}

func newFake(t *testing.T, handle http.HandlerFunc) *fakeBead {
	t.Helper()
	f := &fakeBead{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seenRequest{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Header: r.Header.Clone(), Body: string(body)}
		if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
			s.Form, _ = url.ParseQuery(string(body))
		}
		f.mu.Lock()
		f.seen = append(f.seen, s)
		f.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBead) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// only is the single request the fake got; the test fails if it got another number.
func (f *fakeBead) only(t *testing.T) seenRequest {
	t.Helper()
	got := f.requests()
	if len(got) != 1 {
		t.Fatalf("fake Bead got %d requests, want 1", len(got))
	}
	return got[0]
}

// testConfig points a client at the fake: the API at its root and the realm at /realms/nonprod, the way
// the sandbox serves them.
func testConfig(f *fakeBead) Config {
	return Config{
		APIURL:         f.srv.URL,
		IdentityURL:    f.srv.URL + "/realms/nonprod",
		ClientID:       "bead-terminal",
		Scopes:         []string{"openid", "profile", "email"},
		UsernameSuffix: "@beadpay.io",
		Timeout:        2 * time.Second,
		Now:            func() time.Time { return testNow },
	}
}

func newTestClient(t *testing.T, f *fakeBead, adjust ...func(*Config)) *Client {
	t.Helper()
	cfg := testConfig(f)
	for _, a := range adjust {
		a(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// answerJSON replies with status and body as application/json.
func answerJSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// makeJWT builds an unsigned-looking JWT (the signature is junk: DecodeClaims never checks it).
func makeJWT(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	seg := func(v map[string]any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return seg(header) + "." + seg(claims) + ".c2lnbmF0dXJl"
}

// sampleToken is a realistic access token (long enough that the redaction shows 50 characters).
func sampleToken(t *testing.T) string {
	t.Helper()
	return makeJWT(t,
		map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"},
		map[string]any{
			"iss": "https://identity.beadpay.io/realms/nonprod", "aud": "account", "azp": "bead-terminal",
			"exp": 1772370000, "iat": 1772366400, "scope": "openid profile email",
			"preferred_username": "0123456789abcdef01234567@beadpay.io",
		})
}

func mustDecimal(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatalf("decimal %q: %v", s, err)
	}
	return d
}

// exactDecimal compares decimals by value and by the digits they carry, so that a test fails when
// "0.10" comes back as 0.1.
var exactDecimal = cmp.Comparer(func(a, b decimal.Decimal) bool {
	return a.Equal(b) && FormatAmount(a) == FormatAmount(b)
})
