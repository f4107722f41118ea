package bff

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
)

// "No endpoint ever returns an access token": the support bundle's JWT prefix is the one exception, and
// it must stay a prefix. An opaque or short access token (a realm that does not issue JWTs, a proxy
// token) is returned whole today.
func TestBreakSupportBundleShortTokenNotWhole(t *testing.T) {
	for _, token := range []string{"0123456789abcdefghijklmnopqrstuvwxyzABCDEF", strings.Repeat("k", 50), strings.Repeat("q", 60)} {
		b := supportBundle(time.Now(), bead.SentRequest{Method: "GET", URL: "https://x/payments/tracking/a"}, token, "SANDBOX")
		if len(b.JWTPrefix) >= len(token) || len(b.JWTPrefix) > len(token)/3+1 && len(token) < 150 {
			t.Errorf("token of %d chars: bundle shows %d of them (%q)", len(token), len(b.JWTPrefix), b.JWTPrefix)
		}
	}
}

// safeNext must not let a browser leave the site. WHATWG URL parsing drops ASCII tab, LF and CR
// anywhere, and treats "\" as "/": "/\t/evil" is "//evil".
func TestBreakSafeNextControlCharacters(t *testing.T) {
	for _, in := range []string{"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\t\\evil.example", "\t//evil.example"} {
		got := safeNext(in)
		cleaned := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		if strings.HasPrefix(cleaned, "//") || !strings.HasPrefix(cleaned, "/") {
			t.Errorf("safeNext(%q) = %q, which a browser reads as %q (another host)", in, got, cleaned)
		}
	}
}

// fakeBead: the payments API works, the identity realm is down.
type fakeBead struct{ trackingCalls, refreshCalls int }

func (f *fakeBead) Login(context.Context, string, string) (*bead.Token, error) {
	return nil, errors.New("unused")
}
func (f *fakeBead) Refresh(context.Context, string) (*bead.Token, error) {
	f.refreshCalls++
	return nil, &bead.TransportError{Op: "refresh grant", Err: errors.New("connection refused")}
}
func (f *fakeBead) Logout(context.Context, string) error { return nil }
func (f *fakeBead) Discover(context.Context) error       { return nil }
func (f *fakeBead) CreatePayment(context.Context, string, bead.CreatePaymentRequest, string) (*bead.CreatedPayment, error) {
	return nil, errors.New("unused")
}
func (f *fakeBead) Probe(context.Context, string) error { return nil }
func (f *fakeBead) Tracking(_ context.Context, _ string, id string) (*bead.PaymentStatus, error) {
	f.trackingCalls++
	return &bead.PaymentStatus{TrackingID: id, Status: bead.StatusCreated}, nil
}

// A refresh *ahead of* expiry is an optimisation: when the realm is briefly unreachable but the access
// token still has a minute to live, the call must go ahead with it instead of failing with 502.
func TestBreakAheadRefreshFailureFailsAValidCall(t *testing.T) {
	cfg := config.Load(func(k string) string {
		return map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod"}[k]
	})
	store, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBead{}
	srv, err := New(Deps{Config: cfg, Store: store, Bead: fb})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id := seedSession(t, store, "t1", "m1", session.Token{AccessToken: "eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.sig", RefreshToken: "r1",
		Expiry: now.Add(60 * time.Second), ObtainedAt: now.Add(-59 * time.Minute)}).ID
	req := httptest.NewRequest("GET", "/api/v1/payments/0123456789abcdef0123456789abcdef", nil)
	req.Header.Set("Cookie", "beadbff_session="+id)
	resp, err := srv.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("token valid for 60 s more, realm down: %d %s (tracking calls %d), want 200 with the current token",
			resp.StatusCode, body, fb.trackingCalls)
	}
}
