package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkStatusRead measures a payment-status read through beadbff (session in a real Redis, token from
// the sealed session, a call to the sandbox) beside the same read sent straight to the sandbox with a
// bearer token, at the same concurrency in the same run. make bench prints both and their ratio. It
// asserts nothing about time.
func BenchmarkStatusRead(b *testing.B) {
	e := startEnv(b, envOptions{vars: map[string]string{"LOG_LEVEL": "error"}})
	app := e.client()
	e.login(app, 0)
	created := e.do(app, "POST", e.url+"/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "bench"}, map[string]string{"X-CSRF": "1"})
	var p struct {
		TrackingID string `json:"trackingId"`
	}
	if err := json.Unmarshal(created.body, &p); err != nil || p.TrackingID == "" {
		b.Fatalf("create: %d %s", created.status, created.body)
	}
	token := e.directToken(b)

	const concurrency = 16
	transport := &http.Transport{MaxIdleConnsPerHost: concurrency * 2}
	b.Run("via=beadbff", func(b *testing.B) {
		c := &http.Client{Jar: app.Jar, Transport: transport}
		load(b, concurrency, func() (*http.Request, error) {
			return http.NewRequest("GET", e.url+"/api/v1/payments/"+p.TrackingID, nil)
		}, c)
	})
	b.Run("via=direct", func(b *testing.B) {
		c := &http.Client{Transport: transport}
		load(b, concurrency, func() (*http.Request, error) {
			r, err := http.NewRequest("GET", e.sbURL+"/payments/tracking/"+p.TrackingID, nil)
			if err == nil {
				r.Header.Set("Authorization", "Bearer "+token)
				r.Header.Set("Accept", "application/json")
			}
			return r, err
		}, c)
	})
}

// load runs b.N requests over `workers` goroutines and reports throughput and latency percentiles.
func load(b *testing.B, workers int, newReq func() (*http.Request, error), c *http.Client) {
	b.Helper()
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		failures  int
		next      = make(chan struct{}, b.N)
	)
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/workers+1)
			bad := 0
			for range next {
				req, err := newReq()
				if err != nil {
					bad++
					continue
				}
				t0 := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad++
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			failures += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failures > 0 {
		b.Fatalf("%d of %d requests failed", failures, b.N)
	}
	slices.Sort(latencies)
	pct := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.90), "p90-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// directToken does the password grant against the sandbox's realm, as a client without beadbff would.
func (e *env) directToken(b *testing.B) string {
	b.Helper()
	term := e.sandbox.Terminals()[0]
	form := url.Values{"grant_type": {"password"}, "client_id": {"bead-terminal"}, "username": {term.Username},
		"password": {term.Password}, "scope": {"openid profile email"}}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", e.sbURL+"/realms/nonprod/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %v (%d)", err, resp.StatusCode)
	}
	return tok.AccessToken
}
