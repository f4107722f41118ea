package main

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"beadbff/bff/sandbox"
)

// sessionCookie returns the session cookie the client's jar holds for e.url.
func (e *env) sessionCookie(c *http.Client) *http.Cookie {
	e.t.Helper()
	u, _ := url.Parse(e.url)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "beadbff_session" {
			return ck
		}
	}
	e.t.Fatal("no session cookie in the jar")
	return nil
}

// apiWithCookie calls url+path with the given session cookie and X-CSRF: 1, outside any jar.
func (e *env) apiWithCookie(base, method, path string, ck *http.Cookie, body any) reply {
	e.t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	return e.do(c, method, base+path, body, map[string]string{"X-CSRF": "1", "Cookie": ck.Name + "=" + ck.Value})
}

// 50 parallel calls on ONE session right after expire_tokens: exactly one refresh grant, no reuse, no
// failure.
func TestBreakParallelCallsAfterExpireTokens(t *testing.T) {
	e := startEnv(t, envOptions{})
	app := e.client()
	e.login(app, 0)
	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "4.20", "reference": "par-1"})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	id := created.json(t)["trackingId"].(string)
	ck := e.sessionCookie(app)

	before := e.stat("tokenRequests", "refresh_token")
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	const n = 50
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/api/v1/payments/" + id
			if i%5 == 0 {
				path = "/api/v1/payments"
			}
			r := e.apiWithCookie(e.url, "GET", path, ck, nil)
			statuses[i], bodies[i] = r.status, string(r.body)
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("call %d: %d %.300s", i, s, bodies[i])
		}
	}
	if got := e.stat("tokenRequests", "refresh_token") - before; got != 1 {
		t.Errorf("refresh grants = %v, want exactly 1", got)
	}
	if got := e.stat("refreshTokenReuse"); got != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0", got)
	}
}

// Two beadbff replicas share Redis (README: sessions "shared between replicas"). After expire_tokens,
// calls on one session arriving at both replicas at once must not make both refresh with the same
// refresh token: Bead's policy is one refresher at a time per terminal, and a reused rotated refresh
// token is invalid_grant, which logs the person out.
func TestBreakTwoReplicasRefreshOnce(t *testing.T) {
	e := startEnv(t, envOptions{})
	app := e.client()
	e.login(app, 0)
	ck := e.sessionCookie(app)

	e2 := e.replica(t, nil)

	if r := e.apiWithCookie(e2.url, "GET", "/api/v1/session", ck, nil); r.status != http.StatusOK {
		t.Fatalf("replica 2 does not see the session: %d %s", r.status, r.body)
	}

	failures := 0
	for round := 0; round < 5 && failures == 0; round++ {
		e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := e.url
				if i%2 == 1 {
					base = e2.url
				}
				r := e.apiWithCookie(base, "GET", "/api/v1/payments/0123456789abcdef0123456789abcdef", ck, nil)
				// 404 is the right answer for an unknown payment; anything else is a failure.
				if r.status != http.StatusNotFound {
					mu.Lock()
					failures++
					if failures < 4 {
						t.Errorf("round %d call %d on %s: %d %.300s", round, i, base, r.status, r.body)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if got := e.stat("refreshTokenReuse"); got != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0 (two replicas refreshed with one refresh token)", got)
	}
	if r := e.apiWithCookie(e.url, "GET", "/api/v1/session", ck, nil); r.status != http.StatusOK {
		t.Errorf("session after the parallel refreshes: %d %s, want it alive", r.status, r.body)
	}
}

// A request that holds an old copy of the session (its Bead call was slow) and then meets a 401 must
// refresh with the newest stored refresh token, not its own stale one: the stale one was already rotated
// by another request, and presenting it again is reuse, which ends the session.
func TestBreakStaleRefreshTokenAfterSlowCall(t *testing.T) {
	e := startEnv(t, envOptions{sandbox: sandbox.Options{AccessTokenTTL: 3 * time.Second}})
	app := e.client()
	start := time.Now()
	e.login(app, 0)
	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "slow-1"})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	id := created.json(t)["trackingId"].(string)
	ck := e.sessionCookie(app)

	// X: its one Bead call waits 4.5 s, so it comes back after T1 expired and after T2 entered its own
	// refresh window.
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "slow", "count": 1, "delayMs": 4500})
	done := make(chan reply, 1)
	go func() { done <- e.apiWithCookie(e.url, "GET", "/api/v1/payments/"+id, ck, nil) }()
	time.Sleep(200 * time.Millisecond)

	// Y: in T1's refresh window (its last third), refreshes ahead: R1 is rotated to R2.
	time.Sleep(time.Until(start.Add(2300 * time.Millisecond)))
	if r := e.apiWithCookie(e.url, "GET", "/api/v1/payments/"+id, ck, nil); r.status != http.StatusOK {
		t.Fatalf("Y: %d %s", r.status, r.body)
	}
	x := <-done
	if x.status != http.StatusOK {
		t.Errorf("X after its slow call: %d %s, want 200", x.status, x.body)
	}
	if got := e.stat("refreshTokenReuse"); got != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0: X refreshed with its stale refresh token", got)
	}
	if r := e.apiWithCookie(e.url, "GET", "/api/v1/session", ck, nil); r.status != http.StatusOK {
		t.Errorf("session afterwards: %d %s, want it alive", r.status, r.body)
	}
}
