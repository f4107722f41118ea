package bff

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
)

func TestOriginListAllows(t *testing.T) {
	l := newOriginList([]string{"https://shop.example", "http://localhost:3000", "https://*.example.com", "https://*.pay.example:8443",
		"https://Caps.Example", "https://default.example:443", "http://[::1]:5173"})
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://shop.example", true},
		{"http://localhost:3000", true},
		{"https://a.example.com", true},
		{"https://a.b.example.com", true},
		{"https://x-1.example.com", true},
		{"https://x.pay.example:8443", true},
		{"https://caps.example", true},    // configured with capitals: hosts are case-insensitive
		{"https://default.example", true}, // configured with the default port, which browsers omit
		{"http://[::1]:5173", true},

		{"", false},
		{"null", false},
		{"https://example.com", false},                 // the apex is not a subdomain
		{"https://evilexample.com", false},             // look-alike without the dot
		{"https://example.com.attacker.test", false},   // the listed name under another domain
		{"https://a.example.com.attacker.test", false}, // the same, one label deeper
		{"http://a.example.com", false},                // scheme exact
		{"https://a.example.com:8443", false},          // port exact
		{"https://a.example.com:443", false},           // no browser writes the default port
		{"https://x.pay.example", false},               // the pattern's port is required
		{"https://.example.com", false},
		{"https://a..example.com", false},
		{"https://-a.example.com", false},
		{"https://a_b.example.com", false},
		{"https://A.example.com", false},
		{"https://evil.test/.example.com", false},
		{"https://evil.test?.example.com", false},
		{"https://evil.test#.example.com", false},
		{"https://user@a.example.com", false},
		{"https://shop.example/", false},
		{"http://localhost:3001", false},
		{"http://localhost", false},
		{"https://" + strings.Repeat("a", 64) + ".example.com", false}, // a label over 63 characters
		{"https://" + strings.Repeat("a.", 200) + "example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			if got := l.allows(tt.origin); got != tt.want {
				t.Errorf("allows(%q) = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
	if got := strings.Join(l.sources, " "); got != "https://shop.example http://localhost:3000 https://*.example.com https://*.pay.example:8443 https://caps.example https://default.example http://[::1]:5173" {
		t.Errorf("CSP sources = %q", got)
	}
	if !newOriginList(nil).empty() || newOriginList(nil).allows("https://shop.example") {
		t.Error("an empty list must allow nothing (Fiber's cors middleware would answer *)")
	}
}

func TestClientAddress(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	tests := []struct {
		name    string
		peer    string
		xff     string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies configured: the peer, whatever X-Forwarded-For claims", "198.51.100.7", "203.0.113.9", nil, "198.51.100.7"},
		{"an untrusted peer's X-Forwarded-For is ignored", "198.51.100.7", "203.0.113.9", trusted, "198.51.100.7"},
		{"a trusted proxy names the client", "10.1.2.3", "203.0.113.9", trusted, "203.0.113.9"},
		{"spoofed hops left of the client are ignored", "10.1.2.3", "6.6.6.6, 203.0.113.9", trusted, "203.0.113.9"},
		{"two trusted proxies in a row", "10.1.2.3", "203.0.113.9, 192.0.2.1", trusted, "203.0.113.9"},
		{"a malformed hop stops the walk", "10.1.2.3", "203.0.113.9, garbage", trusted, "10.1.2.3"},
		{"only trusted hops: the peer", "10.1.2.3", "10.9.9.9", trusted, "10.1.2.3"},
		{"no header from a trusted proxy: the peer", "10.1.2.3", "", trusted, "10.1.2.3"},
		{"IPv4-mapped IPv6 is IPv4", "::ffff:10.1.2.3", "::ffff:203.0.113.9", trusted, "203.0.113.9"},
	}
	app := fiber.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fctx fasthttp.RequestCtx
			fctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP(tt.peer), Port: 40000}, nil)
			if tt.xff != "" {
				fctx.Request.Header.Set("X-Forwarded-For", tt.xff)
			}
			c := app.AcquireCtx(&fctx)
			defer app.ReleaseCtx(c)
			s := &Server{cfg: &config.Config{TrustedProxies: tt.trusted}}
			if got := s.clientAddress(c); got != tt.want {
				t.Errorf("clientAddress = %q, want %q", got, tt.want)
			}
		})
	}
	for in, want := range map[string]string{"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "203.0.113.9": "203.0.113.9", "junk": "junk"} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q (a subscriber's whole /64 is one address)", in, got, want)
		}
	}
}

func TestLoginToken(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	keyA, keyB := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32))
	server := func(keys ...[]byte) *Server {
		var derived [][]byte
		for _, k := range keys {
			derived = append(derived, deriveKey(k, "beadbff login form token v1"))
		}
		return &Server{now: clock, web: &browserSurface{loginKeys: derived}}
	}
	s := server(keyA)
	tok := s.newLoginToken()
	if !s.validLoginToken(tok) {
		t.Fatal("a fresh token is not valid")
	}
	if s.newLoginToken() == tok {
		t.Error("two tokens are the same")
	}
	if !server(keyB, keyA).validLoginToken(tok) {
		t.Error("after a key rotation (new key first, old kept) an open login page's token must still work")
	}
	if server(keyB).validLoginToken(tok) {
		t.Error("a token signed with another key was accepted")
	}
	payload, sig, _ := strings.Cut(tok, ".")
	flipFirst := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	tampered := flipFirst(payload) + "." + sig
	for name, bad := range map[string]string{"empty": "", "no signature": payload, "tampered payload": tampered,
		"signature of another payload": s.newLoginToken()[:len(payload)] + "." + sig, "huge": strings.Repeat("x", 500)} {
		if s.validLoginToken(bad) {
			t.Errorf("%s: accepted", name)
		}
	}
	now = now.Add(loginTokenLife + time.Second)
	if s.validLoginToken(tok) {
		t.Error("an expired token was accepted")
	}
}

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Millisecond: "1 second", 40 * time.Second: "40 seconds",
		89 * time.Second: "89 seconds", 15 * time.Minute: "15 minutes", 14*time.Minute + time.Second: "15 minutes"} {
		if got := waitText(d); got != want {
			t.Errorf("waitText(%v) = %q, want %q", d, got, want)
		}
	}
}

// fakeRealm is the part of beadAPI the service account uses; the rest panics if called.
type fakeRealm struct {
	beadAPI
	now                        func() time.Time
	logins, refreshes, logouts int
	loginErr, refreshErr       error
	terminal                   string
}

func (f *fakeRealm) issue() *bead.Token {
	now := f.now()
	n := f.logins + f.refreshes
	return &bead.Token{AccessToken: jwtFor(f.terminal, now.Add(time.Hour)) + strings.Repeat("x", n), RefreshToken: fmt.Sprint("r", n),
		Expiry: now.Add(time.Hour), ObtainedAt: now}
}

func (f *fakeRealm) Login(context.Context, string, string) (*bead.Token, error) {
	f.logins++
	if f.loginErr != nil {
		return nil, f.loginErr
	}
	return f.issue(), nil
}

func (f *fakeRealm) Refresh(context.Context, string) (*bead.Token, error) {
	f.refreshes++
	if f.refreshErr != nil {
		return nil, f.refreshErr
	}
	return f.issue(), nil
}

func (f *fakeRealm) Logout(context.Context, string) error { f.logouts++; return nil }

// jwtFor is an unsigned token whose claims name a terminal (the service account only decodes them).
func jwtFor(terminal string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"terminalId": terminal, "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix()})
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(claims) + ".c2ln"
}

func TestServiceAccount(t *testing.T) {
	ctx := context.Background()
	type fixture struct {
		srv   *Server
		realm *fakeRealm
		store session.Store
		now   *time.Time
		used  []string // the access tokens calls were made with
	}
	setup := func(t *testing.T) *fixture {
		f := &fixture{now: new(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))}
		clock := func() time.Time { return *f.now }
		f.realm = &fakeRealm{now: clock, terminal: "term-9"}
		cfg := config.Load(func(k string) string {
			return map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod",
				"BEAD_TERMINAL_USERNAME": "t1", "BEAD_TERMINAL_PASSWORD": "pw"}[k]
		})
		var err error
		if f.store, err = session.NewMemory(session.Options{Now: clock}); err != nil {
			t.Fatal(err)
		}
		if f.srv, err = New(Deps{Config: cfg, Store: f.store, Bead: f.realm, Now: clock}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	call := func(f *fixture, terminal string, refuse bool) error {
		return f.srv.unattendedCall(ctx, terminal, "test", func(_ context.Context, token string) error {
			f.used = append(f.used, token)
			if refuse && len(f.used) == 1 {
				return &bead.APIError{Status: 401}
			}
			return nil
		})
	}

	t.Run("a failed login is not retried for a while", func(t *testing.T) {
		f := setup(t)
		f.realm.loginErr = &bead.TokenError{Code: "invalid_grant"}
		for range 5 {
			if err := call(f, "term-9", false); err == nil {
				t.Fatal("no error from a failing login")
			}
		}
		if f.realm.logins != 1 {
			t.Errorf("%d logins within the back-off, want 1", f.realm.logins)
		}
		*f.now = f.now.Add(serviceRetryAfter)
		_ = call(f, "term-9", false)
		if f.realm.logins != 2 {
			t.Errorf("%d logins after the back-off, want 2", f.realm.logins)
		}
	})

	t.Run("one login makes the terminal's token, reused until it nears expiry, then refreshed", func(t *testing.T) {
		f := setup(t)
		for range 3 {
			if err := call(f, "term-9", false); err != nil {
				t.Fatal(err)
			}
		}
		if f.realm.logins != 1 || f.realm.refreshes != 0 || f.srv.web.service.terminal() != "term-9" {
			t.Errorf("logins %d refreshes %d terminal %q, want 1, 0, term-9", f.realm.logins, f.realm.refreshes, f.srv.web.service.terminal())
		}
		stored, err := f.store.LoadTerminalToken(ctx, "term-9")
		if err != nil || stored.Token.AccessToken != f.used[0] {
			t.Fatalf("the service login's token is not the terminal's stored token: %v", err)
		}
		*f.now = f.now.Add(59 * time.Minute)
		_ = call(f, "term-9", false)
		if f.realm.refreshes != 1 || f.realm.logins != 1 {
			t.Errorf("near expiry: logins %d refreshes %d, want one refresh", f.realm.logins, f.realm.refreshes)
		}
	})

	t.Run("a staff login's token serves the account with no login of its own", func(t *testing.T) {
		f := setup(t)
		staff := seedSession(t, f.store, "term-9", "m-9", session.Token{AccessToken: "staff-access", RefreshToken: "staff-r",
			Expiry: f.now.Add(time.Hour), ObtainedAt: *f.now})
		if err := call(f, "term-9", false); err != nil {
			t.Fatal(err)
		}
		if f.realm.logins != 0 || f.used[0] != "staff-access" {
			t.Errorf("logins %d, used %q; want the staff session's terminal token and no login", f.realm.logins, f.used[0])
		}
		_ = staff
	})

	t.Run("another terminal's payment gets no token", func(t *testing.T) {
		f := setup(t)
		_ = call(f, "term-9", false) // the account learns it is term-9's
		if err := call(f, "term-other", false); !errors.Is(err, errNoToken) {
			t.Errorf("call for another terminal = %v, want errNoToken", err)
		}
		if f.realm.logins != 1 {
			t.Errorf("%d logins, want the first one only", f.realm.logins)
		}
	})

	t.Run("refused, and its refresh token dead: one login, one retry", func(t *testing.T) {
		f := setup(t)
		_ = call(f, "term-9", false)
		f.used = nil
		f.realm.refreshErr = &bead.TokenError{Code: "invalid_grant"}
		if err := call(f, "term-9", true); err != nil {
			t.Fatalf("call after the refresh token died = %v, want a fresh login and success", err)
		}
		if f.realm.logins != 2 || f.realm.refreshes != 1 || len(f.used) != 2 || f.used[0] == f.used[1] {
			t.Errorf("logins %d refreshes %d calls %d; want a refresh, then a second login, then the retry with its token",
				f.realm.logins, f.realm.refreshes, len(f.used))
		}
	})
}
