package bff

import (
	"context"
	"errors"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
)

// hookedRealm is a realm whose refresh grant runs a hook first (to act "on another server" while the
// grant is under way).
type hookedRealm struct {
	fakeRealm
	onRefresh func(ctx context.Context) error
}

func (f *hookedRealm) Refresh(ctx context.Context, rt string) (*bead.Token, error) {
	if f.onRefresh != nil {
		if err := f.onRefresh(ctx); err != nil {
			f.refreshes++
			return nil, err
		}
	}
	return f.fakeRealm.Refresh(ctx, rt)
}

// flakyLeaseStore is a store whose lock leases can never be renewed (as when another process took the
// lock after this one stalled).
type flakyLeaseStore struct{ session.Store }

func (flakyLeaseStore) ExtendLock(context.Context, string, string, time.Duration) (bool, error) {
	return false, nil
}

func terminalServer(t testing.TB, st session.Store, realm beadAPI, vars map[string]string) *Server {
	t.Helper()
	all := map[string]string{"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod"}
	for k, v := range vars {
		all[k] = v
	}
	srv, err := New(Deps{Config: config.Load(func(k string) string { return all[k] }), Store: st, Bead: realm})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// The fence: a refresher whose grant comes back after someone else wrote the terminal's token (here a
// login on "another server") must not overwrite it. The login's token is the answer and stays stored.
func TestRefreshIsFencedByANewerWrite(t *testing.T) {
	ctx := context.Background()
	st, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	realm := &hookedRealm{fakeRealm: fakeRealm{now: time.Now, terminal: "t1"}}
	srv := terminalServer(t, st, realm, nil)
	seedSession(t, st, "t1", "m1", session.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: time.Now().Add(time.Hour)})
	stale, err := st.LoadTerminalToken(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var login *session.TerminalToken
	realm.onRefresh = func(ctx context.Context) error {
		login, _, err = st.ClaimTerminalToken(ctx, session.TerminalToken{TerminalID: "t1", MerchantID: "m1", Lineage: "x",
			Token: session.Token{AccessToken: "login-access", RefreshToken: "login-refresh", Expiry: time.Now().Add(time.Hour)}},
			time.Hour, "elsewhere", time.Now().Add(time.Hour))
		return err
	}
	got, err := srv.refreshTerminal(ctx, stale, "test")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got.Token.AccessToken != "login-access" || got.Version != login.Version {
		t.Errorf("refresh answered %q, want the newer login's token", got.Token.AccessToken)
	}
	if stored, _ := st.LoadTerminalToken(ctx, "t1"); stored.Token.RefreshToken != "login-refresh" {
		t.Errorf("stored refresh token %q, want the login's: the slow refresher overwrote a newer token", stored.Token.RefreshToken)
	}
	if realm.refreshes != 1 {
		t.Errorf("%d refresh grants, want 1", realm.refreshes)
	}
	if n := counterValue(srv.metrics.refreshes.WithLabelValues("fenced")); n != 1 {
		t.Errorf("fenced refreshes counted %v, want 1", n)
	}
}

// A lease that cannot be renewed cancels the grant before it goes on: another process may hold the lock by
// then and be refreshing with the same refresh token.
func TestLostLeaseCancelsTheGrant(t *testing.T) {
	ctx := context.Background()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := flakyLeaseStore{mem}
	realm := &hookedRealm{fakeRealm: fakeRealm{now: time.Now, terminal: "t1"}}
	realm.onRefresh = func(ctx context.Context) error {
		select { // a realm slower than the lease
		case <-ctx.Done():
			return &bead.TransportError{Op: "refresh grant", Err: ctx.Err()}
		case <-time.After(5 * time.Second):
			return nil
		}
	}
	srv := terminalServer(t, st, realm, map[string]string{"REFRESH_LOCK_LEASE": "300ms"})
	seedSession(t, mem, "t1", "m1", session.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: time.Now().Add(time.Hour)})
	stale, _ := mem.LoadTerminalToken(ctx, "t1")
	start := time.Now()
	_, err = srv.refreshTerminal(ctx, stale, "test")
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("refresh with a lost lease = %v, want errLeaseLost", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("the grant ran %v after the lease was lost, want it cancelled at the first renewal (100 ms)", waited)
	}
	if stored, _ := mem.LoadTerminalToken(ctx, "t1"); stored.Token.RefreshToken != "old-refresh" {
		t.Errorf("stored refresh token %q, want it untouched", stored.Token.RefreshToken)
	}
	if n := counterValue(srv.metrics.refreshes.WithLabelValues("lease_lost")); n != 1 {
		t.Errorf("lost leases counted %v, want 1", n)
	}
}
