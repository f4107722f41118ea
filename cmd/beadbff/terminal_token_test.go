package main

import (
	"fmt"
	"net/http"
	"testing"
)

// replica starts another beadbff on its own port, sharing e's Redis, sandbox and configuration (plus
// extra), as a second server behind a load balancer would.
func (e *env) replica(t testing.TB, extra map[string]string) *env {
	t.Helper()
	vars := map[string]string{}
	for k, v := range e.vars {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	port := freePort(t)
	vars["BFF_ADDR"], vars["BFF_PUBLIC_URL"] = fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)
	r := &env{t: t, sandbox: e.sandbox, sbURL: e.sbURL, redisURL: e.redisURL, vars: vars, logs: &syncBuffer{}}
	stop := r.start(vars)
	t.Cleanup(func() { _ = stop() })
	return r
}

// loginOn logs in as sandbox terminal i on the server at r and returns the session cookie.
func (e *env) loginOn(r *env, i int) *http.Cookie {
	e.t.Helper()
	c := r.client()
	r.login(c, i)
	return r.sessionCookie(c)
}

// One token per terminal (issue 5): the staff sessions of one terminal on two servers share the
// terminal's token. A second login replaces the token but keeps the first session working; a storm over
// both sessions and both servers right after expire_tokens is one refresh grant with no reuse; logging out
// ends the realm session only when the terminal's last session goes; and a revoked login ends every
// session of the terminal.
func TestOneTokenPerTerminal(t *testing.T) {
	a := startEnv(t, envOptions{vars: map[string]string{"LOG_LEVEL": "warn"}})
	b := a.replica(t, nil)
	logins, logouts := a.stat("tokenRequests", "password"), a.stat("logouts")

	first := a.loginOn(a, 0)
	second := a.loginOn(b, 0)
	if n := a.stat("logouts") - logouts; n != 1 {
		t.Errorf("after two logins of one terminal the realm ended %v sessions, want 1 (the replaced one)", n)
	}
	created := a.apiWithCookie(a.url, "POST", "/api/v1/payments", first, map[string]any{"requestedAmount": "3.00", "reference": "shared"})
	if created.status != http.StatusCreated {
		t.Fatalf("the first session after a second login of its terminal: %d %s, want it still working", created.status, created.body)
	}
	id, _ := created.json(t)["trackingId"].(string)
	path := "/api/v1/payments/" + id

	refreshes := a.stat("tokenRequests", "refresh_token")
	a.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	targets := []stormTarget{{a.url, first}, {b.url, second}, {b.url, first}, {a.url, second}}
	if failed, example := burst(200, path, targets); failed > 0 {
		t.Errorf("storm over 2 sessions x 2 servers: %d calls failed (%s), want none", failed, example)
	}
	if n := a.stat("tokenRequests", "refresh_token") - refreshes; n != 1 {
		t.Errorf("refresh grants for one terminal's storm = %v, want exactly 1 (one token, two sessions, two servers)", n)
	}
	if n := a.stat("refreshTokenReuse"); n != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0", n)
	}
	if n := a.stat("tokenRequests", "password") - logins; n != 2 {
		t.Errorf("password grants = %v, want the 2 logins only", n)
	}

	logouts = a.stat("logouts")
	if r := a.apiWithCookie(a.url, "DELETE", "/api/v1/session", first, nil); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	if n := a.stat("logouts") - logouts; n != 0 {
		t.Errorf("a logout while another session holds the terminal ended %v realm sessions, want 0", n)
	}
	if r := a.apiWithCookie(b.url, "GET", path, second, nil); r.status != http.StatusOK {
		t.Errorf("the other session after the first logged out: %d %s, want 200", r.status, r.body)
	}
	if r := a.apiWithCookie(a.url, "GET", path, first, nil); r.status != http.StatusUnauthorized {
		t.Errorf("the logged-out session: %d, want 401", r.status)
	}
	if r := a.apiWithCookie(a.url, "DELETE", "/api/v1/session", second, nil); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	if n := a.stat("logouts") - logouts; n != 1 {
		t.Errorf("the terminal's last logout ended %v realm sessions, want 1", n)
	}

	// A revoked login ends every session of the terminal, on every server, with one refresh attempt.
	third, fourth := a.loginOn(a, 0), a.loginOn(b, 0)
	a.sb("POST", "/_sandbox/faults", map[string]any{"kind": "revoke_refresh_tokens"})
	a.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	refreshes = a.stat("tokenRequests", "refresh_token")
	for _, tg := range []stormTarget{{a.url, third}, {b.url, fourth}} {
		r := a.apiWithCookie(tg.base, "GET", path, tg.cookie, nil)
		if r.status != http.StatusUnauthorized || r.json(t)["cause"] != "refresh_token_invalid" {
			t.Errorf("after the terminal's login was revoked: %d %s, want 401 refresh_token_invalid", r.status, r.body)
		}
	}
	if n := a.stat("tokenRequests", "refresh_token") - refreshes; n != 1 {
		t.Errorf("refresh grants after the revocation = %v, want 1 (the second session learns from the store)", n)
	}
	if n := a.stat("refreshTokenReuse"); n != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0", n)
	}
}

// The refresh lock's lease is renewed while a slow refresh runs: with a 600 ms lease and a realm that takes
// 1.5 s to answer the grant, the other server must keep waiting rather than refresh with the same refresh
// token (which the realm would see as reuse).
func TestRefreshLeaseRenewedWhileTheRealmIsSlow(t *testing.T) {
	lease := map[string]string{"LOG_LEVEL": "warn", "REFRESH_LOCK_LEASE": "600ms"}
	a := startEnv(t, envOptions{vars: lease})
	b := a.replica(t, nil)
	first, second := a.loginOn(a, 0), a.loginOn(b, 0)
	created := a.apiWithCookie(a.url, "POST", "/api/v1/payments", first, map[string]any{"requestedAmount": "2.00", "reference": "lease"})
	id, _ := created.json(t)["trackingId"].(string)

	refreshes := a.stat("tokenRequests", "refresh_token")
	a.sb("POST", "/_sandbox/faults", map[string]any{"kind": "slow_token", "count": 1, "delayMs": 1500})
	a.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	if failed, example := burst(40, "/api/v1/payments/"+id, []stormTarget{{a.url, first}, {b.url, second}}); failed > 0 {
		t.Errorf("%d calls failed (%s), want none", failed, example)
	}
	if n := a.stat("tokenRequests", "refresh_token") - refreshes; n != 1 {
		t.Errorf("refresh grants = %v, want exactly 1", n)
	}
	if n := a.stat("refreshTokenReuse"); n != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0: the lease ran out under a slow refresh and another server refreshed too", n)
	}
	renewed := a.metric("beadbff_token_refreshes_total", `{outcome="lease_renewed"}`) + b.metric("beadbff_token_refreshes_total", `{outcome="lease_renewed"}`)
	if renewed < 2 {
		t.Errorf("lease renewals = %v, want at least 2 over a 1.5 s refresh with a 600 ms lease", renewed)
	}
}
