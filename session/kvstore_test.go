package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// refusingBackend fails every call and counts them, to prove which calls reach the backend at all.
type refusingBackend struct{ calls int }

var errRefused = errors.New("backend refused")

func (b *refusingBackend) ping(context.Context) error { b.calls++; return errRefused }
func (b *refusingBackend) get(context.Context, string) ([]byte, error) {
	b.calls++
	return nil, errRefused
}
func (b *refusingBackend) setXX(context.Context, string, []byte, time.Duration) (bool, error) {
	b.calls++
	return false, errRefused
}
func (b *refusingBackend) setNX(context.Context, string, []byte, time.Duration) (bool, error) {
	b.calls++
	return false, errRefused
}
func (b *refusingBackend) delIfEquals(context.Context, string, []byte, ...string) error {
	b.calls++
	return errRefused
}
func (b *refusingBackend) getMany(context.Context, []string) ([][]byte, error) {
	b.calls++
	return nil, errRefused
}
func (b *refusingBackend) set(context.Context, string, []byte, time.Duration) error {
	b.calls++
	return errRefused
}
func (b *refusingBackend) del(context.Context, string) error { b.calls++; return errRefused }
func (b *refusingBackend) newest(context.Context, string, int) ([]string, error) {
	b.calls++
	return nil, errRefused
}
func (b *refusingBackend) atomically(context.Context, func(batch)) error {
	b.calls++
	return errRefused
}
func (b *refusingBackend) swap(context.Context, string, []byte, []byte, time.Duration) (bool, error) {
	b.calls++
	return false, errRefused
}
func (b *refusingBackend) extendIfEquals(context.Context, string, []byte, time.Duration) (bool, error) {
	b.calls++
	return false, errRefused
}
func (b *refusingBackend) release(context.Context, string, string, float64, string) ([]byte, error) {
	b.calls++
	return nil, errRefused
}
func (b *refusingBackend) close() error { return nil }

func TestMalformedIDsNeverReachTheBackend(t *testing.T) {
	be := &refusingBackend{}
	st, err := newStore(be, mustDefaults(t, Options{Keyring: mustKeyring(t, keyA)}))
	if err != nil {
		t.Fatal(err)
	}
	malformed := []string{
		"", "x", strings.Repeat("A", 42), strings.Repeat("A", 44), strings.Repeat("!", 43),
		nonCanonical(strings.Repeat("A", 43)), // decodes leniently to 32 zero bytes
	}
	for _, id := range malformed {
		_, err := st.Load(context.Background(), id)
		wantErrIs(t, "Load("+id+")", err, ErrNotFound)
		if err := st.Delete(context.Background(), id); err != nil {
			t.Errorf("Delete(%q) = %v", id, err)
		}
	}
	if be.calls != 0 {
		t.Errorf("malformed ids made %d backend calls, want 0", be.calls)
	}

	// The same store does reach the backend for a well-formed id, so the count above means something.
	good, _ := st.NewID()
	_, err = st.Load(context.Background(), good)
	wantErrIs(t, "Load(well-formed) on a refusing backend", err, ErrUnavailable, errRefused)
	if be.calls != 1 {
		t.Errorf("a well-formed id made %d backend calls, want 1", be.calls)
	}
}

func mustDefaults(t *testing.T, o Options) Options {
	t.Helper()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOptionsDefaults(t *testing.T) {
	got := mustDefaults(t, Options{})
	if got.Now == nil {
		t.Fatal("Now not defaulted")
	}
	got.Now = nil
	want := Options{Prefix: "beadbff:", PaymentTTL: 30 * 24 * time.Hour, MaxPayments: 500, CallTimeout: 500 * time.Millisecond}
	if diff := cmp.Diff(want, got, ignoreExpiresIn); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestOptionsRejectNegatives(t *testing.T) {
	_, err := Options{PaymentTTL: -1, MaxPayments: -1, CallTimeout: -1}.withDefaults()
	if err == nil {
		t.Fatal("negative options accepted")
	}
	for _, field := range []string{"PaymentTTL", "MaxPayments", "CallTimeout"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s (every problem at once)", err, field)
		}
	}
	if _, err := NewMemory(Options{MaxPayments: -1}); err == nil {
		t.Error("NewMemory accepted a negative MaxPayments")
	}
}

func TestNewMemoryWithoutKeyringStillSeals(t *testing.T) {
	st, err := NewMemory(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*store)
	if s.keys == nil {
		t.Fatal("no keyring generated")
	}
	sess := &Session{CSRFToken: "secret-csrf"}
	sess.ID, _ = st.NewID()
	if err := st.Save(context.Background(), sess, time.Minute); err != nil {
		t.Fatal(err)
	}
	blob, err := s.be.get(context.Background(), s.sessionKey(sess.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.keys.Open(s.sessionKey(sess.ID), blob); err != nil {
		t.Errorf("stored blob does not open with the generated keyring: %v", err)
	}
	if strings.Contains(string(blob), "secret-access") {
		t.Error("memory store kept the access token in clear")
	}
}

func TestMemorySweepsExpiredEntries(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	be := newMemoryBackend(clock.Now)
	ctx := context.Background()
	for i := range 100 {
		_ = be.set(ctx, "abandoned:"+string(rune('a'+i%26))+strings.Repeat("x", i), []byte("v"), time.Minute)
	}
	clock.Advance(time.Hour)
	for range sweepEvery {
		_ = be.set(ctx, "live", []byte("v"), time.Hour)
	}
	be.mu.Lock()
	n := len(be.entries)
	be.mu.Unlock()
	if n != 1 {
		t.Errorf("%d entries after a sweep, want only the live one", n)
	}
}

func TestNilStoreIsNilInterface(t *testing.T) {
	// Regression guard: returning a nil *store as Store makes `st != nil` true after an error.
	st, err := NewMemory(Options{CallTimeout: -1})
	if err == nil || st != nil {
		t.Errorf("NewMemory(bad) = %v, %v; want a nil Store and an error", st, err)
	}
}

func TestMemoryBackendCopiesInAndOut(t *testing.T) {
	be := newMemoryBackend(time.Now)
	ctx := context.Background()
	in := []byte("original")
	if err := be.set(ctx, "k", in, time.Minute); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X' // the caller reuses its buffer
	out, err := be.get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	out[1] = 'Y' // the caller scribbles on what it got
	many, err := be.getMany(ctx, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	many[0][2] = 'Z'
	again, err := be.get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != "original" {
		t.Errorf("stored value = %q after callers changed their copies, want %q", again, "original")
	}
}
