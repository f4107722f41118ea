package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"beadbff/session/redistest"
)

// Key rotation keeps sessions: a restart with SESSION_KEYS=new,old opens what old sealed, and the next
// write seals under new; a restart with only new ends them (401, never a 500).
func TestKeyRotationKeepsSessions(t *testing.T) {
	srv := redistest.StartServer(t)
	oldKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	newKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	e := startEnv(t, envOptions{redisURL: srv.URL, vars: map[string]string{"SESSION_KEYS": oldKey}})
	app := e.client()
	e.login(app, 0)

	restart := func(keys string) {
		t.Helper()
		if err := e.stop(); err != nil {
			t.Fatal(err)
		}
		e.vars["SESSION_KEYS"] = keys
		e.stop = e.start(e.vars)
	}
	restart(newKey + "," + oldKey)
	if r := e.api(app, "GET", "/api/v1/session", nil); r.status != http.StatusOK {
		t.Fatalf("after rotating to new,old: %d %s, want the session kept", r.status, r.body)
	}
	restart(newKey)
	r := e.api(app, "GET", "/api/v1/session", nil)
	if r.status != http.StatusUnauthorized || r.json(t)["cause"] != "not_authenticated" {
		t.Errorf("with the old key dropped: %d %s, want 401 not_authenticated", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), "stored session unreadable") {
		t.Error("no log line for the session sealed under a dropped key")
	}
}

// A stored session that does not open (corrupt, foreign format) is no session: 401 for the API, the
// login page for a browser with the cookie cleared, one log line; never a panic or a 500.
func TestCorruptSessionBlob(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL})
	app := e.client()
	e.login(app, 0)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	ctx := context.Background()
	keys, err := rc.Keys(ctx, "beadbff:sess:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys %v, %v; want one", keys, err)
	}
	if err := rc.Set(ctx, keys[0], "\x01not a sealed session at all", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if r := e.api(app, "GET", "/api/v1/session", nil); r.status != http.StatusUnauthorized {
		t.Errorf("API with a corrupt session: %d %s, want 401", r.status, r.body)
	}
	page := e.do(app, "GET", e.url+"/", nil, nil)
	if page.status != http.StatusSeeOther || !strings.HasPrefix(page.header.Get("Location"), "/login") {
		t.Errorf("page with a corrupt session: %d %q, want a redirect to the login page", page.status, page.header.Get("Location"))
	}
	if c := page.header.Get("Set-Cookie"); !strings.Contains(c, "beadbff_session=;") && !strings.Contains(c, "Max-Age=0") && !strings.Contains(c, "expires=Thu, 01 Jan 1970") {
		t.Errorf("the stale cookie was not cleared: %q", c)
	}
	if n := strings.Count(e.logs.String(), "stored session unreadable"); n < 1 {
		t.Error("no log line for the unreadable session")
	}
}

// The refresh storm of issue 5: two beadbff processes on one Redis, 200 concurrent API calls on one
// session right after every token expired: every call succeeds, the realm sees exactly one refresh grant,
// and no refresh token is ever presented twice.
func TestRefreshStormTwoServers(t *testing.T) {
	e := startEnv(t, envOptions{vars: map[string]string{"LOG_LEVEL": "warn"}})
	app := e.client()
	e.login(app, 0)
	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "6.00", "reference": "storm"})
	id, _ := created.json(t)["trackingId"].(string)
	ck := e.sessionCookie(app)

	second := e.replica(t, nil)

	refreshes := e.stat("tokenRequests", "refresh_token")
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	const calls = 200
	start := time.Now()
	failed, example := burst(calls, "/api/v1/payments/"+id, []stormTarget{{e.url, ck}, {second.url, ck}})
	t.Logf("%d concurrent calls over two servers after expire_tokens: %v wall time", calls, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d calls failed (%s), want none", failed, example)
	}
	if n := e.stat("tokenRequests", "refresh_token") - refreshes; n != 1 {
		t.Errorf("refresh grants = %v, want exactly 1", n)
	}
	if n := e.stat("refreshTokenReuse"); n != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0", n)
	}
}

// The whole server on a three-node Redis Cluster (REDIS_URL=redis+cluster://…): log in, create, read,
// list; every multi-key write stays within one hash slot.
func TestServerOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster; run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	e := startEnv(t, envOptions{redisURL: cluster.URL})
	app := e.client()
	e.login(app, 0)
	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "8.00", "reference": "on-a-cluster"})
	if created.status != http.StatusCreated {
		t.Fatalf("create on a cluster: %d %s", created.status, created.body)
	}
	id, _ := created.json(t)["trackingId"].(string)
	if r := e.api(app, "GET", "/api/v1/payments/"+id, nil); r.status != http.StatusOK {
		t.Errorf("read on a cluster: %d %s", r.status, r.body)
	}
	if r := e.api(app, "GET", "/api/v1/payments", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), id) {
		t.Errorf("list on a cluster: %d %s", r.status, r.body)
	}
	if r := e.do(app, "GET", e.url+"/readyz", nil, nil); r.status != http.StatusOK {
		t.Errorf("readyz on a cluster: %d %s", r.status, r.body)
	}
}

// A Redis that freezes mid-traffic and comes back: fast 503s while it is frozen (the cookie kept), 200s
// after with the same session, and no growth of goroutines or Redis connections left behind.
func TestRedisOutageLeavesNothingBehind(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL, vars: map[string]string{"LOG_LEVEL": "error"}})
	app := e.client()
	e.login(app, 0)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	clients := func() int {
		t.Helper()
		info, err := rc.Info(context.Background(), "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_clients:"); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return -1
	}
	// The bursts use a transport of their own, closed after each, so that the goroutines counted are
	// the server's, not the test client's idle connections.
	ck := e.sessionCookie(app)
	burst := func(want int) (slowest time.Duration) {
		t.Helper()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				r := e.do(c, "GET", e.url+"/api/v1/session", nil, map[string]string{"Cookie": ck.Name + "=" + ck.Value})
				mu.Lock()
				defer mu.Unlock()
				slowest = max(slowest, time.Since(start))
				if r.status != want {
					t.Errorf("status %d, want %d: %s", r.status, want, r.body)
				}
				if want == http.StatusServiceUnavailable && strings.Contains(r.header.Get("Set-Cookie"), "beadbff_session=") {
					t.Errorf("an outage answer touched the session cookie: %s", r.header.Get("Set-Cookie"))
				}
			}()
		}
		wg.Wait()
		return slowest
	}
	burst(http.StatusOK) // warm the pools: the baseline is a server that has seen this load
	burst(http.StatusOK)
	time.Sleep(time.Second)
	goroutines, conns := runtime.NumGoroutine(), clients()

	srv.Freeze()
	slowest := burst(http.StatusServiceUnavailable)
	srv.Thaw()
	t.Logf("30 calls during the freeze: slowest answer %v", slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("slowest 503 took %v, want about a second at most", slowest)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.api(app, "GET", "/api/v1/session", nil).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the session did not come back within 5 s of Redis returning")
		}
		time.Sleep(100 * time.Millisecond)
	}
	burst(http.StatusOK)
	burst(http.StatusOK)
	// A frozen Redis reaps the connections its clients gave up on once it runs again, and closed
	// connections' goroutines take a moment to end: wait for the count to settle (up to 5 s).
	settle := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines+10 && time.Now().Before(settle) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines %d -> %d, Redis connections %d -> %d", goroutines, runtime.NumGoroutine(), conns, clients())
	if g := runtime.NumGoroutine(); g > goroutines+10 {
		t.Errorf("goroutines %d before the outage, %d after", goroutines, g)
	}
	// The pool may have grown to its size under the bursts (go-redis's PoolSize, 10 per core); a leak of
	// one connection per failed call (30 here) would go well past that.
	if c := clients(); c > conns+20 {
		t.Errorf("Redis connections %d before the outage, %d after", conns, c)
	}
}
