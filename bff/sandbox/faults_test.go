package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCountedAPIFaults(t *testing.T) {
	tests := []struct {
		kind    string
		delayMs int
		check   func(t *testing.T, resp *http.Response, body []byte, elapsed time.Duration)
	}{
		{"waf_block", 0, func(t *testing.T, resp *http.Response, body []byte, _ time.Duration) {
			got := []any{resp.StatusCode, resp.Header.Get("Server"), resp.Header.Get("Content-Type"),
				resp.Header.Get("x-request-id"), strings.HasPrefix(string(body), "<html>"), strings.Contains(string(body), "<h1>403 Forbidden</h1>")}
			want := []any{403, "awselb/2.0", "text/html", "", true, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[status, Server, Content-Type, x-request-id, html, 403 text] (-want +got):\n%s", diff)
			}
		}},
		{"rate_limit", 0, func(t *testing.T, resp *http.Response, body []byte, _ time.Duration) {
			reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
			if err != nil || reset < time.Now().Unix() {
				t.Errorf("X-RateLimit-Reset %q, want a future epoch second", resp.Header.Get("X-RateLimit-Reset"))
			}
			var b struct {
				Code    int    `json:"code"`
				Error   string `json:"error"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			got := []any{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("X-RateLimit-Limit"),
				resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("Server"), b.Code, b.Error, b.Message != ""}
			want := []any{429, "1", "1000", "0", "Kestrel", 429, "rate_limit_exceeded", true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[status, Retry-After, Limit, Remaining, Server, code, error, has message] (-want +got):\n%s", diff)
			}
		}},
		{"strip_authorization", 0, func(t *testing.T, resp *http.Response, body []byte, _ time.Duration) {
			got := []any{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)}
			if diff := cmp.Diff([]any{401, "Bearer", ""}, got); diff != "" {
				t.Errorf("[status, challenge, body] (-want +got):\n%s", diff)
			}
		}},
		{"slow", 150, func(t *testing.T, resp *http.Response, body []byte, elapsed time.Duration) {
			if resp.StatusCode != http.StatusOK || elapsed < 150*time.Millisecond {
				t.Errorf("status %d after %v, want 200 after at least 150ms", resp.StatusCode, elapsed)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f := newFixture(t, Options{})
			token := f.token(t, 0)
			f.fault(t, map[string]any{"kind": tt.kind, "count": 2, "delayMs": tt.delayMs})

			// Faults sit in front of the API only: the realm and the controls are untouched
			// and do not use up the count.
			f.token(t, 0)
			f.stats(t)

			for i := range 2 {
				start := time.Now()
				resp, body := f.call(t, http.MethodGet, "/currencies", nil, bearer(token))
				t.Run(fmt.Sprint("call ", i+1), func(t *testing.T) { tt.check(t, resp, body, time.Since(start)) })
			}
			resp, body := f.call(t, http.MethodGet, "/currencies", nil, bearer(token))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("third call: %d %s, want 200 once the count is used up", resp.StatusCode, body)
			}
			if got := f.stats(t).FaultsApplied[tt.kind]; got != 2 {
				t.Errorf("faultsApplied[%s] = %d, want 2", tt.kind, got)
			}
		})
	}
}

func TestFaultWithoutCountHitsTheNextCall(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	f.fault(t, map[string]any{"kind": "waf_block"})
	first, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(token))
	second, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(token))
	if first.StatusCode != http.StatusForbidden || second.StatusCode != http.StatusOK {
		t.Errorf("statuses %d, %d; want 403 then 200", first.StatusCode, second.StatusCode)
	}
	if diff := cmp.Diff(map[string]int{"200": 1, "403": 1}, f.stats(t).APIRequests); diff != "" {
		t.Errorf("apiRequests (-want +got):\n%s", diff)
	}
}

func TestExpireTokensFault(t *testing.T) {
	f := newFixture(t, Options{})
	old := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	f.fault(t, map[string]any{"kind": "expire_tokens"})

	resp, body := f.call(t, http.MethodGet, "/currencies", nil, bearer(old.AccessToken))
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || len(body) != 0 ||
		!strings.HasPrefix(challenge, `Bearer error="invalid_token", error_description="The token expired at '`) {
		t.Errorf("old token: %d %q, challenge %s; want 401 token expired", resp.StatusCode, body, challenge)
	}

	// A refresh cures it, even within the same second as the fault.
	status, fresh := f.refresh(t, "nonprod", "bead-terminal", old.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, fresh.ErrorDescription)
	}
	if resp, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(fresh.AccessToken)); resp.StatusCode != http.StatusOK {
		t.Errorf("token issued after the fault: %d, want 200", resp.StatusCode)
	}

	f.control(t, http.MethodDelete, "/_sandbox/faults", nil, http.StatusNoContent)
	if resp, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(old.AccessToken)); resp.StatusCode != http.StatusOK {
		t.Errorf("old token after DELETE /_sandbox/faults: %d, want 200", resp.StatusCode)
	}
}

func TestRevokeRefreshTokensFault(t *testing.T) {
	f := newFixture(t, Options{})
	old := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	f.fault(t, map[string]any{"kind": "revoke_refresh_tokens"})

	status, ans := f.refresh(t, "nonprod", "bead-terminal", old.RefreshToken)
	if status != http.StatusBadRequest || ans.Error != "invalid_grant" {
		t.Errorf("revoked refresh: %d %s, want 400 invalid_grant", status, ans.Error)
	}
	// The access token is not touched, and a new login gets refresh tokens that work.
	if resp, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(old.AccessToken)); resp.StatusCode != http.StatusOK {
		t.Errorf("access token: %d, want 200", resp.StatusCode)
	}
	again := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	if status, _ := f.refresh(t, "nonprod", "bead-terminal", again.RefreshToken); status != http.StatusOK {
		t.Errorf("refresh after a new login: %d, want 200", status)
	}
}

func TestFaultRequestsAreChecked(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		name string
		body any
	}{
		{"unknown kind", map[string]any{"kind": "meteor"}},
		{"negative count", map[string]any{"kind": "waf_block", "count": -1}},
		{"delay too long", map[string]any{"kind": "slow", "delayMs": 10 * 60 * 1000}},
		{"unknown field", map[string]any{"kind": "slow", "delay": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := f.control(t, http.MethodPost, "/_sandbox/faults", tt.body, http.StatusBadRequest)
			if decodeMap(t, raw)["error"] == nil {
				t.Errorf("body %s has no error", raw)
			}
		})
	}
	var v struct {
		Pending map[string]int `json:"pending"`
		Kinds   []string       `json:"kinds"`
	}
	if err := json.Unmarshal(f.control(t, http.MethodGet, "/_sandbox/faults", nil, http.StatusOK), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Pending) != 0 || len(v.Kinds) != 10 {
		t.Errorf("faults after refused requests: pending %v, %d kinds; want none pending, 10 kinds", v.Pending, len(v.Kinds))
	}
}

// slow_token holds the next N token requests for delayMs, and only those: the API is not slowed.
func TestSlowTokenFault(t *testing.T) {
	f := newFixture(t, Options{})
	first := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	f.fault(t, map[string]any{"kind": "slow_token", "count": 1, "delayMs": 300})
	start := time.Now()
	if resp, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(first.AccessToken)); resp.StatusCode != http.StatusOK {
		t.Fatalf("API call: %d", resp.StatusCode)
	}
	if d := time.Since(start); d >= 300*time.Millisecond {
		t.Errorf("an API call took %v under slow_token, want it untouched", d)
	}
	start = time.Now()
	status, _ := f.refresh(t, "nonprod", "bead-terminal", first.RefreshToken)
	if d := time.Since(start); status != http.StatusOK || d < 300*time.Millisecond {
		t.Errorf("refresh under slow_token: %d after %v, want 200 after at least 300 ms", status, d)
	}
	start = time.Now()
	f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	if d := time.Since(start); d >= 300*time.Millisecond {
		t.Errorf("the token request after the counted one took %v, want it fast", d)
	}
}
