package bff

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/session"
)

// rotatingRealm behaves like the sandbox's realm: each refresh token works once (the realm marks it used
// as soon as it receives the grant), a second use is counted as reuse and answered invalid_grant. delay
// is how long the answer takes after the realm has already rotated; a caller that gives up meanwhile
// loses the answer, just as an HTTP client whose request was cancelled mid-flight does.
type rotatingRealm struct {
	fakeRealm
	mu      sync.Mutex
	used    map[string]bool
	n       int
	reuse   int
	grants  int
	delay   time.Duration
	logouts atomic.Int32
}

func (r *rotatingRealm) Refresh(ctx context.Context, rt string) (*bead.Token, error) {
	r.mu.Lock()
	r.grants++
	if r.used == nil {
		r.used = map[string]bool{}
	}
	if r.used[rt] {
		r.reuse++
		r.mu.Unlock()
		return nil, &bead.TokenError{Op: "refresh grant", Code: "invalid_grant", Description: "Maximum allowed refresh token reuse exceeded"}
	}
	r.used[rt] = true // rotated at the realm: from here on, only the answer carries the successor
	r.n++
	n := r.n
	r.mu.Unlock()
	if r.delay > 0 {
		select {
		case <-ctx.Done():
			return nil, &bead.TransportError{Op: "refresh grant", Err: ctx.Err()}
		case <-time.After(r.delay):
		}
	}
	now := time.Now()
	return &bead.Token{AccessToken: jwtFor("t1", now.Add(time.Hour)) + fmt.Sprint(n), RefreshToken: fmt.Sprint("rotated-", n),
		Expiry: now.Add(time.Hour), ObtainedAt: now}, nil
}

func (r *rotatingRealm) Logout(context.Context, string) error { r.logouts.Add(1); return nil }

// blipStore: the first ExtendLock call (or the first SwapTerminalToken call) fails as a store that
// does not answer for one call; every later call works. The lock itself is never lost.
type blipStore struct {
	session.Store
	extendBlips, swapBlips atomic.Int32
}

func (b *blipStore) ExtendLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if b.extendBlips.Add(-1) >= 0 {
		return false, fmt.Errorf("extend lock: %w: i/o timeout", session.ErrUnavailable)
	}
	return b.Store.ExtendLock(ctx, name, token, ttl)
}

func (b *blipStore) SwapTerminalToken(ctx context.Context, prev *session.TerminalToken, next session.TerminalToken, ttl time.Duration) (*session.TerminalToken, bool, error) {
	if b.swapBlips.Add(-1) >= 0 {
		return nil, false, fmt.Errorf("swap terminal token: %w: i/o timeout", session.ErrUnavailable)
	}
	return b.Store.SwapTerminalToken(ctx, prev, next, ttl)
}

// Found by a break-it review, fixed (1): one renewal of the lease that errors (Redis slow for one call; the lock is still held, with
// two thirds of its lease left) cancels a grant that is already at the realm. The realm has rotated, the
// answer is dropped, the store keeps the spent refresh token, and the next refresh presents it again:
// refresh-token reuse, invalid_grant, and the terminal's login (every session of it) ends.
func TestBreakRenewalBlipCancelsInFlightGrantAndLosesRotation(t *testing.T) {
	ctx := context.Background()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &blipStore{Store: mem}
	st.extendBlips.Store(1)
	realm := &rotatingRealm{fakeRealm: fakeRealm{now: time.Now, terminal: "t1"}, delay: 200 * time.Millisecond}
	// 300 ms lease: renewed at 100 ms (that renewal blips); the realm answers at 200 ms, well within the lease.
	srv := terminalServer(t, st, realm, map[string]string{"REFRESH_LOCK_LEASE": "300ms"})
	seedSession(t, mem, "t1", "m1", session.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: time.Now().Add(time.Hour)})
	stale, _ := mem.LoadTerminalToken(ctx, "t1")

	_, err1 := srv.refreshTerminal(ctx, stale, "test")
	t.Logf("first refresh: %v", err1)
	stale2, _ := mem.LoadTerminalToken(ctx, "t1")
	if stale2 != nil {
		t.Logf("stored refresh token after the first refresh: %q", stale2.Token.RefreshToken)
	}
	if stale2 == nil {
		stale2 = stale
	}
	_, err2 := srv.refreshTerminal(ctx, stale2, "test")
	t.Logf("second refresh: %v", err2)
	if realm.reuse != 0 {
		t.Errorf("refreshTokenReuse = %d after a single failed lease renewal (lock never lost), want 0", realm.reuse)
	}
	if _, err := mem.LoadTerminalToken(ctx, "t1"); err != nil {
		t.Errorf("the terminal's token is gone (%v): the terminal's login ended because of one slow Redis call", err)
	}
}

// Found by a break-it review, fixed (2): the store does not answer the one compare-and-swap that follows a successful grant. The
// rotated refresh token exists only in memory and is thrown away; the store keeps the spent one, and the
// next refresh reuses it.
func TestBreakSwapBlipLosesRotatedRefreshToken(t *testing.T) {
	ctx := context.Background()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &blipStore{Store: mem}
	st.swapBlips.Store(1)
	realm := &rotatingRealm{fakeRealm: fakeRealm{now: time.Now, terminal: "t1"}}
	srv := terminalServer(t, st, realm, nil)
	seedSession(t, mem, "t1", "m1", session.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: time.Now().Add(time.Hour)})
	stale, _ := mem.LoadTerminalToken(ctx, "t1")

	_, err1 := srv.refreshTerminal(ctx, stale, "test")
	t.Logf("first refresh: %v", err1)
	_, err2 := srv.refreshTerminal(ctx, stale, "test")
	t.Logf("second refresh: %v", err2)
	if realm.reuse != 0 {
		t.Errorf("refreshTokenReuse = %d after one failed store write, want 0 (the rotated token should be retried, not dropped)", realm.reuse)
	}
	if _, err := mem.LoadTerminalToken(ctx, "t1"); err != nil {
		t.Errorf("the terminal's token is gone (%v): one store blip ended the terminal's login", err)
	}
}

// Found by a break-it review, fixed (3): holders are not lineage-aware. Session A's login ends (invalid_grant drops the token), but A's
// entry among the holders stays. B logs in (a new lineage) and is then the terminal's only live session;
// B logs out, and the realm session is NOT ended and the token stays in the store, because A (whose
// login is over and who can never use this token) still counts as a holder.
func TestBreakDeadLineageHolderBlocksLastLogout(t *testing.T) {
	ctx := context.Background()
	mem, srv, realm, a := revokedSession(t)

	// B logs in: a new lineage.
	idB, _ := mem.NewID()
	now := time.Now()
	cur, err := srv.claimTerminal(ctx, realm.issue(), bead.Claims{TerminalID: "t1", MerchantID: "m1"}, holderName(idB), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if cur.Lineage == a.Lineage {
		t.Fatalf("B joined A's dead lineage")
	}
	b := &session.Session{ID: idB, TerminalID: "t1", MerchantID: "m1", Lineage: cur.Lineage, CSRFToken: "c", CreatedAt: now, LastSeen: now}
	if err := mem.Save(ctx, b, time.Hour); err != nil {
		t.Fatal(err)
	}

	// B, the only session that can use the terminal's token, logs out.
	if err := mem.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	logoutsBefore := realm.logouts
	srv.releaseTerminal(ctx, b)
	if realm.logouts == logoutsBefore {
		t.Errorf("B's logout did not end the realm session: A (of the ended lineage %q) still counts as a holder", a.Lineage)
	}
	if _, err := mem.LoadTerminalToken(ctx, "t1"); err == nil {
		t.Errorf("the terminal's token survives its last live session's logout")
	}
}

// revokedSession is a server on a memory store whose session a (terminal t1) has had its login revoked:
// the refresh answered invalid_grant, and the terminal's token was dropped.
func revokedSession(t *testing.T) (mem session.Store, srv *Server, realm *fakeRealm, a *session.Session) {
	t.Helper()
	ctx := context.Background()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	realm = &fakeRealm{now: time.Now, terminal: "t1"}
	srv = terminalServer(t, mem, realm, nil)
	a = seedSession(t, mem, "t1", "m1", session.Token{AccessToken: "a-access", RefreshToken: "a-refresh", Expiry: time.Now().Add(time.Hour)})
	stale, _ := mem.LoadTerminalToken(ctx, "t1")
	realm.refreshErr = &bead.TokenError{Op: "refresh grant", Code: "invalid_grant"}
	if _, err := srv.refreshTerminal(ctx, stale, "test"); err == nil {
		t.Fatal("want the refresh to fail")
	}
	realm.refreshErr = nil
	if _, err := mem.LoadTerminalToken(ctx, "t1"); err == nil {
		t.Fatal("the dead token was not dropped")
	}
	return mem, srv, realm, a
}
