package main

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A refusal that survives the refresh-and-retry: the API answers problem+json with the support bundle,
// the page shows the first troubleshooting page, and each try reached Bead exactly twice (the call and its
// one retry) with one refresh in between.
func TestRefusalSurvivingRetry(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)

	tests := []struct {
		name      string
		fault     map[string]any
		status    int
		cause     string
		wantCalls float64 // calls that reached the sandbox's API: the call, its one retry, the checklist's probe
		bundle    bool
	}{
		{"a WAF answers HTML 403 twice", map[string]any{"kind": "waf_block", "count": 2}, http.StatusBadGateway, "blocked_before_bead", 3, true},
		{"the Authorization header is stripped twice", map[string]any{"kind": "strip_authorization", "count": 2}, http.StatusBadGateway, "token_missing", 3, true},
		{"rate limited", map[string]any{"kind": "rate_limit", "count": 1}, http.StatusTooManyRequests, "rate_limited", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.sb("DELETE", "/_sandbox/faults", nil)
			e.sb("POST", "/_sandbox/faults", tt.fault)
			before, refreshes := e.apiRequests(), e.stat("tokenRequests", "refresh_token")
			r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "2.00", "reference": "refused"})
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			p := r.json(t)
			if p["cause"] != tt.cause {
				t.Errorf("cause %v, want %s", p["cause"], tt.cause)
			}
			if n := e.apiRequests() - before; n != tt.wantCalls {
				t.Errorf("%v calls reached Bead, want %v", n, tt.wantCalls)
			}
			wantRefreshes := 0.0
			if tt.wantCalls > 1 {
				wantRefreshes = 1
			}
			if n := e.stat("tokenRequests", "refresh_token") - refreshes; n != wantRefreshes {
				t.Errorf("%v refreshes, want %v", n, wantRefreshes)
			}
			support, _ := p["support"].(map[string]any)
			if !tt.bundle {
				if support != nil {
					t.Errorf("a %s answer carries a support bundle: %v", tt.cause, support)
				}
				if tt.cause == "rate_limited" && r.header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				return
			}
			prefix, _ := support["jwtPrefix"].(string)
			if len(prefix) != 50 || !strings.HasPrefix(prefix, "eyJ") {
				t.Errorf("jwtPrefix %q: want the first 50 characters of the JWT", prefix)
			}
			if support["path"] != "POST /payments/crypto" || support["requestId"] != r.header.Get("X-Request-Id") {
				t.Errorf("support = %v, want the path and this request's id %s", support, r.header.Get("X-Request-Id"))
			}
			if ts, _ := support["timestamp"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(UTC\)$`).MatchString(ts) {
				t.Errorf("timestamp %q has no zone", ts)
			}
			for _, g := range regexp.MustCompile(`eyJ[A-Za-z0-9_.-]*`).FindAll(r.body, -1) {
				if len(g) > 50 {
					t.Errorf("the answer shows %d characters of the token, want at most 50", len(g))
				}
			}
			if id, _ := p["incidentId"].(string); id == "" || p["checks"] == nil {
				t.Errorf("no incidentId or checks in %s", r.body)
			}
		})
	}

	// The same refusal in a browser: the form comes back with the cause and a link to the incident page,
	// which carries the bundle and a mail to Bead (TestFormCreateRefusedKeepsInput checks the form itself).
	e.sb("DELETE", "/_sandbox/faults", nil)
	dash := e.do(app, "GET", e.url+"/", nil, nil)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(dash.body)
	if csrf == nil {
		t.Fatal("no form token on the dashboard")
	}
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "waf_block", "count": 2})
	form := e.form(app, "/payments", "amount=3&reference=refused-page&csrf="+string(csrf[1]))
	if form.status != http.StatusBadGateway || !bytes.Contains(form.body, []byte("blocked_before_bead")) {
		t.Fatalf("form page status %d, want 502 naming blocked_before_bead", form.status)
	}
	link := regexp.MustCompile(`href="(/help/incidents/[A-Za-z0-9_-]{22})"`).FindSubmatch(form.body)
	if link == nil {
		t.Fatal("the form shown again has no link to the incident page")
	}
	page := e.do(app, "GET", e.url+string(link[1]), nil, nil)
	if page.status != http.StatusOK {
		t.Fatalf("incident page status %d", page.status)
	}
	for _, want := range []string{`data-testid="support-bundle"`, `data-testid="bundle-jwt-prefix"`, "mailto:developers@bead.xyz",
		"POST /payments/crypto", form.header.Get("X-Request-Id"), "blocked_before_bead"} {
		if !bytes.Contains(page.body, []byte(want)) {
			t.Errorf("troubleshooting page lacks %q", want)
		}
	}
	for what, body := range map[string][]byte{"form page": form.body, "incident page": page.body} {
		for _, g := range regexp.MustCompile(`eyJ[A-Za-z0-9_.-]*`).FindAll(body, -1) {
			if len(g) > 50 {
				t.Errorf("%s shows %d characters of the token, want at most 50", what, len(g))
			}
		}
	}
	if got := regexp.MustCompile(`eyJ[A-Za-z0-9_.-]*`).FindAll(page.body, -1); len(got) == 0 {
		t.Error("no JWT prefix on the incident page")
	}
}

// Operations endpoints: health, readiness, metrics.
func TestOperations(t *testing.T) {
	e := startEnv(t, envOptions{})
	c := e.client()
	if r := e.do(c, "GET", e.url+"/healthz", nil, nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	if r := e.do(c, "GET", e.url+"/readyz", nil, nil); r.status != 200 || r.json(t)["status"] != "ready" {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	e.login(c, 0)
	e.api(c, "GET", "/api/v1/payments", nil)
	e.api(c, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1", "reference": "metrics"})
	m := e.do(c, "GET", e.url+"/metrics", nil, nil)
	for _, want := range []string{
		// Regression: the method label once aliased Fiber's reused buffer and read "GETT" for a POST.
		`beadbff_http_requests_total{method="POST",route="/api/v1/session",status="201"} 1`,
		`beadbff_http_requests_total{method="GET",route="/api/v1/payments",status="200"} 1`,
		`beadbff_bead_calls_total{op="create payment",status="ok"} 1`,
		`beadbff_bead_call_duration_seconds_count{op="create payment"} 1`, "go_goroutines",
	} {
		if !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The caller's sane request id is kept; a hostile one is replaced.
	if r := e.do(c, "GET", e.url+"/healthz", nil, map[string]string{"X-Request-Id": "caller-id-12345"}); r.header.Get("X-Request-Id") != "caller-id-12345" {
		t.Errorf("request id %q, want the caller's", r.header.Get("X-Request-Id"))
	}
	if r := e.do(c, "GET", e.url+"/healthz", nil, map[string]string{"X-Request-Id": "bad id\twith spaces"}); r.header.Get("X-Request-Id") == "bad id\twith spaces" || r.header.Get("X-Request-Id") == "" {
		t.Errorf("a malformed request id was kept or dropped: %q", r.header.Get("X-Request-Id"))
	}
	for _, path := range []string{"/no/such/page", "/api/v1/nothing", "/static/app.00000000.css"} {
		r := e.do(c, "GET", e.url+path, nil, nil)
		if r.status != http.StatusNotFound || r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d, request id %q; want 404 with an id", path, r.status, r.header.Get("X-Request-Id"))
		}
	}
}

// Shutdown drains requests in flight: a call already waiting on a slow Bead still gets its answer.
func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "slow", "count": 1, "delayMs": 800})
	done := make(chan reply, 1)
	go func() {
		done <- e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "9.00", "reference": "draining"})
	}()
	time.Sleep(300 * time.Millisecond) // the call is now waiting on the sandbox
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	r := <-done
	if r.status != http.StatusCreated {
		t.Errorf("request in flight during shutdown: %d %s, want 201", r.status, r.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := http.Get(e.url + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
}
