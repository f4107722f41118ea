package main

// Regressions of the sixth break-it review, end to end: idempotency keys against the sandbox. Each test
// names the defect it guards against.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// keyedCreate creates a payment through the API of the server at base with the session cookie ck.
func (e *env) keyedCreate(base string, ck *http.Cookie, key, amount, reference string) reply {
	e.t.Helper()
	return e.do(&http.Client{Timeout: 20 * time.Second}, "POST", base+"/api/v1/payments",
		map[string]any{"requestedAmount": amount, "reference": reference},
		map[string]string{"X-CSRF": "1", "Cookie": ck.Name + "=" + ck.Value, "Idempotency-Key": key})
}

func wantProblemReply(t *testing.T, what string, r reply, status int, cause string) map[string]any {
	t.Helper()
	var body map[string]any
	_ = json.Unmarshal(r.body, &body)
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" || body["cause"] != cause {
		t.Errorf("%s: %d %s %s, want %d problem+json cause %s", what, r.status, r.header.Get("Content-Type"), r.body, status, cause)
	}
	return body
}

// Regression (defect 3): a 201 to 255-character Idempotency-Key was dropped for a fresh one, so a retry
// made a second payment at Bead. Now a 255-character key is honoured and a longer one refused (400)
// before Bead is asked.
func TestBreak6LongIdempotencyKeyEndToEnd(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"LOG_LEVEL": "warn"}})
	staff := e.client()
	e.login(staff, 0)
	ck := e.sessionCookie(staff)
	key := strings.Repeat("order-2003/", 23) + "ab" // 255 characters
	first := e.keyedCreate(e.url, ck, key, "7.10", "long-key")
	second := e.keyedCreate(e.url, ck, key, "7.10", "long-key")
	if first.status != http.StatusCreated || first.json(t)["trackingId"] != second.json(t)["trackingId"] || e.stat("paymentsCreated") != 1 {
		t.Errorf("a 255-character key twice: %d, %d; %v payments at Bead; want one payment", first.status, second.status, e.stat("paymentsCreated"))
	}
	calls := e.apiRequests()
	wantProblemReply(t, "a 256-character key", e.keyedCreate(e.url, ck, key+"c", "7.10", "long-key"), http.StatusBadRequest, "invalid_request")
	if n := e.apiRequests() - calls; n != 0 {
		t.Errorf("%v calls to Bead for a refused key, want none", n)
	}
}
