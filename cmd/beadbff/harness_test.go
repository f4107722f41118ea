package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"beadbff/bff/sandbox"
	"beadbff/session"
	"beadbff/session/redistest"
)

// TestMain keeps go-redis's own messages (dial failures during the outage tests) out of the test output;
// go-redis has one logger per process.
func TestMain(m *testing.M) {
	session.RouteRedisLogs(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// env is one running beadbff (started through run, as main does) with its own sandbox and Redis.
type env struct {
	t        testing.TB
	sandbox  *sandbox.Sandbox
	sbURL    string
	url      string // beadbff's base URL
	redisURL string
	vars     map[string]string // beadbff's environment
	logs     *syncBuffer
	stop     func() error
}

type envOptions struct {
	sandbox  sandbox.Options
	vars     map[string]string // extra environment for beadbff
	noRedis  bool              // in-memory sessions
	redisURL string            // an existing Redis instead of a new one
	// lateVars gives environment that depends on the started sandbox (its URL, its webhook secret).
	lateVars func(sandboxURL string, sb *sandbox.Sandbox) map[string]string
}

// startEnv starts a sandbox on a loopback port, a real redis-server (unless noRedis) and beadbff itself
// through run, and waits until beadbff says it listens.
func startEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	sb, err := sandbox.New(o.sandbox)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	hs := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { hs.Close(); sb.Close() })

	e := &env{t: t, sandbox: sb, sbURL: hs.URL, logs: &syncBuffer{}}
	vars := map[string]string{
		"BEAD_API_URL":      hs.URL,
		"BEAD_IDENTITY_URL": hs.URL + "/realms/nonprod",
		"SESSION_KEYS":      base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"LOG_FORMAT":        "json",
		"LOG_LEVEL":         "debug",
	}
	if !o.noRedis {
		e.redisURL = o.redisURL
		if e.redisURL == "" {
			e.redisURL = redistest.Start(t)
		}
		vars["REDIS_URL"] = e.redisURL
	}
	for k, v := range o.vars {
		vars[k] = v
	}
	if o.lateVars != nil {
		for k, v := range o.lateVars(hs.URL, sb) {
			vars[k] = v
		}
	}
	if vars["BFF_ADDR"] == "" {
		port := freePort(t)
		vars["BFF_ADDR"] = fmt.Sprintf("127.0.0.1:%d", port)
		vars["BFF_PUBLIC_URL"] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	e.vars = vars
	e.stop = e.start(vars)
	t.Cleanup(func() {
		if err := e.stop(); err != nil { // e.stop, not the first stop: a test may have restarted the server
			t.Errorf("beadbff stopped with %v", err)
		}
	})
	return e
}

// start runs beadbff with vars and returns its stop function.
func (e *env) start(vars map[string]string) func() error {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	stdout := &lineWatcher{re: regexp.MustCompile(`listening on (http://\S+)`), found: listening}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, stdout, e.logs) }()
	select {
	case u := <-listening:
		e.url = u
	case err := <-done:
		cancel()
		e.t.Fatalf("beadbff did not start: %v\nlogs:\n%s", err, e.logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		e.t.Fatalf("beadbff did not say it listens within 20 s\nlogs:\n%s", e.logs.String())
	}
	var once sync.Once
	var stopErr error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(20 * time.Second):
				stopErr = fmt.Errorf("beadbff did not stop within 20 s")
			}
		})
		return stopErr
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// client is an HTTP client with its own cookie jar, like one browser or front-end app; it does not follow
// redirects, so tests see them.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// reply is an answer, its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

func (e *env) do(c *http.Client, method, url string, body any, header map[string]string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// api calls beadbff's JSON API with the CSRF header a front-end app sends.
func (e *env) api(c *http.Client, method, path string, body any) reply {
	e.t.Helper()
	return e.do(c, method, e.url+path, body, map[string]string{"X-CSRF": "1"})
}

// sb calls the sandbox's control endpoints.
func (e *env) sb(method, path string, body any) reply {
	e.t.Helper()
	r := e.do(http.DefaultClient, method, e.sbURL+path, body, nil)
	if r.status >= 300 {
		e.t.Fatalf("sandbox %s %s: %d %s", method, path, r.status, r.body)
	}
	return r
}

// stats reads one counter of the sandbox's stats, e.g. stat("tokenRequests", "refresh_token").
func (e *env) stat(path ...string) float64 {
	e.t.Helper()
	var v any = e.sb("GET", "/_sandbox/stats", nil).json(e.t)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return 0
		}
		v = m[p]
	}
	f, _ := v.(float64)
	return f
}

// apiRequests is the sandbox's count of payments-API calls, all statuses.
func (e *env) apiRequests() float64 {
	e.t.Helper()
	m, _ := e.sb("GET", "/_sandbox/stats", nil).json(e.t)["apiRequests"].(map[string]any)
	var n float64
	for _, v := range m {
		f, _ := v.(float64)
		n += f
	}
	return n
}

// login logs in through the API as the sandbox's i-th terminal.
func (e *env) login(c *http.Client, i int) sandbox.Terminal {
	e.t.Helper()
	term := e.sandbox.Terminals()[i]
	r := e.api(c, "POST", "/api/v1/session", map[string]string{"username": term.TerminalID, "password": term.Password})
	if r.status != http.StatusCreated {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return term
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineWatcher passes the first match of re in what is written to found.
type lineWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	re    *regexp.Regexp
	found chan<- string
	sent  bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := w.re.FindStringSubmatch(w.buf.String()); m != nil {
			w.sent = true
			w.found <- m[1]
		}
	}
	return len(p), nil
}
