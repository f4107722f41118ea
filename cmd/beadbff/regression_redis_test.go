package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"beadbff/session/redistest"
)

func cookieCleared(h http.Header) bool {
	for _, sc := range h.Values("Set-Cookie") {
		if strings.Contains(sc, "beadbff_session=") {
			return true
		}
	}
	return false
}

// A frozen (SIGSTOP) or stopped Redis: every request with a session gets a fast 503
// session_store_unavailable, the cookie untouched, on the API and on pages.
func TestBreakRedisFrozenAndStopped(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL})
	app := e.client()
	e.login(app, 0)
	ck := e.sessionCookie(app)

	check := func(what string) {
		t.Helper()
		for _, tc := range []struct{ method, path string }{
			{"GET", "/api/v1/session"}, {"GET", "/api/v1/payments"}, {"POST", "/api/v1/payments"},
			{"GET", "/api/v1/payments/0123456789abcdef0123456789abcdef"}, {"DELETE", "/api/v1/session"},
		} {
			start := time.Now()
			var body any
			if tc.method == "POST" {
				body = map[string]any{"requestedAmount": "1.00", "reference": "r"}
			}
			r := e.apiWithCookie(e.url, tc.method, tc.path, ck, body)
			el := time.Since(start)
			if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"session_store_unavailable"`) {
				t.Errorf("%s: %s %s: %d %.200s, want 503 session_store_unavailable", what, tc.method, tc.path, r.status, r.body)
			}
			if el > 1500*time.Millisecond {
				t.Errorf("%s: %s %s took %v, want a fast answer", what, tc.method, tc.path, el)
			}
			if cookieCleared(r.header) {
				t.Errorf("%s: %s %s touched the session cookie: %v", what, tc.method, tc.path, r.header.Values("Set-Cookie"))
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Errorf("%s: %s %s: no X-Request-Id", what, tc.method, tc.path)
			}
		}
		// A page: 503, not a redirect to /login.
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r := e.do(c, "GET", e.url+"/", nil, map[string]string{"Cookie": ck.Name + "=" + ck.Value})
		if r.status != http.StatusServiceUnavailable || cookieCleared(r.header) {
			t.Errorf("%s: dashboard: %d %v, want 503 and the cookie kept", what, r.status, r.header.Values("Set-Cookie"))
		}
	}

	srv.Freeze()
	check("frozen")
	srv.Thaw()
	if r := e.apiWithCookie(e.url, "GET", "/api/v1/session", ck, nil); r.status != http.StatusOK {
		t.Fatalf("after thaw: %d %s, want the session back", r.status, r.body)
	}
	srv.Stop()
	check("stopped")
}

// Redis freezes while a create is at Bead: the answer is a fast 503, and the caller's retry with the same
// Idempotency-Key after Redis is back gets the same payment (exactly one at Bead), not a second one.
func TestBreakRedisFreezesDuringCreate(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL})
	app := e.client()
	e.login(app, 0)
	ck := e.sessionCookie(app)
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "slow", "count": 1, "delayMs": 800})
	go func() { time.Sleep(300 * time.Millisecond); srv.Freeze() }()
	body := map[string]any{"requestedAmount": "9.99", "reference": "freeze-1"}
	hdr := map[string]string{"X-CSRF": "1", "Cookie": ck.Name + "=" + ck.Value, "Idempotency-Key": "order-freeze-1"}
	c := &http.Client{Timeout: 20 * time.Second}
	start := time.Now()
	r := e.do(c, "POST", e.url+"/api/v1/payments", body, hdr)
	el := time.Since(start)
	srv.Thaw()
	if r.status != http.StatusServiceUnavailable || cookieCleared(r.header) {
		t.Errorf("create with Redis frozen after Bead: %d %s %v, want 503 and the cookie kept", r.status, r.body, r.header.Values("Set-Cookie"))
	}
	if el > 2500*time.Millisecond {
		t.Errorf("create took %v with Redis frozen", el)
	}
	again := e.do(c, "POST", e.url+"/api/v1/payments", body, hdr)
	if again.status != http.StatusCreated {
		t.Fatalf("retry: %d %s", again.status, again.body)
	}
	if n := e.stat("paymentsCreated"); n != 1 {
		t.Errorf("payments at Bead = %v, want 1", n)
	}
}
