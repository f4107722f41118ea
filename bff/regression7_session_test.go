package bff

// Regression tests from the third break-it review (the touch's lineage check and clock skew). Each names
// the defect it guards against; the review's idempotency findings are in regression7_idempotency_test.go.

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
	"beadbff/session/redistest"
)

// Fixed (B1): touch's lineage check trusts this process's token copy: when another server dropped the lineage
// (invalid_grant), a server that still has the old token in memory (any server that made a Bead call
// for the terminal) finds "lineage lives" without reading the store, keeps the session and re-adds its
// terminal hold: defect 2b of cb6d393 comes back as soon as there are two servers.
func TestBreak7StaleTokenCopyKeepsDeadLineageAlive(t *testing.T) {
	ctx := context.Background()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	realm := &fakeRealm{now: time.Now, terminal: "t1"}
	a := terminalServer(t, mem, realm, nil) // server A
	b := terminalServer(t, mem, realm, nil) // server B, same store
	sess := seedSession(t, mem, "t1", "m1", session.Token{AccessToken: jwtFor("t1", time.Now().Add(time.Hour)), RefreshToken: "r",
		Expiry: time.Now().Add(time.Hour)}) // stored for 1 h under an 8 h idle timeout: its next request touches it
	// A has served a Bead call for t1: its copy of the token is the lineage's.
	if _, err := a.loadTerminalToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	// On B the refresh grant is refused: the login is over, the token and its holders are dropped.
	stale, _ := mem.LoadTerminalToken(ctx, "t1")
	realm.refreshErr = &bead.TokenError{Op: "refresh grant", Code: "invalid_grant"}
	if _, err := b.refreshTerminal(ctx, stale, "test"); err == nil {
		t.Fatal("want the refresh to fail")
	}
	realm.refreshErr = nil
	if _, err := mem.LoadTerminalToken(ctx, "t1"); err == nil {
		t.Fatal("the dead token was not dropped")
	}

	// On B the session would end at its touch (TestBreak5TouchReaddsDeadLineageHold). On A:
	got := whoAmI(t, a, sess.ID)
	if got != http.StatusUnauthorized {
		t.Errorf("server A (token copy in memory): a session whose terminal's login ended answered %d, want 401", got)
	}
	// A new login starts lineage l2 and logs out: it is the terminal's only live session.
	if !logInAndOutAgain(t, b, mem, realm) {
		t.Errorf("the only live session of t1 logged out, but the dead-lineage session's hold (re-added by server A's touch) " +
			"kept the realm session and the terminal's token")
	}
}

// Fixed (B2): the API leaves a dead session's cookie alone on purpose (loadSession: "so that a page whose script
// met the 401 can still say so when it reloads"), but the sessions touch now ends (lineage gone, logged
// out meanwhile) go through the other branch, which clears the cookie on API answers too. The payment
// page's poll (/api/v1/payments/{id}) is usually the request that touches; reloaded, the page then lands
// on /login without "Your session has ended".
func TestBreak7APIAnswerOfTouchEndedSessionKeepsCookie(t *testing.T) {
	_, srv, _, a := revokedSession(t)
	req := httptestRequest(http.MethodGet, "/api/v1/session", srv.cookieName()+"="+a.ID)
	res, err := srv.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API: %d, want 401", res.StatusCode)
	}
	cleared := false
	for _, c := range res.Cookies() {
		if c.Name == srv.cookieName() && (c.MaxAge < 0 || c.Value == "") {
			cleared = true
		}
	}
	cookie := srv.cookieName() + "=" + a.ID
	if cleared {
		cookie = "" // what the browser sends after that answer
	}
	page, err := srv.App().Test(httptestRequest(http.MethodGet, "/", cookie), -1)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if loc := page.Header.Get("Location"); !strings.Contains(loc, "ended=1") {
		t.Errorf("API 401 of a session touch ended cleared the cookie: %v; the page reloaded then redirects to %q, want the login page saying the session ended", cleared, loc)
	}
}

func httptestRequest(method, target, cookie string) *http.Request {
	req, _ := http.NewRequest(method, "http://example.com"+target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	return req
}

// touchCountingStore counts session touches.
type touchCountingStore struct {
	session.Store
	mu      sync.Mutex
	touches int
}

func (s *touchCountingStore) Touch(ctx context.Context, sess *session.Session, ttl time.Duration) error {
	s.mu.Lock()
	s.touches++
	s.mu.Unlock()
	return s.Store.Touch(ctx, sess, ttl)
}

// Fixed (B3): two servers whose clocks differ by more than the touch threshold (a minute) touch a session at
// every request they take in turn: the fast one sees "a minute less than a full idle timeout", the slow
// one (since cb6d393) "later than my timeouts allow". README: "two round trips at most once a minute".
func TestBreak7ClockSkewTouchesEveryRequest(t *testing.T) {
	ctx := context.Background()
	url := redistest.Start(t)
	prefix := redistest.Prefix(t)
	key, _ := session.GenerateKey()
	ring, _ := session.NewKeyring(key)
	const skew = 2 * time.Minute
	open := func(now func() time.Time) (*Server, *touchCountingStore) {
		rs, err := session.NewRedis(ctx, url, session.Options{Keyring: ring, Prefix: prefix, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		st := &touchCountingStore{Store: rs}
		srv, err := New(Deps{Config: config.Load(func(k string) string {
			return map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod"}[k]
		}), Store: st, Now: now, Bead: &fakeRealm{now: now, terminal: "t1"}})
		if err != nil {
			t.Fatal(err)
		}
		return srv, st
	}
	slow, slowSt := open(time.Now)
	fast, fastSt := open(func() time.Time { return time.Now().Add(skew) })
	sess := seedSession(t, slowSt.Store, "t1", "m1", session.Token{AccessToken: jwtFor("t1", time.Now().Add(time.Hour)), RefreshToken: "r",
		Expiry: time.Now().Add(time.Hour)})
	for range 10 {
		if whoAmI(t, slow, sess.ID) != http.StatusOK || whoAmI(t, fast, sess.ID) != http.StatusOK {
			t.Fatal("session lost")
		}
	}
	if n := slowSt.touches + fastSt.touches; n > 2 {
		t.Errorf("20 requests within a second, two servers %v apart: %d touches (SET XX + MULTI each), want at most 2", skew, n)
	}
}
