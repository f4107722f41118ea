package bff

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
)

// b2Bead: the realm refuses every password (enough to see whether a login got past the CSRF checks).
type b2Bead struct{ logins int }

func (f *b2Bead) Login(context.Context, string, string) (*bead.Token, error) {
	f.logins++
	return nil, &bead.TokenError{Op: "password grant", Status: 401, Code: "invalid_grant", Description: "Invalid user credentials"}
}
func (f *b2Bead) Refresh(context.Context, string) (*bead.Token, error) {
	return nil, errors.New("unused")
}
func (f *b2Bead) Logout(context.Context, string) error { return nil }
func (f *b2Bead) Discover(context.Context) error       { return nil }
func (f *b2Bead) CreatePayment(context.Context, string, bead.CreatePaymentRequest, string) (*bead.CreatedPayment, error) {
	return nil, errors.New("unused")
}
func (f *b2Bead) Probe(context.Context, string) error { return nil }
func (f *b2Bead) Tracking(context.Context, string, string) (*bead.PaymentStatus, error) {
	return nil, errors.New("unused")
}

func b2Do(t *testing.T, srv *Server, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := srv.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// BFF_PUBLIC_URL is compared byte for byte with the browser's Origin (cors, sameOriginForm), but browsers
// send the origin lower-cased and without the default port. With BFF_PUBLIC_URL=https://pay.example.com:443
// (or a capital letter in the host), which Validate accepts, nobody can log in: the login form from
// beadbff's own page is refused as "sent from another site", and the staff pages' own API calls as
// cors_origin_not_allowed.
func TestBreak2PublicURLNotCanonical(t *testing.T) {
	cases := []struct{ publicURL, browserOrigin string }{
		{"https://pay.example.com:443", "https://pay.example.com"},
		{"https://Pay.Example.com", "https://pay.example.com"},
		{"http://LOCALHOST:8080", "http://localhost:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.publicURL, func(t *testing.T) {
			vars := map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod",
				"BFF_PUBLIC_URL": tc.publicURL}
			cfg := config.Load(func(k string) string { return vars[k] })
			if ps := cfg.Validate(); len(ps) > 0 {
				t.Skipf("refused by Validate (fine): %v", ps)
			}
			store, _ := session.NewMemory(session.Options{})
			fb := &b2Bead{}
			srv, err := New(Deps{Config: cfg, Store: store, Bead: fb})
			if err != nil {
				t.Fatal(err)
			}
			resp, body := b2Do(t, srv, httptest.NewRequest("GET", "/login", nil))
			var cookie string
			for _, c := range resp.Cookies() {
				if strings.Contains(c.Name, "login") {
					cookie = c.Name + "=" + c.Value
				}
			}
			const mark = `name="csrf" value="`
			i := strings.Index(body, mark)
			if i < 0 || cookie == "" {
				t.Fatalf("login page has no form token (cookie %q)", cookie)
			}
			tok := body[i+len(mark):]
			tok = tok[:strings.Index(tok, `"`)]

			form := url.Values{"username": {"t"}, "password": {"p"}, "csrf": {tok}}
			req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", tc.browserOrigin)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			req.Header.Set("Cookie", cookie)
			resp, _ = b2Do(t, srv, req)
			if resp.StatusCode == http.StatusForbidden || fb.logins == 0 {
				t.Errorf("same-origin login form (Origin %s, Sec-Fetch-Site same-origin): %d, realm asked %d times; want the password tried",
					tc.browserOrigin, resp.StatusCode, fb.logins)
			}

			req = httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"username":"t","password":"p"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", tc.browserOrigin)
			resp, body = b2Do(t, srv, req)
			if strings.Contains(body, "cors_origin_not_allowed") {
				t.Errorf("same-origin API login (Origin %s): %d %s", tc.browserOrigin, resp.StatusCode, body[:min(len(body), 200)])
			}
		})
	}
}
