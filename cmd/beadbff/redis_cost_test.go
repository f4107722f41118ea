package main

import (
	"context"
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

// What a proxied status read costs in Redis in steady state: the session layer reads, it never writes
// (issue 5's target is one read and no write; the commands per call are logged for the README).
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
	writes := map[string]bool{"set": true, "setex": true, "del": true, "expire": true, "pexpire": true, "zadd": true,
		"zremrangebyrank": true, "zremrangebyscore": true, "multi": true, "exec": true, "evalsha": true, "eval": true, "incr": true}
	reads, wrote := 0, map[string]int{}
	for name, n := range after {
		d := n - before[name]
		if d <= 0 || name == "info" {
			continue
		}
		if writes[name] {
			wrote[name] += d
		} else {
			reads += d
		}
	}
	t.Logf("per proxied status read: %.1f Redis read commands (%d over %d calls), writes %v", float64(reads)/calls, reads, calls, wrote)
	if len(wrote) > 0 {
		t.Errorf("steady-state status reads wrote to Redis: %v; want no write", wrote)
	}
}
