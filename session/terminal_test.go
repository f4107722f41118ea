package session

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The terminal token's part of the store contract (run by TestStoreContract on every backend).
func init() { contractCases = append(contractCases, terminalCases...) }

// ignoreStamp: Version and StoredAt are the store's to set.
var ignoreStamp = cmpopts.IgnoreFields(TerminalToken{}, "Version", "StoredAt")

// terminalFixture is a fresh login's token of terminal tid, lineage lin.
func terminalFixture(now time.Time, tid, lin, tag string) TerminalToken {
	at := now.In(time.FixedZone("CET", 3600))
	return TerminalToken{
		TerminalID: tid,
		MerchantID: "merch-19c2",
		Lineage:    lin,
		Token: Token{
			AccessToken:   "eyJhbGciOiJSUzI1NiJ9.ACCESS-TOKEN-SECRET-" + tag + "." + strings.Repeat("a", 900),
			RefreshToken:  "eyJhbGciOiJIUzI1NiJ9.REFRESH-TOKEN-SECRET-" + tag + "." + strings.Repeat("r", 600),
			IDToken:       "eyJhbGciOiJSUzI1NiJ9.ID-TOKEN-SECRET-" + tag + "." + strings.Repeat("i", 900),
			TokenType:     "Bearer",
			Scope:         "openid profile email",
			Expiry:        at.Add(5 * time.Minute),
			RefreshExpiry: at.Add(30 * time.Minute),
			ObtainedAt:    at,
		},
	}
}

func mustClaimTerminal(t *testing.T, st Store, tok TerminalToken, holder string, until time.Time) (current, replaced *TerminalToken) {
	t.Helper()
	current, replaced, err := st.ClaimTerminalToken(context.Background(), tok, time.Hour, holder, until)
	if err != nil {
		t.Fatalf("ClaimTerminalToken: %v", err)
	}
	return current, replaced
}

func mustLoadTerminal(t *testing.T, st Store, tid string) *TerminalToken {
	t.Helper()
	got, err := st.LoadTerminalToken(context.Background(), tid)
	if err != nil {
		t.Fatalf("LoadTerminalToken(%s): %v", tid, err)
	}
	return got
}

func terminalKeyOf(h *harness, tid string) string {
	return (&store{opts: Options{Prefix: h.prefix}}).terminalTokenKey(tid)
}

func holdersKeyOf(h *harness, tid string) string {
	return (&store{opts: Options{Prefix: h.prefix}}).holdersKey(tid)
}

var terminalCases = []contractCase{
	{"terminal token: a first claim starts its lineage and loads back sealed", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		want := terminalFixture(h.now(), "term-1", "lin-first", "one")
		current, replaced := mustClaimTerminal(t, st, want, "holder-a", h.now().Add(time.Hour))
		if replaced != nil {
			t.Errorf("first claim replaced %+v, want nothing", replaced)
		}
		if diff := cmp.Diff(want, *current, ignoreStamp, cmpopts.IgnoreUnexported(TerminalToken{})); diff != "" {
			t.Errorf("claimed (-given +current):\n%s", diff)
		}
		if current.Version == "" {
			t.Error("the claimed token has no version")
		}
		loaded := mustLoadTerminal(t, st, "term-1")
		if diff := cmp.Diff(current, loaded, cmpopts.IgnoreUnexported(TerminalToken{})); diff != "" {
			t.Errorf("loaded (-claimed +loaded):\n%s", diff)
		}
		key := terminalKeyOf(h, "term-1")
		blob, ok := h.rawGet(t, key)
		if !ok {
			t.Fatalf("no value under %q", key)
		}
		for name, secret := range map[string]string{
			"access token":   want.Token.AccessToken,
			"refresh token":  want.Token.RefreshToken,
			"id token":       want.Token.IDToken,
			"a token's tail": "TOKEN-SECRET",
		} {
			if bytes.Contains(blob, []byte(secret)) || strings.Contains(key, secret) {
				t.Errorf("the %s is stored in clear", name)
			}
		}
		if ttl := h.ttl(t, key); ttl <= 59*time.Minute || ttl > time.Hour {
			t.Errorf("token TTL = %v, want the claim's hour", ttl)
		}
	}},

	{"terminal token: a later claim replaces the token and keeps the lineage", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		first, _ := mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin-first", "one"), "holder-a", h.now().Add(time.Hour))
		second := terminalFixture(h.now(), "term-1", "lin-second", "two")
		current, replaced := mustClaimTerminal(t, st, second, "holder-b", h.now().Add(time.Hour))
		if replaced == nil || replaced.Token.RefreshToken != first.Token.RefreshToken {
			t.Fatalf("replaced = %+v, want the first token (its realm session is to be ended)", replaced)
		}
		if current.Lineage != "lin-first" {
			t.Errorf("lineage after a second login = %q, want the first's %q (its sessions carry on)", current.Lineage, "lin-first")
		}
		if current.Token.AccessToken != second.Token.AccessToken || current.Version == first.Version {
			t.Error("the second login's token is not the one in force")
		}
		if got := mustLoadTerminal(t, st, "term-1"); got.Token.RefreshToken != second.Token.RefreshToken || got.Lineage != "lin-first" {
			t.Errorf("stored after second claim: lineage %q, the second's refresh token %v", got.Lineage, got.Token.RefreshToken == second.Token.RefreshToken)
		}
		other, _ := mustClaimTerminal(t, st, terminalFixture(h.now(), "term-2", "lin-other", "three"), "holder-c", h.now().Add(time.Hour))
		if other.Lineage != "lin-other" || mustLoadTerminal(t, st, "term-1").Lineage != "lin-first" {
			t.Error("terminals' tokens are not independent")
		}
	}},

	{"terminal token: swap is fenced by what was read", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		read, _ := mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin", "one"), "holder-a", h.now().Add(time.Hour))
		refreshed := terminalFixture(h.now(), "term-1", "lin", "two")
		winner, ok, err := st.SwapTerminalToken(ctx, read, refreshed, 2*time.Hour)
		if err != nil || !ok {
			t.Fatalf("swap from the current token = %v, %v; want done", ok, err)
		}
		if ttl := h.ttl(t, terminalKeyOf(h, "term-1")); ttl <= time.Hour {
			t.Errorf("TTL after swap = %v, want the swap's two hours (it follows the refresh token)", ttl)
		}
		// A slow refresher still holding the first read must not put its token over the newer one.
		late := terminalFixture(h.now(), "term-1", "lin", "late")
		if _, ok, err := st.SwapTerminalToken(ctx, read, late, time.Hour); err != nil || ok {
			t.Errorf("swap from a stale read = %v, %v; want refused", ok, err)
		}
		if got := mustLoadTerminal(t, st, "term-1"); got.Token.RefreshToken != refreshed.Token.RefreshToken || got.Version != winner.Version {
			t.Error("a stale swap overwrote the newer token")
		}
		// A claim in between fences the refresher as well.
		mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "x", "login"), "holder-b", h.now().Add(time.Hour))
		if _, ok, _ := st.SwapTerminalToken(ctx, winner, late, time.Hour); ok {
			t.Error("a swap from a read older than a login went through")
		}
		if _, _, err := st.SwapTerminalToken(ctx, &TerminalToken{TerminalID: "term-1"}, late, time.Hour); err == nil {
			t.Error("a swap from a token that was never read from the store was accepted")
		}
	}},

	{"terminal token: of concurrent swaps from one read exactly one wins", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		read, _ := mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin", "one"), "holder-a", h.now().Add(time.Hour))
		wins := countWins(16, func(i int) bool {
			_, ok, err := st.SwapTerminalToken(context.Background(), read, terminalFixture(h.now(), "term-1", "lin", strings.Repeat("x", i)), time.Hour)
			if err != nil {
				t.Error(err)
			}
			return ok
		})
		if wins != 1 {
			t.Errorf("%d of 16 concurrent swaps from one read went through, want exactly 1", wins)
		}
	}},

	{"terminal token: drop removes only the token that was read", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		read, _ := mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin", "one"), "holder-a", h.now().Add(time.Hour))
		newer, _, _ := st.SwapTerminalToken(ctx, read, terminalFixture(h.now(), "term-1", "lin", "two"), time.Hour)
		if err := st.DropTerminalToken(ctx, read); err != nil {
			t.Fatal(err)
		}
		if got := mustLoadTerminal(t, st, "term-1"); got.Version != newer.Version {
			t.Error("dropping a stale read deleted the newer token")
		}
		if err := st.DropTerminalToken(ctx, newer); err != nil {
			t.Fatal(err)
		}
		_, err := st.LoadTerminalToken(ctx, "term-1")
		wantErrIs(t, "LoadTerminalToken after drop", err, ErrNotFound)
	}},

	{"terminal token: the last holder's release deletes and returns it", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		claimed, _ := mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin", "one"), "holder-a", h.now().Add(time.Hour))
		mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin", "two"), "holder-b", h.now().Add(time.Hour))
		if ttl := h.ttl(t, holdersKeyOf(h, "term-1")); ttl < time.Hour {
			t.Errorf("holders' TTL = %v, want at least the longest holder's hour", ttl)
		}
		last, err := st.ReleaseTerminal(ctx, "term-1", "holder-a")
		if err != nil || last != nil {
			t.Fatalf("release of one of two holders = %v, %v; want nothing returned", last, err)
		}
		mustLoadTerminal(t, st, "term-1") // still there for holder-b
		last, err = st.ReleaseTerminal(ctx, "term-1", "holder-b")
		if err != nil || last == nil {
			t.Fatalf("release of the last holder = %v, %v; want the token", last, err)
		}
		if last.Token.RefreshToken == claimed.Token.RefreshToken || !strings.Contains(last.Token.RefreshToken, "-two.") {
			t.Error("the last release returned another token than the current one")
		}
		_, err = st.LoadTerminalToken(ctx, "term-1")
		wantErrIs(t, "LoadTerminalToken after the last release", err, ErrNotFound)
		if again, err := st.ReleaseTerminal(ctx, "term-1", "holder-b"); err != nil || again != nil {
			t.Errorf("a second release = %v, %v; want nothing", again, err)
		}
	}},

	{"terminal token: holders whose time passed do not count", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		mustClaimTerminal(t, st, terminalFixture(h.now(), "term-1", "lin", "one"), "gone", h.now().Add(time.Second))
		if err := st.HoldTerminal(ctx, "term-1", "staying", h.now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		h.elapse(1500 * time.Millisecond)
		if last, err := st.ReleaseTerminal(ctx, "term-1", "staying"); err != nil || last == nil {
			t.Errorf("release with only an expired holder left = %v, %v; want the token (the last holder left)", last, err)
		}
	}},

	{"terminal token: a token under a retired key is no token, and a claim replaces it", func(t *testing.T, h *harness) {
		underA := h.open(t, Options{Keyring: mustKeyring(t, keyA)})
		mustClaimTerminal(t, underA, terminalFixture(h.now(), "term-1", "lin-a", "one"), "holder-a", h.now().Add(time.Hour))
		rotated := h.open(t, Options{Keyring: mustKeyring(t, keyB, keyA)})
		if got := mustLoadTerminal(t, rotated, "term-1"); got.Lineage != "lin-a" {
			t.Errorf("lineage under [B, A] = %q", got.Lineage)
		}
		onlyB := h.open(t, Options{Keyring: mustKeyring(t, keyB)})
		_, err := onlyB.LoadTerminalToken(context.Background(), "term-1")
		wantErrIs(t, "LoadTerminalToken with only B", err, ErrNotFound, ErrUnreadable)
		current, replaced := mustClaimTerminal(t, onlyB, terminalFixture(h.now(), "term-1", "lin-b", "two"), "holder-b", h.now().Add(time.Hour))
		if replaced != nil || current.Lineage != "lin-b" {
			t.Errorf("claim over an unreadable token: lineage %q, replaced %v; want a new lineage, nothing replaced", current.Lineage, replaced)
		}
		if got := mustLoadTerminal(t, onlyB, "term-1"); got.Lineage != "lin-b" {
			t.Errorf("stored lineage = %q, want lin-b", got.Lineage)
		}
	}},

	{"lock: a lease is renewed only by its holder", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		token, err := st.Lock(ctx, "refresh:lease", time.Second)
		if err != nil || token == "" {
			t.Fatalf("Lock = %q, %v", token, err)
		}
		if ok, err := st.ExtendLock(ctx, "refresh:lease", "not-the-token", time.Hour); err != nil || ok {
			t.Errorf("ExtendLock with a wrong token = %v, %v; want refused", ok, err)
		}
		if ok, err := st.ExtendLock(ctx, "refresh:lease", token, 3*time.Second); err != nil || !ok {
			t.Fatalf("ExtendLock by the holder = %v, %v; want renewed", ok, err)
		}
		h.elapse(1500 * time.Millisecond) // past the first lease, within the renewed one
		if other, _ := st.Lock(ctx, "refresh:lease", time.Second); other != "" {
			t.Error("the renewed lock was taken once its first lease had run out")
		}
		h.elapse(2 * time.Second)
		if ok, _ := st.ExtendLock(ctx, "refresh:lease", token, time.Second); ok {
			t.Error("a lease that ran out was renewed")
		}
	}},
}
