package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"beadbff/session/redistest"
)

// The CORS allow-list the matrix runs against: exact origins, a subdomain pattern, a pattern with a port.
const corsTestOrigins = "https://app.shop.example,http://localhost:3000,https://*.shop.example,https://*.pay.example:8443"

// corsEnv is a beadbff on a Redis of its own (so that INFO commandstats counts only its commands), with
// the test allow-list and CORS_MAX_AGE=0, and a logged-in cookie.
func corsEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := startEnv(t, envOptions{redisURL: redistest.StartServer(t).URL, vars: map[string]string{
		"CORS_ALLOWED_ORIGINS": corsTestOrigins,
		"CORS_MAX_AGE":         "0",
	}})
	app := e.client()
	e.login(app, 0)
	ck := e.sessionCookie(app)
	return e, ck.Name + "=" + ck.Value
}

// corsHeaders are the response headers the matrix looks at.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers", "Access-Control-Allow-Private-Network"}

func TestCORSMatrix(t *testing.T) {
	e, cookie := corsEnv(t)
	preflight := func(origin string) map[string]string {
		h := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf,idempotency-key",
			"Access-Control-Request-Private-Network": "true", "Cookie": cookie}
		if origin != "" {
			h["Origin"] = origin
		}
		return h
	}
	actual := func(origin string, extra ...string) map[string]string {
		h := map[string]string{"Cookie": cookie, "X-CSRF": "1"}
		if origin != "" {
			h["Origin"] = origin
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	other := e.sandbox.Terminals()[2].TerminalID // another merchant's terminal
	refused := func(origin string) string { return "refused:" + origin }

	type row struct {
		name       string
		method     string
		path       string
		body       any
		header     map[string]string
		wantStatus int
		wantCause  string
		// wantAllow is the origin the answer must allow, "" for no CORS headers at all.
		wantAllow string
	}
	rows := []row{
		// Preflights.
		{"preflight, exact origin", "OPTIONS", "/api/v1/payments", nil, preflight("https://app.shop.example"), 204, "", "https://app.shop.example"},
		{"preflight, http localhost with port", "OPTIONS", "/api/v1/session", nil, preflight("http://localhost:3000"), 204, "", "http://localhost:3000"},
		{"preflight, one label under the pattern", "OPTIONS", "/api/v1/payments", nil, preflight("https://eu.shop.example"), 204, "", "https://eu.shop.example"},
		{"preflight, two labels under the pattern", "OPTIONS", "/api/v1/payments", nil, preflight("https://a.b.shop.example"), 204, "", "https://a.b.shop.example"},
		{"preflight, pattern with its port", "OPTIONS", "/api/v1/payments", nil, preflight("https://x.pay.example:8443"), 204, "", "https://x.pay.example:8443"},
		{"preflight to an unknown path is still answered", "OPTIONS", "/api/v1/nope", nil, preflight("https://app.shop.example"), 204, "", "https://app.shop.example"},
		{"preflight, not listed", "OPTIONS", "/api/v1/payments", nil, preflight("https://elsewhere.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, look-alike without the dot", "OPTIONS", "/api/v1/payments", nil, preflight("https://evilshop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, the pattern's apex", "OPTIONS", "/api/v1/payments", nil, preflight("https://shop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, listed name under another domain", "OPTIONS", "/api/v1/payments", nil, preflight("https://app.shop.example.attacker.test"), 403, "cors_origin_not_allowed", ""},
		{"preflight, pattern host on another scheme", "OPTIONS", "/api/v1/payments", nil, preflight("http://app.shop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, listed host on another port", "OPTIONS", "/api/v1/payments", nil, preflight("https://app.shop.example:8443"), 403, "cors_origin_not_allowed", ""},
		{"preflight, pattern without its port", "OPTIONS", "/api/v1/payments", nil, preflight("https://x.pay.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, localhost on another port", "OPTIONS", "/api/v1/payments", nil, preflight("http://localhost:3001"), 403, "cors_origin_not_allowed", ""},
		{"preflight, an empty label", "OPTIONS", "/api/v1/payments", nil, preflight("https://.shop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, an underscore label", "OPTIONS", "/api/v1/payments", nil, preflight("https://a_b.shop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, a path hidden before the suffix", "OPTIONS", "/api/v1/payments", nil, preflight("https://evil.test/.shop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, capitals (no browser sends them)", "OPTIONS", "/api/v1/payments", nil, preflight("https://EU.shop.example"), 403, "cors_origin_not_allowed", ""},
		{"preflight, null origin", "OPTIONS", "/api/v1/payments", nil, preflight("null"), 403, "cors_origin_not_allowed", ""},
		{"OPTIONS without Origin is no preflight", "OPTIONS", "/api/v1/payments", nil, preflight(""), 404, "not_found", ""},

		// Actual requests, allowed origin: success and errors all readable.
		{"allowed, whoami 200", "GET", "/api/v1/session", nil, actual("https://app.shop.example"), 200, "", "https://app.shop.example"},
		{"allowed, 401 without a session", "GET", "/api/v1/session", nil, map[string]string{"Origin": "https://eu.shop.example"}, 401, "not_authenticated", "https://eu.shop.example"},
		{"allowed, 403 csrf header missing", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "c1"},
			map[string]string{"Origin": "https://app.shop.example", "Cookie": cookie}, 403, "csrf_header_missing", "https://app.shop.example"},
		{"allowed, 403 terminal mismatch", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "c2", "terminalId": other},
			actual("https://app.shop.example"), 403, "terminal_mismatch", "https://app.shop.example"},
		{"allowed, 404", "GET", "/api/v1/nope", nil, actual("http://localhost:3000"), 404, "not_found", "http://localhost:3000"},
		{"allowed, 201 create", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "c3"},
			actual("https://app.shop.example"), 201, "", "https://app.shop.example"},

		// Actual requests, refused origins: nothing done, nothing readable.
		{"not listed, create refused", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": refused("elsewhere")},
			actual("https://elsewhere.example"), 403, "cors_origin_not_allowed", ""},
		{"look-alike, logout refused", "DELETE", "/api/v1/session", nil, actual("https://evilshop.example"), 403, "cors_origin_not_allowed", ""},
		{"null origin, read refused too", "GET", "/api/v1/payments", nil, actual("null"), 403, "cors_origin_not_allowed", ""},

		// No Origin: not a cross-origin browser call; answered, with no CORS headers.
		{"no Origin, whoami", "GET", "/api/v1/session", nil, actual(""), 200, "", ""},
		{"same origin", "GET", "/api/v1/session", nil, map[string]string{"Origin": e.url, "Cookie": cookie}, 200, "", ""},
	}
	apiBefore := e.apiRequests()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := e.do(http.DefaultClient, r.method, e.url+r.path, r.body, r.header)
			if got.status != r.wantStatus {
				t.Errorf("status %d, want %d (%s)", got.status, r.wantStatus, got.body)
			}
			if r.wantCause != "" {
				if c := got.json(t)["cause"]; c != r.wantCause {
					t.Errorf("cause %v, want %s", c, r.wantCause)
				}
			}
			if !hasToken(got.header.Values("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin", got.header.Values("Vary"))
			}
			if r.wantAllow == "" {
				for _, h := range corsHeaders {
					if v := got.header.Get(h); v != "" {
						t.Errorf("%s: %q on an answer that must carry no CORS headers", h, v)
					}
				}
				return
			}
			want := map[string]string{"Access-Control-Allow-Origin": r.wantAllow, "Access-Control-Allow-Credentials": "true"}
			if r.method == "OPTIONS" {
				want["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
				want["Access-Control-Allow-Headers"] = "Content-Type, X-CSRF, X-Request-Id, Idempotency-Key"
				want["Access-Control-Max-Age"] = "0"              // CORS_MAX_AGE=0 is sent, not dropped
				want["Access-Control-Allow-Private-Network"] = "" // not demo mode
				if !hasToken(got.header.Values("Vary"), "Access-Control-Request-Headers") {
					t.Errorf("preflight Vary %q lacks Access-Control-Request-Headers", got.header.Values("Vary"))
				}
			} else {
				want["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After, Location"
			}
			for h, v := range want {
				if g := got.header.Get(h); g != v {
					t.Errorf("%s = %q, want %q", h, g, v)
				}
			}
		})
	}
	// Only the one allowed create reached Bead.
	if n := e.apiRequests() - apiBefore; n != 1 {
		t.Errorf("%v payments-API calls during the matrix, want 1 (the allowed create)", n)
	}
	if list := e.api(e.clientWithCookie(cookie), "GET", "/api/v1/payments", nil); strings.Contains(string(list.body), refused("elsewhere")) {
		t.Error("the refused origin's payment was created")
	}

	// Refusals are logged with their origin and counted.
	logs := e.logs.String()
	for _, o := range []string{"https://elsewhere.example", "https://evilshop.example", "https://app.shop.example.attacker.test", "null"} {
		if !strings.Contains(logs, `"origin":"`+o+`"`) {
			t.Errorf("no log line names the refused origin %s", o)
		}
	}
	metrics := string(e.do(http.DefaultClient, "GET", e.url+"/metrics", nil, nil).body)
	for kind, want := range map[string]int{"preflight": 13, "request": 3} {
		line := fmt.Sprintf(`beadbff_cors_refusals_total{kind=%q} %d`, kind, want)
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// Answers Fiber writes before our handlers (an unknown method, a body over the limit) still vary by Origin
// and are readable by an allowed origin.
func TestCORSOnAnswersWrittenBeforeHandlers(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"CORS_ALLOWED_ORIGINS": corsTestOrigins}})
	host := strings.TrimPrefix(e.url, "http://")
	for name, raw := range map[string]string{
		"unknown method": "BREW /api/v1/session HTTP/1.1\r\nHost: " + host + "\r\nOrigin: https://app.shop.example\r\nConnection: close\r\n\r\n",
		"413 body": "POST /api/v1/session HTTP/1.1\r\nHost: " + host + "\r\nOrigin: https://app.shop.example\r\nContent-Type: application/json\r\n" +
			"Content-Length: 200000\r\nConnection: close\r\n\r\n" + strings.Repeat("x", 200000),
	} {
		t.Run(name, func(t *testing.T) {
			resp := rawRequest(t, e.url, raw)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !hasToken(resp.Header.Values("Vary"), "Origin") || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.shop.example" {
				t.Errorf("%d: Vary %q, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Values("Vary"), resp.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

// CORS_MAX_AGE reaches the preflight as whole seconds; unset it is the default of 10 minutes.
func TestCORSMaxAgeSent(t *testing.T) {
	for value, want := range map[string]string{"": "600", "2h": "7200", "45": "45"} {
		t.Run("CORS_MAX_AGE="+value, func(t *testing.T) {
			e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"CORS_ALLOWED_ORIGINS": corsTestOrigins, "CORS_MAX_AGE": value}})
			r := e.do(http.DefaultClient, "OPTIONS", e.url+"/api/v1/session", nil,
				map[string]string{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
			if got := r.header.Get("Access-Control-Max-Age"); r.status != http.StatusNoContent || got != want {
				t.Errorf("%d, Access-Control-Max-Age %q, want 204 and %q", r.status, got, want)
			}
		})
	}
}

// A preflight is answered before any session or store work: not one Redis command, allowed or refused,
// even when the request carries a session cookie (which browsers do not send on preflights anyway).
func TestPreflightIssuesNoRedisCommand(t *testing.T) {
	e, cookie := corsEnv(t)
	rdb := redis.NewClient(mustParseRedisURL(t, e.redisURL))
	t.Cleanup(func() { _ = rdb.Close() })
	commands := func() int {
		t.Helper()
		info, err := rdb.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatalf("INFO commandstats: %v", err)
		}
		n := 0
		for line := range strings.SplitSeq(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !ok || name == "cmdstat_info" { // our own INFO calls
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			c, _ := strconv.Atoi(calls)
			n += c
		}
		return n
	}
	before := commands()
	for i := range 20 {
		origin := "https://app.shop.example"
		if i%2 == 1 {
			origin = "https://evilshop.example"
		}
		r := e.do(http.DefaultClient, "OPTIONS", e.url+"/api/v1/payments", nil,
			map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Cookie": cookie})
		if r.status != http.StatusNoContent && r.status != http.StatusForbidden {
			t.Fatalf("preflight from %s: %d", origin, r.status)
		}
	}
	if after := commands(); after != before {
		t.Errorf("20 preflights issued %d Redis commands, want 0", after-before)
	}
	// The measure itself works: one real call with the cookie does reach Redis.
	e.do(http.DefaultClient, "GET", e.url+"/api/v1/session", nil, map[string]string{"Origin": "https://app.shop.example", "Cookie": cookie})
	if commands() == before {
		t.Error("a real call issued no Redis command either: INFO commandstats is not measuring this server")
	}
}

// Private Network Access is answered only in demo mode, where beadbff runs on a laptop's localhost.
func TestPrivateNetworkAccessOnlyInDemo(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"CORS_ALLOWED_ORIGINS": "http://localhost:3000",
		"BEAD_API_URL":         "", "BEAD_IDENTITY_URL": "", // demo mode: the embedded sandbox
		"BFF_SANDBOX_ADDR": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}})
	r := e.do(http.DefaultClient, "OPTIONS", e.url+"/api/v1/session", nil, map[string]string{"Origin": "http://localhost:3000",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Private-Network": "true"})
	if got := r.header.Get("Access-Control-Allow-Private-Network"); r.status != http.StatusNoContent || got != "true" {
		t.Errorf("demo mode: %d, Access-Control-Allow-Private-Network %q, want 204 and true", r.status, got)
	}
	// The matrix (not demo mode) checks that the header is absent there.
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

func mustParseRedisURL(t *testing.T, u string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// clientWithCookie is a client that sends the given Cookie header on every request.
func (e *env) clientWithCookie(cookie string) *http.Client {
	return &http.Client{Transport: cookieTransport{cookie}}
}

type cookieTransport struct{ cookie string }

func (c cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Cookie", c.cookie)
	return http.DefaultTransport.RoundTrip(r)
}
