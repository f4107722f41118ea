package main

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"beadbff/session/redistest"
)

// commandStats reads Redis's per-command call counts (INFO commandstats).
func commandStats(t *testing.T, rc *redis.Client) map[string]int {
	t.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				out[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.Atoi(v)
			}
		}
	}
	return out
}

// What a proxied status read costs in Redis in steady state: issue 5's target, one read and no write.
// The session is one GET (its expiry is inside it); the terminal's token and the payment record come from
// this process's copies. Counted with INFO commandstats on a redis-server of the test's own.
func TestRedisCommandsPerProxiedCall(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL, vars: map[string]string{"LOG_LEVEL": "warn"}})
	app := e.client()
	e.login(app, 0)
	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "cost"})
	id, _ := created.json(t)["trackingId"].(string)
	e.api(app, "GET", "/api/v1/payments/"+id, nil) // warm: the first read may record the status
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	before := commandStats(t, rc)
	const calls = 50
	for range calls {
		if r := e.api(app, "GET", "/api/v1/payments/"+id, nil); r.status != http.StatusOK {
			t.Fatalf("status read: %d %s", r.status, r.body)
		}
	}
	after := commandStats(t, rc)
	used := map[string]int{}
	for name, n := range after {
		if d := n - before[name]; d > 0 && name != "info" {
			used[name] = d
		}
	}
	t.Logf("per proxied status read: %.2f Redis commands (%v over %d calls)", float64(sum(used))/calls, used, calls)
	if want := map[string]int{"get": calls}; !maps.Equal(used, want) {
		t.Errorf("%d steady-state status reads issued %v; want %v (one GET each, no write)", calls, used, want)
	}
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}
