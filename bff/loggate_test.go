package bff

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"beadbff/bff/bead"
)

func TestLogGate(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	g := newLogGate(3, time.Minute)
	var passed []bool
	for i := range 5 {
		ok, held := g.allow("signature_mismatch", t0.Add(time.Duration(i)*time.Second))
		passed = append(passed, ok)
		if held != 0 {
			t.Errorf("event %d reported %d held back within the first window", i, held)
		}
	}
	if want := []bool{true, true, true, false, false}; !slices.Equal(passed, want) {
		t.Errorf("first window passed %v, want %v", passed, want)
	}
	if ok, _ := g.allow("header_missing", t0.Add(5*time.Second)); !ok {
		t.Error("another key was held back by this one's limit")
	}
	ok, held := g.allow("signature_mismatch", t0.Add(time.Minute))
	if !ok || held != 2 {
		t.Errorf("first event of the next window: logged %v, held before %d; want true and 2", ok, held)
	}
	if _, held := g.allow("signature_mismatch", t0.Add(time.Minute+time.Second)); held != 0 {
		t.Errorf("the held count was reported twice (%d)", held)
	}
}

// lockedBuffer is a log sink that handlers may write to from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A flood of well-formed deliveries signed with the wrong secret (anyone can send them) is refused and
// counted every time, but logged refusalLogLimit times a minute, not once or twice per request.
func TestWebhookRefusalFloodIsNotLoggedLineByLine(t *testing.T) {
	e := newHookEnv(t, nil)
	body := statusBody(hookTracking, hookTerminal, "completed")
	const flood = 50
	for range flood {
		if r := e.post(t, bead.SignWebhook([]byte("not the secret"), time.Now(), body), body, nil); r.status != http.StatusForbidden {
			t.Fatalf("a wrongly signed delivery answered %d, want 403", r.status)
		}
	}
	if n := strings.Count(e.logs.String(), `msg="webhook refused"`); n != refusalLogLimit {
		t.Errorf("%d refusals logged %d lines, want %d", flood, n, refusalLogLimit)
	}
	// Found by a break-it review: the request log still wrote a line per refused delivery.
	if n := strings.Count(e.logs.String(), "/webhooks/bead"); n != 0 {
		t.Errorf("the request log wrote %d lines for %d refused deliveries, want 0 (the refusal's own line says it)", n, flood)
	}
	if n := counterValue(e.srv.hooks.metrics.deliveries.WithLabelValues("refused", "signature_mismatch")); n != flood {
		t.Errorf("refusals counted %v, want %d (the metric counts every one)", n, flood)
	}
}

// Found by a new-user walkthrough: a connection that never sent a request (Chromium opens spare ones)
// timed out into a logged "request refused" 408 with an HTML page, for a path "/" nobody asked for. It is
// answered with a bare 408 and logged nowhere; a request that did arrive and then timed out still is.
func TestIdleConnectionTimeoutIsNotARequest(t *testing.T) {
	e := newHookEnv(t, nil)
	for _, tc := range []struct {
		name   string
		wire   string // what the client sent before the timeout
		logged bool
	}{
		{"nothing sent", "", false},
		{"a request's headers sent", "GET /payments HTTP/1.1\r\nHost: beadbff.test\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.logs.String()
			var fctx fasthttp.RequestCtx
			if tc.wire != "" {
				if err := fctx.Request.Read(bufio.NewReader(strings.NewReader(tc.wire))); err != nil {
					t.Fatal(err)
				}
			}
			c := e.srv.App().AcquireCtx(&fctx)
			defer e.srv.App().ReleaseCtx(c)
			if err := e.srv.errorHandler(c, fiber.ErrRequestTimeout); err != nil {
				t.Fatal(err)
			}
			if got := fctx.Response.StatusCode(); got != http.StatusRequestTimeout {
				t.Errorf("answered %d, want 408", got)
			}
			logged := strings.Contains(strings.TrimPrefix(e.logs.String(), before), "request refused")
			if logged != tc.logged {
				t.Errorf("logged %v, want %v: %s", logged, tc.logged, strings.TrimPrefix(e.logs.String(), before))
			}
		})
	}
}
