package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"beadbff/session/redistest"
)

// The store contract: one table of behaviours, run against the memory store and against the Redis store
// on a real redis-server. Anything the web server relies on belongs here, so the two cannot drift.
//
// Times are compared by go-cmp through time.Time's Equal method (cmp uses an Equal method when a type
// has one), so a time that lost its monotonic reading or its *Location in JSON still compares equal when
// it names the same instant.

// harness is what a contract case may do to the store under test besides calling it.
type harness struct {
	// open returns a store over the same data as every other store of this harness, with opts
	// (Prefix and Now are filled in; a nil Keyring means keyring A).
	open func(t *testing.T, opts Options) Store
	// now is the clock the stores use.
	now func() time.Time
	// elapse lets d pass: advances the fake clock, or sleeps for Redis.
	elapse func(d time.Duration)
	// rawGet reads a key straight from the backend, bypassing the store (ok false when absent).
	rawGet func(t *testing.T, key string) (value []byte, ok bool)
	// rawSet writes a key straight into the backend.
	rawSet func(t *testing.T, key string, value []byte)
	// ttl reports a key's remaining time to live.
	ttl func(t *testing.T, key string) time.Duration
	// keys lists every key the stores of this harness wrote.
	keys func(t *testing.T) []string
	// prefix is the key prefix of this harness's stores.
	prefix string
}

// ignoreExpiresIn: Load fills it from the store's clock, so a saved and a loaded session differ there.
var ignoreExpiresIn = cmpopts.IgnoreFields(Session{}, "ExpiresIn")

var (
	keyA = testKey(0xa)
	keyB = testKey(0xb)
)

func TestStoreContract(t *testing.T) { runContract(t, contractCases, allBackends) }

// contractCase is one behaviour of the store contract.
type contractCase struct {
	name string
	run  func(t *testing.T, h *harness)
}

// backendKind is a backend a contract runs on: setup runs once per kind (starting Redis, say) and returns
// how each case gets its harness.
type backendKind struct {
	name  string
	setup func(t *testing.T) func(t *testing.T) *harness
}

var (
	memoryBackendKind = backendKind{name: "memory", setup: func(*testing.T) func(*testing.T) *harness { return newMemoryHarness }}
	redisKinds        = []backendKind{{name: "redis", setup: redisHarnessFactory}, {name: "redis-cluster", setup: redisClusterHarnessFactory}}
	// allBackends: the memory store, one Redis node, a three-node Cluster and a Sentinel set.
	allBackends = append([]backendKind{memoryBackendKind}, append(redisKinds, backendKind{name: "redis-sentinel", setup: redisSentinelHarnessFactory})...)
	// someBackends: the memory store, one node and a Cluster (parts of the contract Sentinel adds nothing to).
	someBackends = append([]backendKind{memoryBackendKind}, redisKinds...)
)

// runContract runs every case on every kind, in parallel: each case has a harness of its own (its own
// data, or its own key prefix). A missing redis-server fails only the Redis kinds.
func runContract(t *testing.T, cases []contractCase, kinds []backendKind) {
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			newHarness := kind.setup(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, newHarness(t))
				})
			}
		})
	}
}

// fakeClock is the memory store's clock: tests move it instead of sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newMemoryHarness(t *testing.T) *harness {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)}
	be := newMemoryBackend(clock.Now)
	return &harness{
		open: func(t *testing.T, opts Options) Store {
			t.Helper()
			opts.Now = clock.Now
			if opts.Keyring == nil {
				opts.Keyring = mustKeyring(t, keyA)
			}
			s, err := newMemory(opts, be)
			if err != nil {
				t.Fatalf("newMemory: %v", err)
			}
			return s
		},
		now:    clock.Now,
		elapse: clock.Advance,
		rawGet: func(t *testing.T, key string) ([]byte, bool) {
			t.Helper()
			v, err := be.get(context.Background(), key)
			if errors.Is(err, ErrNotFound) {
				return nil, false
			}
			if err != nil {
				t.Fatalf("memory get %q: %v", key, err)
			}
			return v, true
		},
		rawSet: func(t *testing.T, key string, value []byte) {
			t.Helper()
			if err := be.set(context.Background(), key, value, time.Hour); err != nil {
				t.Fatalf("memory set %q: %v", key, err)
			}
		},
		ttl: func(t *testing.T, key string) time.Duration {
			t.Helper()
			be.mu.Lock()
			defer be.mu.Unlock()
			e := be.live(key)
			if e == nil {
				t.Fatalf("ttl of %q: no such key", key)
			}
			return e.expires.Sub(clock.Now())
		},
		keys: func(t *testing.T) []string {
			be.mu.Lock()
			defer be.mu.Unlock()
			var keys []string
			for k := range be.entries {
				keys = append(keys, k)
			}
			return keys
		},
		prefix: DefaultPrefix,
	}
}

// redisHarnessFactory starts (or finds) one Redis for the whole contract; each case gets its own key
// prefix on it, so cases run in parallel and the server is never flushed.
func redisHarnessFactory(parent *testing.T) func(t *testing.T) *harness {
	return redisHarnessAt(redistest.Start(parent))
}

// redisClusterHarnessFactory runs the same contract on a real three-node Redis Cluster, so that every
// multi-key command the store issues is proven to stay within one hash slot.
func redisClusterHarnessFactory(parent *testing.T) func(t *testing.T) *harness {
	if testing.Short() {
		parent.Skip("Redis Cluster contract; run without -short")
	}
	return redisHarnessAt(redistest.StartCluster(parent, 3).URL)
}

// redisSentinelHarnessFactory runs the contract through a real Sentinel, which names the master the store
// then talks to (REDIS_URL=redis+sentinel://…).
func redisSentinelHarnessFactory(parent *testing.T) func(t *testing.T) *harness {
	if testing.Short() {
		parent.Skip("Redis Sentinel contract; run without -short")
	}
	master := redistest.StartServer(parent)
	return redisHarnessAt(redistest.StartSentinel(parent, master, "beadbff"))
}

func redisHarnessAt(url string) func(t *testing.T) *harness {
	return func(t *testing.T) *harness {
		t.Helper()
		prefix := redistest.Prefix(t)
		raw := rawRedisClient(t, url)
		t.Cleanup(func() { deleteKeys(t, raw, prefix) })
		return &harness{
			open: func(t *testing.T, opts Options) Store {
				t.Helper()
				opts.Prefix = prefix
				if opts.Keyring == nil {
					opts.Keyring = mustKeyring(t, keyA)
				}
				s, err := NewRedis(context.Background(), url, opts)
				if err != nil {
					t.Fatalf("NewRedis: %v", err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			},
			now:    time.Now,
			elapse: time.Sleep,
			rawGet: func(t *testing.T, key string) ([]byte, bool) {
				t.Helper()
				v, err := raw.Get(context.Background(), key).Bytes()
				if errors.Is(err, redis.Nil) {
					return nil, false
				}
				if err != nil {
					t.Fatalf("redis GET %q: %v", key, err)
				}
				return v, true
			},
			rawSet: func(t *testing.T, key string, value []byte) {
				t.Helper()
				if err := raw.Set(context.Background(), key, value, time.Hour).Err(); err != nil {
					t.Fatalf("redis SET %q: %v", key, err)
				}
			},
			ttl: func(t *testing.T, key string) time.Duration {
				t.Helper()
				d, err := raw.PTTL(context.Background(), key).Result()
				if err != nil || d < 0 {
					t.Fatalf("redis PTTL %q = %v, %v; want a key with a TTL", key, d, err)
				}
				return d
			},
			keys: func(t *testing.T) []string {
				t.Helper()
				return scanKeys(t, raw, prefix)
			},
			prefix: prefix,
		}
	}
}

// rawRedisClient is a client that bypasses the store, for the contract's raw reads and writes: a plain
// one for redis://, a cluster client for redis+cluster:// (built as the store builds its own).
func rawRedisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	opts, err := redisOptions(url)
	if err != nil {
		t.Fatalf("parse test Redis URL: %v", err)
	}
	c := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func scanKeys(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(context.Background(), c)
	}
	if err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// deleteKeys tidies a (possibly shared) Redis after a case; failures only matter to the next reader of
// that Redis, so they are logged, not fatal. One DEL per key: on a Cluster the keys sit in many slots.
func deleteKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	for _, k := range scanKeys(t, c, prefix) {
		if err := c.Del(context.Background(), k).Err(); err != nil {
			t.Logf("tidy test key %s: %v", k, err)
		}
	}
}

// --- fixtures

// newSession returns a session with every field set, with realistic token sizes, under a fresh id.
func newSession(t *testing.T, st Store, now time.Time) *Session {
	t.Helper()
	id, err := st.NewID()
	if err != nil {
		t.Fatalf("NewID: %v", err)
	}
	s := sessionFixture(now)
	s.ID = id
	return s
}

// sessionFixture is a session without an id.
func sessionFixture(now time.Time) *Session {
	// A zone other than UTC and nanoseconds: JSON must not lose the instant.
	at := now.In(time.FixedZone("CET", 3600))
	return &Session{
		TerminalID: "term-7f3a",
		MerchantID: "merch-19c2",
		Username:   "till1@beadpay.io",
		Lineage:    "lineage-4d1e",
		CSRFToken:  "CSRF-TOKEN-SECRET-q9w8e7",
		CreatedAt:  at,
		LastSeen:   at.Add(time.Second),
	}
}

func mustSave(t *testing.T, st Store, s *Session, ttl time.Duration) {
	t.Helper()
	if err := st.Save(context.Background(), s, ttl); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func mustLoad(t *testing.T, st Store, id string) *Session {
	t.Helper()
	got, err := st.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return got
}

func mustPut(t *testing.T, st Store, ps ...Payment) {
	t.Helper()
	for _, p := range ps {
		if err := st.PutPayment(context.Background(), p); err != nil {
			t.Fatalf("PutPayment(%s): %v", p.TrackingID, err)
		}
	}
}

func mustList(t *testing.T, st Store, terminalID string, limit int) []Payment {
	t.Helper()
	got, err := st.ListPayments(context.Background(), terminalID, limit)
	if err != nil {
		t.Fatalf("ListPayments(%s, %d): %v", terminalID, limit, err)
	}
	return got
}

func trackingIDs(ps []Payment) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.TrackingID
	}
	return ids
}

// payment returns a payment of terminal created at created, with its checkout id derived from tracking.
func payment(terminal, tracking string, created time.Time) Payment {
	return Payment{
		TrackingID:  tracking,
		PaymentID:   "pid-" + tracking,
		CheckoutID:  "co-" + terminal + "-" + tracking,
		TerminalID:  terminal,
		MerchantID:  "merch-of-" + terminal,
		PaymentURL:  "https://pay.example/" + tracking,
		Amount:      "12.50",
		Currency:    "USD",
		Reference:   "order-" + tracking,
		Description: "two coffees",
		StatusCode:  "created",
		CreatedAt:   created,
		UpdatedAt:   created,
	}
}

// countWins runs try(0) .. try(n-1) all at once and counts the calls that report a win.
func countWins(n int, try func(i int) bool) int {
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := range n {
		wg.Go(func() {
			if try(i) {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	return int(wins.Load())
}

func wantErrIs(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: err = %v, want it to wrap %v", what, err, target)
		}
	}
}

// sessionKeyOf is the storage key of a session id in a harness's stores.
func sessionKeyOf(h *harness, id string) string {
	return (&store{opts: Options{Prefix: h.prefix}}).sessionKey(id)
}

// --- the cases

var contractCases = []contractCase{
	{"ping", func(t *testing.T, h *harness) {
		if err := h.open(t, Options{}).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}},

	{"new ids are 43 url-safe characters and distinct", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		seen := make(map[string]bool)
		for range 200 {
			id, err := st.NewID()
			if err != nil {
				t.Fatal(err)
			}
			if !wellFormedID(id) || len(id) != 43 {
				t.Fatalf("NewID = %q, not 32 bytes of RawURLEncoding", id)
			}
			if seen[id] {
				t.Fatalf("NewID repeated %q", id)
			}
			seen[id] = true
		}
	}},

	{"session save and load round trip", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		want := newSession(t, st, h.now())
		mustSave(t, st, want, time.Hour)
		got := mustLoad(t, st, want.ID)
		if diff := cmp.Diff(want, got, ignoreExpiresIn); diff != "" {
			t.Errorf("Load after Save (-saved +loaded):\n%s", diff)
		}
	}},

	{"save replaces the stored session", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		mustSave(t, st, s, time.Hour)
		s.Lineage = "another-lineage"
		s.LastSeen = s.LastSeen.Add(time.Minute)
		mustSave(t, st, s, time.Hour)
		if diff := cmp.Diff(s, mustLoad(t, st, s.ID), ignoreExpiresIn); diff != "" {
			t.Errorf("Load after second Save (-second save +loaded):\n%s", diff)
		}
	}},

	{"load of an unknown id is not found", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		id, _ := st.NewID()
		_, err := st.Load(context.Background(), id)
		wantErrIs(t, "Load(unknown)", err, ErrNotFound)
		if errors.Is(err, ErrUnreadable) || errors.Is(err, ErrUnavailable) {
			t.Errorf("Load(unknown) = %v, want plain not found", err)
		}
	}},

	{"delete removes the session", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		mustSave(t, st, s, time.Hour)
		if err := st.Delete(context.Background(), s.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		_, err := st.Load(context.Background(), s.ID)
		wantErrIs(t, "Load after Delete", err, ErrNotFound)
		if _, ok := h.rawGet(t, sessionKeyOf(h, s.ID)); ok {
			t.Error("the sealed blob is still in the backend after Delete")
		}
	}},

	{"delete of an absent or malformed id is not an error", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		id, _ := st.NewID()
		for _, id := range []string{id, "", "not-a-session-id"} {
			if err := st.Delete(context.Background(), id); err != nil {
				t.Errorf("Delete(%q) = %v, want nil", id, err)
			}
		}
	}},

	{"the session carries its expiry; touch extends it and re-seals, never resurrects", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		mustSave(t, st, s, 10*time.Second)
		got := mustLoad(t, st, s.ID)
		if got.ExpiresIn <= 9*time.Second || got.ExpiresIn > 10*time.Second {
			t.Errorf("ExpiresIn = %v, want in (9s, 10s]", got.ExpiresIn)
		}
		if want := h.now().Add(10 * time.Second); got.ExpiresAt.Sub(want).Abs() > time.Second {
			t.Errorf("ExpiresAt = %v, want about %v", got.ExpiresAt, want)
		}
		h.elapse(1100 * time.Millisecond)
		touchedAt := h.now()
		if err := st.Touch(context.Background(), got, time.Hour); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		if ttl := h.ttl(t, sessionKeyOf(h, s.ID)); ttl <= 10*time.Second || ttl > time.Hour {
			t.Errorf("TTL after Touch = %v, want about an hour", ttl)
		}
		again := mustLoad(t, st, s.ID)
		if again.ExpiresIn <= 59*time.Minute || again.ExpiresIn > time.Hour {
			t.Errorf("ExpiresIn after Touch = %v, want about an hour", again.ExpiresIn)
		}
		if again.LastSeen.Sub(touchedAt).Abs() > time.Second || !again.LastSeen.After(s.LastSeen) {
			t.Errorf("LastSeen after Touch = %v, want about %v (saved with %v)", again.LastSeen, touchedAt, s.LastSeen)
		}
		if diff := cmp.Diff(got, again, ignoreExpiresIn); diff != "" {
			t.Errorf("Touch left the caller's session unlike the stored one (-caller +loaded):\n%s", diff)
		}
		if diff := cmp.Diff(s, again, ignoreExpiresIn, cmpopts.IgnoreFields(Session{}, "LastSeen", "ExpiresAt")); diff != "" {
			t.Errorf("Touch changed more than LastSeen and the expiry (-saved +touched):\n%s", diff)
		}

		// A logout's delete wins over a touch that comes after it: no session comes back.
		if err := st.Delete(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
		before := *again
		err := st.Touch(context.Background(), again, time.Hour)
		wantErrIs(t, "Touch of a deleted session", err, ErrNotFound)
		if _, ok := h.rawGet(t, sessionKeyOf(h, s.ID)); ok {
			t.Error("Touch of a deleted session brought it back")
		}
		if diff := cmp.Diff(&before, again); diff != "" {
			t.Errorf("Touch of a deleted session changed the caller's copy:\n%s", diff)
		}
	}},

	{"a session stored without its expiry loads with ExpiresIn 0", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		plain, err := json.Marshal(s) // a blob of the format before ExpiresAt: no "exp"
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(plain, []byte(`"exp"`)) {
			t.Fatalf("a zero ExpiresAt was encoded: %s", plain)
		}
		key := sessionKeyOf(h, s.ID)
		h.rawSet(t, key, mustKeyring(t, keyA).Seal(key, plain))
		if got := mustLoad(t, st, s.ID); got.ExpiresIn != 0 || !got.ExpiresAt.IsZero() {
			t.Errorf("ExpiresIn %v, ExpiresAt %v; want 0 and zero (unknown)", got.ExpiresIn, got.ExpiresAt)
		}
	}},

	{"touch re-seals under the first key: rotation needs no logout and no rewrite by hand", func(t *testing.T, h *harness) {
		underA := h.open(t, Options{Keyring: mustKeyring(t, keyA)})
		s := newSession(t, underA, h.now())
		mustSave(t, underA, s, time.Hour)
		rotated := h.open(t, Options{Keyring: mustKeyring(t, keyB, keyA)})
		if err := rotated.Touch(context.Background(), mustLoad(t, rotated, s.ID), time.Hour); err != nil {
			t.Fatal(err)
		}
		onlyB := h.open(t, Options{Keyring: mustKeyring(t, keyB)})
		if _, err := onlyB.Load(context.Background(), s.ID); err != nil {
			t.Errorf("Load with only B after a touch under [B, A] = %v, want the session", err)
		}
	}},

	{"session expires after its ttl", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		const ttl = time.Second
		mustSave(t, st, s, ttl)
		if got := h.ttl(t, sessionKeyOf(h, s.ID)); got <= 0 || got > ttl {
			t.Errorf("stored TTL = %v, want in (0, %v]", got, ttl)
		}
		mustLoad(t, st, s.ID)
		h.elapse(ttl + 100*time.Millisecond)
		_, err := st.Load(context.Background(), s.ID)
		wantErrIs(t, "Load after the TTL", err, ErrNotFound)
	}},

	{"load rejects ids not of NewID's shape", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		good, _ := st.NewID()
		for _, tc := range []struct{ name, id string }{
			{"empty", ""},
			{"short", "abc"},
			{"one too long", good + "A"},
			{"one too short", good[:42]},
			{"padded", good[:42] + "="},
			{"std alphabet", "+" + good[1:]},
			{"non-canonical spelling", nonCanonical(good)},
			{"spaces", strings.Repeat(" ", 43)},
			{"cookie with attributes", good[:20] + "; Path=/"},
		} {
			_, err := st.Load(context.Background(), tc.id)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Load(%s %q) = %v, want ErrNotFound", tc.name, tc.id, err)
			}
		}
	}},

	{"save rejects what could never be loaded", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		good := newSession(t, st, h.now())
		badID := *good
		badID.ID = "chosen-by-the-client"
		for _, tc := range []struct {
			name string
			s    *Session
			ttl  time.Duration
		}{
			{"nil session", nil, time.Hour},
			{"malformed id", &badID, time.Hour},
			{"zero ttl (would never expire in Redis)", good, 0},
			{"negative ttl", good, -time.Second},
		} {
			err := st.Save(context.Background(), tc.s, tc.ttl)
			if err == nil || errors.Is(err, ErrUnavailable) {
				t.Errorf("Save(%s) = %v, want a usage error", tc.name, err)
			}
		}
		if keys := h.keys(t); len(keys) != 0 {
			t.Errorf("rejected saves wrote keys %v", keys)
		}
	}},

	{"stored session is not shared with callers", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		mustSave(t, st, s, time.Hour) // Save sets s.ExpiresAt
		want := *s
		s.Username = "changed after save"
		loaded := mustLoad(t, st, want.ID)
		loaded.Lineage = "changed after load"
		if diff := cmp.Diff(&want, mustLoad(t, st, want.ID), ignoreExpiresIn); diff != "" {
			t.Errorf("mutating the saved or loaded session changed the store (-saved +now):\n%s", diff)
		}
	}},

	{"no token or cookie id is stored in clear", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		mustSave(t, st, s, time.Hour)
		keys := h.keys(t)
		if len(keys) != 1 {
			t.Fatalf("keys after one Save = %v, want one", keys)
		}
		blob, ok := h.rawGet(t, keys[0])
		if !ok {
			t.Fatalf("raw GET %q: absent", keys[0])
		}
		for name, secret := range map[string]string{
			"csrf token": s.CSRFToken,
			"cookie id":  s.ID,
			"username":   s.Username,
			"lineage":    s.Lineage,
		} {
			if bytes.Contains(blob, []byte(secret)) {
				t.Errorf("the stored blob contains the %s in clear", name)
			}
			if strings.Contains(keys[0], secret) {
				t.Errorf("the key name %q contains the %s", keys[0], name)
			}
		}
	}},

	{"key rotation: old key opens, first key seals, removed key fails", func(t *testing.T, h *harness) {
		underA := h.open(t, Options{Keyring: mustKeyring(t, keyA)})
		s := newSession(t, underA, h.now())
		mustSave(t, underA, s, time.Hour)
		key := sessionKeyOf(h, s.ID)
		sealedKeyID := func() [keyIDSize]byte {
			t.Helper()
			blob, ok := h.rawGet(t, key)
			if !ok || len(blob) < headerSize {
				t.Fatalf("raw blob of %q: %d bytes, present %v", key, len(blob), ok)
			}
			return [keyIDSize]byte(blob[1:headerSize])
		}
		if sealedKeyID() != keyID(keyA) {
			t.Fatal("first save was not sealed under A")
		}

		onlyB := h.open(t, Options{Keyring: mustKeyring(t, keyB)})
		_, err := onlyB.Load(context.Background(), s.ID)
		wantErrIs(t, "Load with only B of a blob sealed under A", err, ErrNotFound, ErrUnreadable)

		rotated := h.open(t, Options{Keyring: mustKeyring(t, keyB, keyA)})
		if diff := cmp.Diff(s, mustLoad(t, rotated, s.ID), ignoreExpiresIn); diff != "" {
			t.Errorf("Load with [B, A] (-saved +loaded):\n%s", diff)
		}
		mustSave(t, rotated, s, time.Hour)
		if sealedKeyID() != keyID(keyB) {
			t.Error("a save with [B, A] was not sealed under B")
		}
		if diff := cmp.Diff(s, mustLoad(t, onlyB, s.ID), ignoreExpiresIn); diff != "" {
			t.Errorf("Load with only B after re-sealing (-saved +loaded):\n%s", diff)
		}
	}},

	{"corrupt blobs are not found and unreadable", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		mustSave(t, st, s, time.Hour)
		key := sessionKeyOf(h, s.ID)
		sealed, _ := h.rawGet(t, key)
		other := newSession(t, st, h.now())
		mustSave(t, st, other, time.Hour)
		otherBlob, _ := h.rawGet(t, sessionKeyOf(h, other.ID))

		for _, tc := range []struct {
			name string
			blob []byte
		}{
			{"empty", []byte{}},
			{"garbage", []byte("not a sealed session at all, just some text")},
			{"plain JSON of an older release", []byte(`{"tid":"t","tok":{"at":"x","rt":"y"}}`)},
			{"truncated", sealed[:len(sealed)/2]},
			{"one bit flipped", flipAt(len(sealed) / 2)(bytes.Clone(sealed))},
			{"another session's blob moved here", otherBlob},
			{"sealed by a foreign keyring", mustKeyring(t, testKey(0xee)).Seal(key, []byte(`{}`))},
			{"sealed right but not JSON", mustKeyring(t, keyA).Seal(key, []byte("\x00not json"))},
		} {
			h.rawSet(t, key, tc.blob)
			got, err := st.Load(context.Background(), s.ID)
			if got != nil {
				t.Errorf("Load(%s) returned a session", tc.name)
			}
			wantErrIs(t, "Load("+tc.name+")", err, ErrNotFound, ErrUnreadable)
		}
	}},

	{"add payment keeps the first of concurrent adds", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		const n = 8
		results := make(chan *Payment, n)
		for i := 0; i < n; i++ {
			go func() {
				p := payment("term-1", "trk-same", h.now())
				p.CheckoutID = fmt.Sprintf("checkout-%d", i)
				got, _, err := st.AddPayment(context.Background(), p)
				if err != nil {
					t.Errorf("AddPayment: %v", err)
				}
				results <- got
			}()
		}
		var checkout string
		for i := 0; i < n; i++ {
			got := <-results
			if got == nil {
				continue
			}
			if checkout == "" {
				checkout = got.CheckoutID
			} else if got.CheckoutID != checkout {
				t.Errorf("concurrent adds answered checkouts %s and %s; all must get the stored one", checkout, got.CheckoutID)
			}
		}
		stored, err := st.PaymentByCheckout(context.Background(), checkout)
		if err != nil || stored.TrackingID != "trk-same" {
			t.Errorf("PaymentByCheckout(%s) = %v, %v; the answered checkout must find the payment", checkout, stored, err)
		}
		if got := trackingIDs(mustList(t, st, "term-1", 0)); len(got) != 1 {
			t.Errorf("list = %v, want the payment once", got)
		}
	}},

	{"an add whose indexing never happened is indexed by the next add of it", func(t *testing.T, h *harness) {
		// The first add stored the record and then lost the store before listing it (its SET NX took,
		// its MULTI did not): what a raw write of the record alone leaves.
		st := h.open(t, Options{})
		p := payment("term-1", "trk-half", h.now())
		record, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		h.rawSet(t, (&store{opts: Options{Prefix: h.prefix}}).paymentKey("term-1", "trk-half"), record)
		if got := trackingIDs(mustList(t, st, "term-1", 0)); len(got) != 0 {
			t.Fatalf("list before = %v, want nothing (the record is not indexed)", got)
		}
		again := p
		again.CheckoutID = "another-checkout"
		got, added, err := st.AddPayment(context.Background(), again)
		if err != nil || added || got.CheckoutID != p.CheckoutID {
			t.Fatalf("AddPayment again = %+v, %v, %v; want the stored payment, not added", got, added, err)
		}
		if got := trackingIDs(mustList(t, st, "term-1", 0)); len(got) != 1 || got[0] != "trk-half" {
			t.Errorf("list after = %v, want [trk-half]: the payment is never listed otherwise", got)
		}
		if found, err := st.PaymentByCheckout(context.Background(), p.CheckoutID); err != nil || found.TrackingID != "trk-half" {
			t.Errorf("PaymentByCheckout(%s) = %v, %v; want the payment: its checkout link finds nothing otherwise", p.CheckoutID, found, err)
		}
	}},

	{"lock: one holder at a time, released only by its token, expires by itself", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		first, err := st.Lock(ctx, "refresh:abc", time.Second)
		if err != nil || first == "" {
			t.Fatalf("Lock = %q, %v; want it taken", first, err)
		}
		if second, err := st.Lock(ctx, "refresh:abc", time.Second); err != nil || second != "" {
			t.Errorf("second Lock = %q, %v; want refused while held", second, err)
		}
		if other, err := st.Lock(ctx, "refresh:other", time.Second); err != nil || other == "" {
			t.Errorf("Lock of another name = %q, %v; want taken", other, err)
		}
		if err := st.Unlock(ctx, "refresh:abc", "not-the-token"); err != nil {
			t.Fatal(err)
		}
		if again, _ := st.Lock(ctx, "refresh:abc", time.Second); again != "" {
			t.Error("Unlock with a wrong token released the lock")
		}
		if err := st.Unlock(ctx, "refresh:abc", first); err != nil {
			t.Fatal(err)
		}
		third, err := st.Lock(ctx, "refresh:abc", time.Second)
		if err != nil || third == "" {
			t.Fatalf("Lock after Unlock = %q, %v; want taken", third, err)
		}
		h.elapse(time.Second + 100*time.Millisecond)
		if fourth, _ := st.Lock(ctx, "refresh:abc", time.Second); fourth == "" {
			t.Error("an expired lock was not free again")
		}
		if err := st.Unlock(ctx, "refresh:abc", third); err != nil { // the expired holder must not free the new one
			t.Fatal(err)
		}
		if fifth, _ := st.Lock(ctx, "refresh:abc", time.Second); fifth != "" {
			t.Error("the expired holder's Unlock released the new holder's lock")
		}
	}},

	{"idempotency key: the first claim binds it; every later one is told that binding", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		claim := func(terminal, key, fp string) (IdempotencyClaim, bool) {
			t.Helper()
			got, first, err := st.ClaimIdempotencyKey(ctx, terminal, key, fp, time.Hour)
			if err != nil {
				t.Fatalf("ClaimIdempotencyKey(%s, %s, %s): %v", terminal, key, fp, err)
			}
			return got, first
		}
		if got, first := claim("term-1", "key-1", "fp-12.50"); !first || got.Fingerprint != "fp-12.50" || got.Attempt == "" {
			t.Errorf("first claim = %+v, %v; want it bound to fp-12.50 by this call, with its mark", got, first)
		}
		if got, first := claim("term-1", "key-1", "fp-99.00"); first || got != (IdempotencyClaim{Fingerprint: "fp-12.50"}) {
			t.Errorf("claim again with fp-99.00 = %+v, %v; want the first binding, not this call's, and no mark", got, first)
		}
		if got, first := claim("term-1", "key-1", "fp-12.50"); first || got.Fingerprint != "fp-12.50" || got.Attempt == "" {
			t.Errorf("claim again with fp-12.50 = %+v, %v; want it joined (not first), with a mark of its own", got, first)
		}
		// Keys are per terminal, and ids are escaped: ("a:b", "c") and ("a", "b:c") are two keys.
		for _, tc := range []struct{ terminal, key string }{{"term-2", "key-1"}, {"a:b", "c"}, {"a", "b:c"}, {"a}", "{b"}} {
			if got, first := claim(tc.terminal, tc.key, "fp-other"); !first || got.Fingerprint != "fp-other" {
				t.Errorf("claim of (%q, %q) = %+v, %v; want a binding of its own", tc.terminal, tc.key, got, first)
			}
		}
		for _, bad := range [][3]string{{"", "k", "fp"}, {"t", "", "fp"}, {"t", "k", ""}} {
			if _, _, err := st.ClaimIdempotencyKey(ctx, bad[0], bad[1], bad[2], time.Hour); err == nil || errors.Is(err, ErrUnavailable) {
				t.Errorf("ClaimIdempotencyKey(%q) = %v, want a plain refusal", bad, err)
			}
		}
		if _, _, err := st.ClaimIdempotencyKey(ctx, "t", "k", "fp", 0); err == nil {
			t.Error("a claim without a ttl (kept forever in Redis) was taken")
		}
	}},

	{"idempotency key: a claim is one key of its terminal, holding only what it was given, for its ttl", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		got, _, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp-1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		name := h.prefix + "idem:{term-1}:key-1"
		raw, ok := h.rawGet(t, name)
		if want := `{"fp":"fp-1","at":"` + got.Attempt + `"}`; !ok || string(raw) != want {
			t.Fatalf("raw claim under %s = %q, %v; want %s: the fingerprint and the attempt's mark only, under the terminal's hash tag", name, raw, ok, want)
		}
		if ttl := h.ttl(t, name); ttl <= 0 || ttl > time.Second {
			t.Errorf("claim ttl %v, want at most the 1s asked for", ttl)
		}
		h.elapse(time.Second + 100*time.Millisecond)
		if got, first, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp-2", time.Hour); err != nil || !first || got.Fingerprint != "fp-2" {
			t.Errorf("claim after the ttl = %+v, %v, %v; want the key free again", got, first, err)
		}
	}},

	{"idempotency key: release frees only an unsettled claim of its fingerprint; settle records the payment", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		claim := func(fp string) (IdempotencyClaim, bool) {
			t.Helper()
			got, first, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", fp, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return got, first
		}
		release := func(fp, attempt string) {
			t.Helper()
			if err := st.ReleaseIdempotencyKey(ctx, "term-1", "key-1", fp, attempt); err != nil {
				t.Fatal(err)
			}
		}
		first, _ := claim("fp-1")
		release("fp-2", first.Attempt) // another request's refusal must not free this one's key
		if got, first := claim("fp-2"); first || got.Fingerprint != "fp-1" {
			t.Fatalf("after another fingerprint's release: %+v, %v; want fp-1 still bound", got, first)
		}
		release("fp-1", first.Attempt)
		second, isFirst := claim("fp-2")
		if !isFirst || second.Fingerprint != "fp-2" {
			t.Fatalf("after its own release: %+v, %v; want the key free for fp-2", second, isFirst)
		}
		if err := st.SettleIdempotencyKey(ctx, "term-1", "key-1", "fp-2", "trk-1", time.Hour); err != nil {
			t.Fatal(err)
		}
		release("fp-2", second.Attempt) // a key that made a payment is never freed
		if got, first := claim("fp-3"); first || got != (IdempotencyClaim{Fingerprint: "fp-2", TrackingID: "trk-1"}) {
			t.Errorf("settled claim = %+v, %v; want fp-2 with trk-1, kept by the release", got, first)
		}
		// Settling under another fingerprint changes nothing.
		if err := st.SettleIdempotencyKey(ctx, "term-1", "key-1", "fp-3", "trk-9", time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, _ := claim("fp-3"); got != (IdempotencyClaim{Fingerprint: "fp-2", TrackingID: "trk-1"}) {
			t.Errorf("after another fingerprint's settle: %+v, want fp-2 with trk-1", got)
		}
		// A claim released or expired meanwhile is made again when the key did make a payment.
		if err := st.SettleIdempotencyKey(ctx, "term-1", "key-2", "fp-4", "trk-2", time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := st.ClaimIdempotencyKey(ctx, "term-1", "key-2", "fp-5", time.Hour); got != (IdempotencyClaim{Fingerprint: "fp-4", TrackingID: "trk-2"}) {
			t.Errorf("settle of a released key left %+v, want it bound to fp-4 and trk-2", got)
		}
		if err := st.SettleIdempotencyKey(ctx, "term-1", "key-2", "fp-4", "", time.Hour); err == nil {
			t.Error("settle without a tracking id was accepted")
		}
	}},

	{"idempotency key: a claim another attempt has joined is not freed by the first attempt's release", func(t *testing.T, h *harness) {
		// Two sends of one request under one key, at once: the first claims, the other joins and goes to
		// Bead, which may make the payment for it and refuse the first. The first's release must not free
		// the key (a reuse with other details would then get that payment recorded with them).
		st := h.open(t, Options{})
		ctx := context.Background()
		first, isFirst, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp-1", time.Hour)
		if err != nil || !isFirst {
			t.Fatalf("first claim: %+v, %v, %v", first, isFirst, err)
		}
		const joiners = 4 // at once: each swap lost to another costs a round, and there are more rounds
		marks := make([]string, joiners)
		var wg sync.WaitGroup
		for i := range joiners {
			wg.Go(func() {
				got, isFirst, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp-1", time.Hour)
				if err != nil || isFirst || got.Fingerprint != "fp-1" {
					t.Errorf("joining claim %d: %+v, %v, %v; want it joined", i, got, isFirst, err)
				}
				marks[i] = got.Attempt
			})
		}
		wg.Wait()
		seen := map[string]bool{first.Attempt: true}
		for i, m := range marks {
			if m == "" || seen[m] {
				t.Errorf("joining claim %d has mark %q; want one of its own", i, m)
			}
			seen[m] = true
		}
		if err := st.ReleaseIdempotencyKey(ctx, "term-1", "key-1", "fp-1", first.Attempt); err != nil {
			t.Fatal(err)
		}
		if got, isFirst, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp-2", time.Hour); err != nil || isFirst || got.Fingerprint != "fp-1" {
			t.Fatalf("after the first attempt's release: %+v, %v, %v; want the key still bound to fp-1", got, isFirst, err)
		}
		// The joined claim settles whichever attempt's mark it holds, and a settled claim marks no one.
		if err := st.SettleIdempotencyKey(ctx, "term-1", "key-1", "fp-1", "trk-1", time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, isFirst, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp-1", time.Hour); err != nil || isFirst ||
			got != (IdempotencyClaim{Fingerprint: "fp-1", TrackingID: "trk-1"}) {
			t.Errorf("after settle: %+v, %v, %v; want fp-1 with trk-1 and no mark", got, isFirst, err)
		}
		if err := st.ReleaseIdempotencyKey(ctx, "term-1", "key-1", "fp-1", ""); err == nil {
			t.Error("a release without an attempt's mark was accepted")
		}
	}},

	{"incidents are found only by the session that met them", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		mine, _ := st.NewID()
		other, _ := st.NewID()
		data := []byte(`{"cause":"token_expired","jwtPrefix":"eyJhbGciOi"}`)
		if err := st.SaveIncident(ctx, mine, "inc-1", data, time.Second); err != nil {
			t.Fatalf("SaveIncident: %v", err)
		}
		got, err := st.LoadIncident(ctx, mine, "inc-1")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("LoadIncident(own) = %q, %v", got, err)
		}
		for _, tc := range []struct{ name, sess, id string }{
			{"another session", other, "inc-1"},
			{"no session", "", "inc-1"},
			{"unknown id", mine, "inc-2"},
			{"malformed id", mine, strings.Repeat("x", 500)},
		} {
			_, err := st.LoadIncident(ctx, tc.sess, tc.id)
			wantErrIs(t, "LoadIncident("+tc.name+")", err, ErrNotFound)
		}
		for _, k := range h.keys(t) {
			if strings.Contains(k, mine) {
				t.Errorf("key %q holds the session id in clear", k)
			}
			if v, ok := h.rawGet(t, k); ok && bytes.Contains(v, []byte("token_expired")) {
				t.Errorf("incident stored unsealed under %q", k)
			}
		}
		h.elapse(time.Second + 100*time.Millisecond)
		_, err = st.LoadIncident(ctx, mine, "inc-1")
		wantErrIs(t, "LoadIncident after its ttl", err, ErrNotFound)
	}},

	{"payment put and get", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		want := payment("term-1", "trk-1", h.now())
		mustPut(t, st, want)
		got, err := st.GetPayment(context.Background(), "term-1", "trk-1")
		if err != nil {
			t.Fatalf("GetPayment: %v", err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("GetPayment (-put +got):\n%s", diff)
		}
		_, err = st.GetPayment(context.Background(), "term-1", "trk-absent")
		wantErrIs(t, "GetPayment(absent)", err, ErrNotFound)
	}},

	{"payment without CreatedAt gets the store's now", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		p := payment("term-1", "trk-1", time.Time{})
		before := h.now()
		mustPut(t, st, p)
		got, err := st.GetPayment(context.Background(), "term-1", "trk-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.Before(before) || got.CreatedAt.After(h.now()) {
			t.Errorf("CreatedAt = %v, want the time of the put (%v)", got.CreatedAt, before)
		}
	}},

	{"put payment requires terminal and tracking ids", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		for _, p := range []Payment{payment("", "trk", h.now()), payment("term", "", h.now())} {
			err := st.PutPayment(context.Background(), p)
			if err == nil || errors.Is(err, ErrUnavailable) {
				t.Errorf("PutPayment(terminal %q, tracking %q) = %v, want a usage error", p.TerminalID, p.TrackingID, err)
			}
		}
	}},

	{"list is newest first and honours limit", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		t0 := h.now()
		// Put out of order: the list orders by CreatedAt, not by arrival.
		mustPut(t, st,
			payment("term-1", "trk-b", t0.Add(-2*time.Minute)),
			payment("term-1", "trk-c", t0.Add(-1*time.Minute)),
			payment("term-1", "trk-a", t0.Add(-3*time.Minute)),
		)
		for _, tc := range []struct {
			limit int
			want  []string
		}{
			{limit: 0, want: []string{"trk-c", "trk-b", "trk-a"}}, // 0: everything kept
			{limit: 10, want: []string{"trk-c", "trk-b", "trk-a"}},
			{limit: 2, want: []string{"trk-c", "trk-b"}},
			{limit: 1, want: []string{"trk-c"}},
		} {
			got := mustList(t, st, "term-1", tc.limit)
			if diff := cmp.Diff(tc.want, trackingIDs(got)); diff != "" {
				t.Errorf("ListPayments(limit %d) (-want +got):\n%s", tc.limit, diff)
			}
		}
		want := []Payment{payment("term-1", "trk-c", t0.Add(-1*time.Minute))}
		if diff := cmp.Diff(want, mustList(t, st, "term-1", 1)); diff != "" {
			t.Errorf("listed payment (-put +listed):\n%s", diff)
		}
	}},

	{"list of a terminal with no payments is empty, not nil", func(t *testing.T, h *harness) {
		got := mustList(t, h.open(t, Options{}), "term-none", 10)
		if got == nil || len(got) != 0 {
			t.Errorf("ListPayments = %#v, want an empty non-nil slice (JSON [])", got)
		}
	}},

	{"upsert replaces the record and keeps its first place", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		t0 := h.now()
		first := payment("term-1", "trk-a", t0.Add(-3*time.Minute))
		mustPut(t, st, first,
			payment("term-1", "trk-b", t0.Add(-2*time.Minute)),
			payment("term-1", "trk-c", t0.Add(-1*time.Minute)),
		)
		updated := first
		updated.StatusCode = "completed"
		updated.UpdatedAt = t0
		updated.CreatedAt = t0 // even a later CreatedAt must not move it up the list
		mustPut(t, st, updated)

		got := mustList(t, st, "term-1", 0)
		if diff := cmp.Diff([]string{"trk-c", "trk-b", "trk-a"}, trackingIDs(got)); diff != "" {
			t.Errorf("order after upsert (-want +got):\n%s", diff)
		}
		if len(got) == 3 && got[2].StatusCode != "completed" {
			t.Errorf("listed status after upsert = %q, want completed", got[2].StatusCode)
		}
		rec, err := st.GetPayment(context.Background(), "term-1", "trk-a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&updated, rec); diff != "" {
			t.Errorf("GetPayment after upsert (-updated +got):\n%s", diff)
		}
	}},

	{"payments created at the same instant list in one stable order", func(t *testing.T, h *harness) {
		// Redis orders equal scores by member, descending; the memory store must agree.
		st := h.open(t, Options{})
		t0 := h.now()
		mustPut(t, st, payment("term-1", "trk-b", t0), payment("term-1", "trk-c", t0), payment("term-1", "trk-a", t0))
		if diff := cmp.Diff([]string{"trk-c", "trk-b", "trk-a"}, trackingIDs(mustList(t, st, "term-1", 0))); diff != "" {
			t.Errorf("order of equal CreatedAt (-want +got):\n%s", diff)
		}
	}},

	{"list keeps at most MaxPayments; dropped records stay readable", func(t *testing.T, h *harness) {
		st := h.open(t, Options{MaxPayments: 3})
		t0 := h.now()
		for i := range 5 {
			mustPut(t, st, payment("term-1", fmt.Sprintf("trk-%d", i), t0.Add(time.Duration(i-10)*time.Minute)))
		}
		if diff := cmp.Diff([]string{"trk-4", "trk-3", "trk-2"}, trackingIDs(mustList(t, st, "term-1", 0))); diff != "" {
			t.Errorf("list (-want +got):\n%s", diff)
		}
		if _, err := st.GetPayment(context.Background(), "term-1", "trk-0"); err != nil {
			t.Errorf("GetPayment of a payment trimmed from the list: %v", err)
		}
		// Trimmed means gone from the stored list, not only cut at read time: a store allowing more
		// still sees three.
		roomier := h.open(t, Options{MaxPayments: 10})
		if got := trackingIDs(mustList(t, roomier, "term-1", 0)); len(got) != 3 {
			t.Errorf("stored list holds %v, want the 3 newest only", got)
		}
	}},

	{"checkout id finds its payment", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		p := payment("term-1", "trk-1", h.now())
		mustPut(t, st, p)
		got, err := st.PaymentByCheckout(context.Background(), p.CheckoutID)
		if err != nil {
			t.Fatalf("PaymentByCheckout: %v", err)
		}
		if diff := cmp.Diff(&p, got); diff != "" {
			t.Errorf("PaymentByCheckout (-put +got):\n%s", diff)
		}
		for _, id := range []string{"co-unknown", ""} {
			_, err := st.PaymentByCheckout(context.Background(), id)
			wantErrIs(t, fmt.Sprintf("PaymentByCheckout(%q)", id), err, ErrNotFound)
		}
	}},

	{"a replaced checkout id no longer finds the payment", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		p := payment("term-1", "trk-1", h.now())
		mustPut(t, st, p)
		oldCheckout := p.CheckoutID
		p.CheckoutID = "co-new"
		mustPut(t, st, p)
		_, err := st.PaymentByCheckout(context.Background(), oldCheckout)
		wantErrIs(t, "PaymentByCheckout(old id)", err, ErrNotFound)
		if got, err := st.PaymentByCheckout(context.Background(), "co-new"); err != nil || got.TrackingID != "trk-1" {
			t.Errorf("PaymentByCheckout(new id) = %+v, %v", got, err)
		}
	}},

	{"terminals are isolated", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		t0 := h.now()
		mine := payment("term-1", "trk-shared", t0)
		theirs := payment("term-2", "trk-shared", t0)
		theirs.Amount = "999.00"
		mustPut(t, st, mine, theirs, payment("term-2", "trk-only-2", t0))
		// Regression guard: ":" in ids must not let (a:b, c) and (a, b:c) share a key.
		mustPut(t, st, payment("a:b", "c", t0), payment("a", "b:c", t0))

		got, err := st.GetPayment(context.Background(), "term-1", "trk-shared")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&mine, got); diff != "" {
			t.Errorf("term-1's payment (-want +got):\n%s", diff)
		}
		_, err = st.GetPayment(context.Background(), "term-1", "trk-only-2")
		wantErrIs(t, "term-1 reading term-2's payment", err, ErrNotFound)
		if diff := cmp.Diff([]string{"trk-shared"}, trackingIDs(mustList(t, st, "term-1", 0))); diff != "" {
			t.Errorf("term-1's list (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"trk-shared", "trk-only-2"}, trackingIDs(mustList(t, st, "term-2", 0))); diff != "" {
			t.Errorf("term-2's list (-want +got):\n%s", diff)
		}
		for _, tc := range []struct{ terminal, tracking string }{{"a:b", "c"}, {"a", "b:c"}} {
			got, err := st.GetPayment(context.Background(), tc.terminal, tc.tracking)
			if err != nil || got.TerminalID != tc.terminal || got.TrackingID != tc.tracking {
				t.Errorf("GetPayment(%q, %q) = %+v, %v", tc.terminal, tc.tracking, got, err)
			}
		}
	}},

	{"payments expire after PaymentTTL", func(t *testing.T, h *harness) {
		const ttl = time.Second
		st := h.open(t, Options{PaymentTTL: ttl})
		p := payment("term-1", "trk-1", h.now())
		mustPut(t, st, p)
		for _, key := range []string{
			(&store{opts: Options{Prefix: h.prefix}}).paymentKey("term-1", "trk-1"),
			(&store{opts: Options{Prefix: h.prefix}}).listKey("term-1"),
			(&store{opts: Options{Prefix: h.prefix}}).checkoutKey(p.CheckoutID),
		} {
			if got := h.ttl(t, key); got <= 0 || got > ttl {
				t.Errorf("TTL of %q = %v, want in (0, %v]", key, got, ttl)
			}
		}
		h.elapse(ttl + 100*time.Millisecond)
		_, err := st.GetPayment(context.Background(), "term-1", "trk-1")
		wantErrIs(t, "GetPayment after PaymentTTL", err, ErrNotFound)
		_, err = st.PaymentByCheckout(context.Background(), p.CheckoutID)
		wantErrIs(t, "PaymentByCheckout after PaymentTTL", err, ErrNotFound)
		if got := mustList(t, st, "term-1", 0); len(got) != 0 {
			t.Errorf("ListPayments after PaymentTTL = %v, want none", trackingIDs(got))
		}
	}},

	{"a cancelled context fails every call as unavailable", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := map[string]error{
			"Ping":              st.Ping(ctx),
			"Save":              st.Save(ctx, s, time.Hour),
			"Delete":            st.Delete(ctx, s.ID),
			"PutPayment":        st.PutPayment(ctx, payment("term-1", "trk-1", h.now())),
			"Load":              second(st.Load(ctx, s.ID)),
			"GetPayment":        second(st.GetPayment(ctx, "term-1", "trk-1")),
			"ListPayments":      second(st.ListPayments(ctx, "term-1", 0)),
			"PaymentByCheckout": second(st.PaymentByCheckout(ctx, "co-1")),
			"ClaimIdempotencyKey": func() error {
				_, _, err := st.ClaimIdempotencyKey(ctx, "term-1", "key-1", "fp", time.Hour)
				return err
			}(),
			"SettleIdempotencyKey":  st.SettleIdempotencyKey(ctx, "term-1", "key-1", "fp", "trk-1", time.Hour),
			"ReleaseIdempotencyKey": st.ReleaseIdempotencyKey(ctx, "term-1", "key-1", "fp", "attempt-1"),
		}
		for name, err := range calls {
			wantErrIs(t, name, err, ErrUnavailable, context.Canceled)
		}
	}},

	{"a closed store fails every call as unavailable", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		s := newSession(t, st, h.now())
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		ctx := context.Background()
		for name, err := range map[string]error{
			"Ping":         st.Ping(ctx),
			"Save":         st.Save(ctx, s, time.Hour),
			"Load":         second(st.Load(ctx, s.ID)),
			"ListPayments": second(st.ListPayments(ctx, "term-1", 0)),
		} {
			wantErrIs(t, name+" after Close", err, ErrUnavailable)
		}
	}},

	{"concurrent use", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		const workers, rounds = 8, 20
		sessions := make([]*Session, workers*rounds) // made here: t.Fatal must not run in a goroutine
		for i := range sessions {
			sessions[i] = newSession(t, st, h.now())
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := range rounds {
					s := sessions[w*rounds+i]
					if err := st.Save(context.Background(), s, time.Hour); err != nil {
						errs <- err
						return
					}
					if _, err := st.Load(context.Background(), s.ID); err != nil {
						errs <- err
						return
					}
					p := payment("term-1", fmt.Sprintf("trk-%d-%d", w, i), h.now())
					if err := st.PutPayment(context.Background(), p); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := len(mustList(t, st, "term-1", 0)); got != workers*rounds {
			t.Errorf("listed %d payments after %d concurrent puts, want all", got, workers*rounds)
		}
	}},
}

// nonCanonical spells id's bytes another way: the 43rd character carries 4 data bits and 2 spare bits
// that must be zero; setting a spare bit gives a string that lax decoders map to the same bytes.
func nonCanonical(id string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, id[len(id)-1])
	return id[:len(id)-1] + string(alphabet[last|1])
}

func second[T any](_ T, err error) error { return err }
