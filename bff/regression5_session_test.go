package bff

// Regression tests from the break-it review of be62c6a (the session expiry in its blob; per-process
// payment copies). Each names the defect it guards against.

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
	"beadbff/session/redistest"
)

// Fixed (1): the expiry in the blob is the writer's clock. When one server's clock runs ahead of another's by more
// than the idle timeout less the touch threshold, a session last touched by the fast server is never
// extended by the other: the store (Redis TTL, Redis's clock) drops a session in steady use. Before
// be62c6a, ExpiresIn came from PTTL and was immune to skew between servers. Now a server that finds an
// expiry later than its timeouts allow touches the session anyway.
func TestBreak5ClockSkewDropsActiveSession(t *testing.T) {
	ctx := context.Background()
	url := redistest.Start(t)
	prefix := redistest.Prefix(t)
	key, _ := session.GenerateKey()
	ring, _ := session.NewKeyring(key)
	const skew = 3 * time.Second // server "fast" runs 3 s ahead
	slowNow := time.Now
	fastNow := func() time.Time { return time.Now().Add(skew) }
	open := func(now func() time.Time) (*Server, session.Store) {
		st, err := session.NewRedis(ctx, url, session.Options{Keyring: ring, Prefix: prefix, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		vars := map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod",
			"SESSION_IDLE_TIMEOUT": "3s", "SESSION_MAX_LIFETIME": "1h"}
		srv, err := New(Deps{Config: config.Load(func(k string) string { return vars[k] }), Store: st, Now: now,
			Bead: &fakeRealm{now: now, terminal: "t1"}})
		if err != nil {
			t.Fatal(err)
		}
		return srv, st
	}
	slow, slowStore := open(slowNow)
	fast, _ := open(fastNow)

	id, _ := slowStore.NewID()
	tok, _, err := slowStore.ClaimTerminalToken(ctx, session.TerminalToken{TerminalID: "t1", MerchantID: "m1", Lineage: "l",
		Token: session.Token{AccessToken: "a", RefreshToken: "r", Expiry: slowNow().Add(time.Hour)}}, time.Hour, holderName(id), slowNow().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sess := &session.Session{ID: id, TerminalID: "t1", MerchantID: "m1", Lineage: tok.Lineage, CSRFToken: "c", CreatedAt: slowNow(), LastSeen: slowNow()}
	if err := slowStore.Save(ctx, sess, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := whoAmI(t, fast, id); got != http.StatusOK { // the fast server touches: the blob says "expires in 6 s"
		t.Fatalf("fast server: %d", got)
	}
	// The staff member keeps working, on the other server, every 250 ms: never idle for 3 s.
	start := time.Now()
	for time.Since(start) < 4*time.Second {
		time.Sleep(250 * time.Millisecond)
		if got := whoAmI(t, slow, id); got != http.StatusOK {
			t.Fatalf("a session in use every 250 ms (idle timeout 3s) ended after %v on the server %v behind: %d",
				time.Since(start).Round(10*time.Millisecond), skew, got)
		}
	}
}

// holdRaceStore: a logout on another server lands between this request's session GET and its touch.
type holdRaceStore struct {
	session.Store
	once   sync.Once
	before func()
}

func (s *holdRaceStore) Touch(ctx context.Context, sess *session.Session, ttl time.Duration) error {
	s.once.Do(s.before)
	return s.Store.Touch(ctx, sess, ttl)
}

// Fixed (2): SET XX keeps the logged-out session deleted, but touch then re-adds its terminal hold (ZADD) regardless,
// for the full idle timeout. The terminal then always has a holder: the next "last" logout keeps the realm
// session and the terminal's token (README: the realm session is ended when the last session logs out).
// (The race predates be62c6a, but Touch now knows whether SET XX kept the session and does not say.)
func TestBreak5TouchRevivesHoldOfLoggedOutSession(t *testing.T) {
	ctx := context.Background()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &holdRaceStore{Store: mem}
	srv := terminalServer(t, st, &fakeRealm{now: time.Now, terminal: "t1"}, nil)
	s1 := seedSession(t, mem, "t1", "m1", session.Token{AccessToken: jwtFor("t1", time.Now().Add(time.Hour)), RefreshToken: "r",
		Expiry: time.Now().Add(time.Hour)}) // stored for 1 h under an 8 h idle timeout: the next request touches it
	st.before = func() { // s1 logs out elsewhere: what logout does
		if err := mem.Delete(ctx, s1.ID); err != nil {
			t.Fatal(err)
		}
		if last, err := mem.ReleaseTerminal(ctx, "t1", holderName(s1.ID)); err != nil || last == nil {
			t.Fatalf("the logout was not the terminal's last holder: %v %v", last, err)
		}
	}
	whoAmI(t, srv, s1.ID)
	if _, err := mem.Load(ctx, s1.ID); err == nil {
		t.Fatal("the session came back")
	}

	// Later someone logs in on t1 again, then logs out: the last session of the terminal.
	s2, _ := mem.NewID()
	if _, _, err := mem.ClaimTerminalToken(ctx, session.TerminalToken{TerminalID: "t1", MerchantID: "m1", Lineage: "l2",
		Token: session.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour)}},
		time.Hour, holderName(s2), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	last, err := mem.ReleaseTerminal(ctx, "t1", holderName(s2))
	if err != nil {
		t.Fatal(err)
	}
	if last == nil {
		t.Errorf("the terminal's only live session logged out, but a hold of the session logged out earlier remained: " +
			"realm session kept, terminal token left in the store")
	}
}

// Fixed (3): the re-read of the store's record (added so that a stale copy cannot overwrite another server's
// write) sees a final status another server recorded while Bead answered, and overwrites it with the
// older, non-final answer all the same: the dashboard then shows a completed payment as "processing".
// applyConfirmed (webhooks) refuses that step back; paymentStatus does not.
func TestBreak5StatusReadRegressesFinalRecord(t *testing.T) {
	ctx := context.Background()
	realm := newTrackingRealm(bead.StatusProcessing)
	mem, srv, sess := paymentFixture(t, realm, nil)
	realm.during = func() { // another server's (later) read of Bead recorded the final status meanwhile
		rec, _ := mem.GetPayment(ctx, "t1", "trk-1")
		rec.StatusCode = string(bead.StatusCompleted)
		if err := mem.PutPayment(ctx, *rec); err != nil {
			t.Fatal(err)
		}
	}
	getStatus(t, srv, sess, "trk-1")
	rec, err := mem.GetPayment(ctx, "t1", "trk-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.StatusCode != string(bead.StatusCompleted) {
		t.Errorf("stored status %q: the re-read saw completed and wrote %q over it", rec.StatusCode, rec.StatusCode)
	}
	if ps, _ := mem.ListPayments(ctx, "t1", 10); len(ps) == 1 && ps[0].StatusCode != string(bead.StatusCompleted) {
		t.Errorf("dashboard lists the completed payment as %q", ps[0].StatusCode)
	}
}

// Fixed (2b): the same unconditional ZADD undoes the earlier fix for dead lineages (TestBreakDeadLineageHolderBlocksLastLogout):
// A's login ends (the token and the holders are dropped), but A's session still loads, and its next
// touch (any page that does not call Bead: whoami, the dashboard) puts A's hold back for the idle timeout.
func TestBreak5TouchReaddsDeadLineageHold(t *testing.T) {
	ctx := context.Background()
	mem, srv, realm, a := revokedSession(t)

	// A's tab asks who it is (no call to Bead). Its login is over, so its session ends here (401) instead
	// of its touch putting A's hold back.
	if got := whoAmI(t, srv, a.ID); got != http.StatusUnauthorized {
		t.Errorf("a session whose terminal's login ended answered %d, want 401", got)
	}
	if _, err := mem.Load(ctx, a.ID); err == nil {
		t.Error("the session of the ended login is still stored")
	}

	if !logInAndOutAgain(t, srv, mem, realm) {
		t.Errorf("B, the only session able to use the token, logged out; A's dead-lineage hold (re-added by touch) kept the realm session and token")
	}
}

// Fixed (4): a minor availability regression: another server has recorded the payment's final status; this server's
// copy (up to a minute old) still says processing, so it asks Bead, and while Bead is unreachable the
// answer is an error, where before be62c6a the store's final record answered without Bead.
func TestBreak5StaleCopyHidesStoredFinalWhenBeadIsDown(t *testing.T) {
	ctx := context.Background()
	realm := newTrackingRealm(bead.StatusProcessing)
	mem, srv, sess := paymentFixture(t, realm, nil)
	getStatus(t, srv, sess, "trk-1") // this server records processing and keeps a copy
	rec, _ := mem.GetPayment(ctx, "t1", "trk-1")
	rec.StatusCode = string(bead.StatusCompleted) // another server's read of Bead
	if err := mem.PutPayment(ctx, *rec); err != nil {
		t.Fatal(err)
	}
	realm.mu.Lock()
	realm.down = true
	realm.mu.Unlock()
	code, status, _ := readStatus(t, srv, sess, "trk-1")
	if code != http.StatusOK || status != string(bead.StatusCompleted) {
		t.Errorf("the payment is recorded completed, Bead is down: %d %q, want 200 completed (from the store, as before)", code, status)
	}
}
