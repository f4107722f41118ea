package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Regression: the request log wrote /embed/checkout/<checkoutId> (and its /status, /qr.png and /events)
// whole, and the checkout id is the only key to an embedded checkout: whoever reads the logs could open
// and follow every shopper's payment. Now every log line holds at most the id's first 4 characters, and
// the rest of the request line is as before (method, route, status, request id).
func TestRequestLogRedactsCheckoutIDs(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	p := e.createPayment(0, "4.20", "log-redaction")
	co := p["checkoutUrl"].(string)
	id := co[strings.LastIndex(co, "/")+1:]
	if len(id) != 43 {
		t.Fatalf("checkout id %q, want the 43-character id", id)
	}
	shopper := e.client()
	for _, path := range []string{"", "/status", "/qr.png"} {
		if r := e.do(shopper, "GET", co+path, nil, nil); r.status != http.StatusOK {
			t.Fatalf("GET checkout%s: %d", path, r.status)
		}
	}
	// The live stream: its headers are enough for the request line to be written.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", co+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET checkout/events: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	// Paths no route serves still name the id: a 404 of the checkout family, and a mis-cased one.
	if r := e.do(shopper, "GET", co+"/nothing-here", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("GET checkout/nothing-here: %d, want 404", r.status)
	}
	if r := e.do(shopper, "GET", e.url+"/Embed/Checkout/"+id, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("GET mis-cased checkout: %d, want 404", r.status)
	}

	want := map[string]string{ // logged path -> route, for the request lines of the checkout's own routes
		"/embed/checkout/" + id[:4] + "…":              "/embed/checkout/:checkoutId",
		"/embed/checkout/" + id[:4] + "…/status":       "/embed/checkout/:checkoutId/status",
		"/embed/checkout/" + id[:4] + "…/qr.png":       "/embed/checkout/:checkoutId/qr.png",
		"/embed/checkout/" + id[:4] + "…/events":       "/embed/checkout/:checkoutId/events",
		"/embed/checkout/" + id[:4] + "…/nothing-here": "",
		"/Embed/Checkout/" + id[:4] + "…":              "",
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		logs := e.logs.String()
		seen := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(logs))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "request" {
				continue
			}
			path, _ := line["path"].(string)
			route, ok := want[path]
			if !ok {
				continue
			}
			seen[path] = true
			if route != "" && line["route"] != route {
				t.Errorf("request line of %s has route %v, want %s", path, line["route"], route)
			}
			if line["method"] != "GET" || line["requestId"] == "" || line["status"] == nil {
				t.Errorf("request line of %s lost its other fields: %v", path, line)
			}
		}
		if len(seen) == len(want) || time.Now().After(deadline) {
			for path := range want {
				if !seen[path] {
					t.Errorf("no request line with path %s", path)
				}
			}
			// Not the id, nor any longer piece of it than its first 4 characters, anywhere in the log.
			if strings.Contains(logs, id[:6]) || strings.Contains(logs, id[4:14]) {
				t.Errorf("the log holds the checkout id %s:\n%s", id, logs)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
