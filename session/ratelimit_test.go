package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The attempt limiter's contract, on the memory store and on a real Redis, like the store contract.
// Windows are short because the Redis harness lets time pass by sleeping.
func TestAttemptContract(t *testing.T) { runContract(t, attemptCases, someBackends) }

const attemptWindow = 600 * time.Millisecond

func mustTake(t *testing.T, st Store, name string, limit int) string {
	t.Helper()
	ticket, wait, err := st.TakeAttempt(context.Background(), name, limit, attemptWindow)
	if err != nil || ticket == "" || wait != 0 {
		t.Fatalf("TakeAttempt(%s, %d) = %q, %v, %v; want a ticket", name, limit, ticket, wait, err)
	}
	return ticket
}

func mustBeRefused(t *testing.T, st Store, name string, limit int) time.Duration {
	t.Helper()
	ticket, wait, err := st.TakeAttempt(context.Background(), name, limit, attemptWindow)
	if err != nil || ticket != "" || wait <= 0 || wait > attemptWindow {
		t.Fatalf("TakeAttempt(%s, %d) = %q, %v, %v; want a refusal with 0 < wait <= %v", name, limit, ticket, wait, err, attemptWindow)
	}
	return wait
}

var attemptCases = []contractCase{
	{"limit attempts pass, the next is refused until the window passes", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		for range 3 {
			mustTake(t, st, "user:a", 3)
		}
		mustBeRefused(t, st, "user:a", 3)
		h.elapse(attemptWindow + 50*time.Millisecond)
		mustTake(t, st, "user:a", 3)
	}},

	{"retry-after names the oldest slot's end", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		mustTake(t, st, "user:b", 2)
		h.elapse(attemptWindow / 2)
		mustTake(t, st, "user:b", 2)
		wait := mustBeRefused(t, st, "user:b", 2)
		if wait > attemptWindow/2+20*time.Millisecond {
			t.Errorf("wait %v, want about %v (when the first slot frees, not the second)", wait, attemptWindow/2)
		}
	}},

	{"a returned attempt does not count", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		first := mustTake(t, st, "user:c", 1)
		mustBeRefused(t, st, "user:c", 1)
		if err := st.ReturnAttempt(context.Background(), "user:c", first); err != nil {
			t.Fatalf("ReturnAttempt: %v", err)
		}
		mustTake(t, st, "user:c", 1)
	}},

	{"a stale ticket never frees another attempt's slot", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		old := mustTake(t, st, "user:d", 1)
		h.elapse(attemptWindow + 50*time.Millisecond)
		mustTake(t, st, "user:d", 1) // the same slot, taken again
		if err := st.ReturnAttempt(context.Background(), "user:d", old); err != nil {
			t.Fatalf("ReturnAttempt(old): %v", err)
		}
		mustBeRefused(t, st, "user:d", 1)
	}},

	{"names are independent", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		mustTake(t, st, "user:e", 1)
		mustBeRefused(t, st, "user:e", 1)
		mustTake(t, st, "addr:198.51.100.7", 1)
		mustTake(t, st, "user:e:", 1) // no prefix confusion either
	}},

	{"two processes sharing the store never exceed the limit together", func(t *testing.T, h *harness) {
		a, b := h.open(t, Options{}), h.open(t, Options{})
		const limit, tries = 5, 40
		granted := countWins(tries, func(i int) bool {
			st := a
			if i%2 == 1 {
				st = b
			}
			ticket, _, err := st.TakeAttempt(context.Background(), "user:race", limit, time.Minute)
			if err != nil {
				t.Errorf("TakeAttempt: %v", err)
			}
			return ticket != ""
		})
		if granted != limit {
			t.Errorf("%d of %d concurrent attempts granted, want exactly %d", granted, tries, limit)
		}
	}},

	{"every slot key expires", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		mustTake(t, st, "user:ttl", 2)
		mustTake(t, st, "user:ttl", 2)
		n := 0
		for _, k := range h.keys(t) {
			if strings.Contains(k, "rl:") {
				n++
				if d := h.ttl(t, k); d <= 0 || d > attemptWindow {
					t.Errorf("slot %s has TTL %v, want within (0, %v]", k, d, attemptWindow)
				}
			}
		}
		if n != 2 {
			t.Errorf("%d slot keys, want 2", n)
		}
	}},

	{"bad arguments and tickets are errors, not refusals", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		for _, tc := range []struct {
			name   string
			limit  int
			window time.Duration
		}{{"", 1, time.Second}, {"x", 0, time.Second}, {"x", MaxAttemptSlots + 1, time.Second}, {"x", 1, 0}} {
			if _, _, err := st.TakeAttempt(ctx, tc.name, tc.limit, tc.window); err == nil {
				t.Errorf("TakeAttempt(%q, %d, %v): no error", tc.name, tc.limit, tc.window)
			}
		}
		for _, ticket := range []string{"", "x", "1/", "-1/abc", "99999/abc"} {
			if err := st.ReturnAttempt(ctx, "x", ticket); !errors.Is(err, ErrNoSlotClaimed) {
				t.Errorf("ReturnAttempt(%q) = %v, want ErrNoSlotClaimed", ticket, err)
			}
		}
	}},

	{"a closed store is unavailable", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		_ = st.Close()
		_, _, err := st.TakeAttempt(context.Background(), "user:f", 1, time.Second)
		wantErrIs(t, "TakeAttempt after Close", err, ErrUnavailable)
	}},
}
