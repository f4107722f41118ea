package main

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// loginAttempt posts one API login and returns the answer.
func (e *env) loginAttempt(username, password string) reply {
	e.t.Helper()
	return e.do(e.client(), "POST", e.url+"/api/v1/session", map[string]string{"username": username, "password": password}, nil)
}

func wantThrottled(t *testing.T, r reply, maxWait int) {
	t.Helper()
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusTooManyRequests || err != nil || secs < 1 || secs > maxWait {
		t.Fatalf("%d Retry-After %q (%s), want 429 with Retry-After in 1..%d", r.status, r.header.Get("Retry-After"), r.body, maxWait)
	}
	if c := r.json(t)["cause"]; c != "login_throttled" {
		t.Errorf("cause %v, want login_throttled", c)
	}
}

// Failed logins per username are limited; a login that works does not count; while the limit is full the
// right password waits too, without reaching Bead; and the count is shared by every server on the Redis.
func TestLoginThrottlePerUsername(t *testing.T) {
	vars := map[string]string{"LOGIN_LIMIT_PER_USERNAME": "3/1m", "LOGIN_LIMIT_PER_ADDRESS": "off"}
	a := startEnv(t, envOptions{vars: vars})
	term := a.sandbox.Terminals()[0]
	grants := func() float64 { return a.stat("tokenRequests", "password") }

	for i, step := range []struct {
		password string
		want     int
	}{{"wrong", 401}, {"wrong", 401}, {term.Password, 201}, {"wrong", 401}} {
		if r := a.loginAttempt(term.TerminalID, step.password); r.status != step.want {
			t.Fatalf("attempt %d: %d, want %d (%s)", i+1, r.status, step.want, r.body)
		}
	}
	// Three wrong passwords are held now (the success gave its slot back): the right one waits.
	before := grants()
	wantThrottled(t, a.loginAttempt(term.TerminalID, term.Password), 60)
	// The same terminal spelt the way the realm sees it is the same username.
	wantThrottled(t, a.loginAttempt(term.TerminalID+"@BEADPAY.IO", term.Password), 60)
	if grants() != before {
		t.Errorf("a throttled login reached the realm (%v password grants)", grants()-before)
	}
	// Another terminal is not affected.
	if r := a.loginAttempt(a.sandbox.Terminals()[1].TerminalID, a.sandbox.Terminals()[1].Password); r.status != http.StatusCreated {
		t.Errorf("another username: %d, want 201", r.status)
	}

	// A second server on the same Redis sees the same count.
	vars2 := map[string]string{"LOGIN_LIMIT_PER_USERNAME": "3/1m", "LOGIN_LIMIT_PER_ADDRESS": "off"}
	b := startEnv(t, envOptions{redisURL: a.redisURL, vars: vars2})
	wantThrottled(t, b.loginAttempt(term.TerminalID, term.Password), 60)

	// The login form says it on the page, with Retry-After.
	browser := b.client()
	form := "username=" + term.TerminalID + "&password=" + url.QueryEscape(term.Password) + "&csrf=" + url.QueryEscape(b.loginFormToken(browser))
	page := b.form(browser, "/login", form)
	if page.status != http.StatusTooManyRequests || page.header.Get("Retry-After") == "" ||
		!bytes.Contains(page.body, []byte("Too many wrong passwords")) || !bytes.Contains(page.body, []byte(`data-testid="login-form"`)) {
		t.Errorf("login form while throttled: %d Retry-After %q; want 429, the form again with the reason", page.status, page.header.Get("Retry-After"))
	}
}

// Concurrent guesses cannot slip past the limit: each needs a slot before its password is sent.
func TestLoginThrottleHoldsUnderConcurrency(t *testing.T) {
	e := startEnv(t, envOptions{vars: map[string]string{"LOGIN_LIMIT_PER_USERNAME": "3/1m", "LOGIN_LIMIT_PER_ADDRESS": "off"}})
	term := e.sandbox.Terminals()[0]
	before := e.stat("tokenRequests", "password")
	var wg sync.WaitGroup
	statuses := make(chan int, 12)
	for range 12 {
		wg.Go(func() { statuses <- e.loginAttempt(term.TerminalID, "wrong").status })
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[401] != 3 || count[429] != 9 {
		t.Errorf("12 concurrent wrong passwords: %v, want 3 refused by the realm (401) and 9 throttled (429)", count)
	}
	if n := e.stat("tokenRequests", "password") - before; n != 3 {
		t.Errorf("%v password grants reached the realm, want 3", n)
	}
}

// Failed logins per client address are limited across usernames (password spraying).
func TestLoginThrottlePerAddress(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"LOGIN_LIMIT_PER_USERNAME": "off", "LOGIN_LIMIT_PER_ADDRESS": "2/1m"}})
	ts := e.sandbox.Terminals()
	if r := e.loginAttempt(ts[0].TerminalID, "Summer2026!"); r.status != http.StatusUnauthorized {
		t.Fatalf("first guess: %d", r.status)
	}
	if r := e.loginAttempt(ts[1].TerminalID, "Summer2026!"); r.status != http.StatusUnauthorized {
		t.Fatalf("second guess: %d", r.status)
	}
	wantThrottled(t, e.loginAttempt(ts[2].TerminalID, ts[2].Password), 60)
}
