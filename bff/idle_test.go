package bff

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"beadbff/config"
	"beadbff/session"
)

// The idle timeout slides, at the price of one session write a minute at most: a session in use is
// rewritten (with its new expiry inside it) once it has aged a minute, never on every request; one left
// alone for the idle timeout ends.
func TestIdleTimeoutSlides(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	mem, err := session.NewMemory(session.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod",
		"SESSION_IDLE_TIMEOUT": "10m", "SESSION_MAX_LIFETIME": "24h"}
	srv, err := New(Deps{Config: config.Load(func(k string) string { return all[k] }), Store: mem, Now: clock.Now,
		Bead: &fakeRealm{now: clock.Now, terminal: "t1"}})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := mem.NewID()
	tok, _, err := mem.ClaimTerminalToken(ctx, session.TerminalToken{TerminalID: "t1", MerchantID: "m1", Lineage: "l",
		Token: session.Token{AccessToken: "a", RefreshToken: "r", Expiry: clock.Now().Add(time.Hour)}}, 24*time.Hour, holderName(id), clock.Now().Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	sess := &session.Session{ID: id, TerminalID: "t1", MerchantID: "m1", Lineage: tok.Lineage, CSRFToken: "c", CreatedAt: clock.Now(), LastSeen: clock.Now()}
	if err := mem.Save(ctx, sess, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	expiresAt := func() time.Time {
		t.Helper()
		s, err := mem.Load(ctx, id)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return s.ExpiresAt
	}
	saved := expiresAt()
	for _, step := range []time.Duration{0, 30 * time.Second, 29 * time.Second} {
		clock.Advance(step)
		if got := whoAmI(t, srv, id); got != http.StatusOK {
			t.Fatalf("at +%v: %d", step, got)
		}
	}
	if got := expiresAt(); !got.Equal(saved) {
		t.Errorf("requests within the first minute rewrote the session (expiry %v, saved with %v)", got, saved)
	}
	clock.Advance(2 * time.Second) // 61 s after the save
	whoAmI(t, srv, id)
	if got, want := expiresAt(), clock.Now().Add(10*time.Minute); !got.Equal(want) {
		t.Errorf("after a minute: expiry %v, want %v (moved along)", got, want)
	}
	clock.Advance(9 * time.Minute) // past the saved expiry, within the moved one
	if got := whoAmI(t, srv, id); got != http.StatusOK {
		t.Errorf("9 min after the touch: %d, want 200 (the idle timeout slid)", got)
	}
	clock.Advance(10*time.Minute + time.Second)
	if got := whoAmI(t, srv, id); got != http.StatusUnauthorized {
		t.Errorf("10 min idle: %d, want 401", got)
	}
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }
