package session

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// NewMemory returns a process-local store, for demo mode and unit tests. It seals and behaves exactly as
// the Redis store does (same code above a different backend), but its data ends with the process and is
// not shared between replicas. A nil Keyring is replaced by a freshly generated one: nothing outlives the
// process, so nothing needs a configured key.
func NewMemory(opts Options) (Store, error) {
	s, err := newMemory(opts, nil)
	if err != nil {
		return nil, err // not s: a nil *store in a Store interface is not == nil
	}
	return s, nil
}

// newMemory builds a memory store over be, or over a new backend when be is nil. Tests pass one backend
// to several stores to reopen "the same data" with other options, as a restart with new keys would.
func newMemory(opts Options, be *memoryBackend) (*store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if be == nil {
		be = newMemoryBackend(opts.Now)
	}
	if opts.Keyring == nil {
		key, err := GenerateKey()
		if err != nil {
			return nil, err
		}
		if opts.Keyring, err = NewKeyring(key); err != nil {
			return nil, err
		}
	}
	return newStore(be, opts)
}

// memoryBackend keeps values and sorted sets in maps under one mutex. Expired entries are invisible at
// once and are removed when touched, plus a sweep every sweepEvery writes so that abandoned sessions do
// not pile up in a long-running demo.
type memoryBackend struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*memoryEntry
	writes  int
	closed  bool
}

type memoryEntry struct {
	value   []byte             // a string value; nil for a sorted set
	members map[string]float64 // a sorted set; nil for a string value
	expires time.Time          // zero: no expiry
}

const sweepEvery = 1024

// errWrongType mirrors Redis's WRONGTYPE: the store never mixes kinds under one key, so it means a bug.
var errWrongType = errors.New("memory: key holds the wrong kind of value")

func newMemoryBackend(now func() time.Time) *memoryBackend {
	return &memoryBackend{now: now, entries: make(map[string]*memoryEntry)}
}

// begin takes the lock after checking the call may go on; the caller must unlock.
func (m *memoryBackend) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	return nil
}

// live returns the unexpired entry under key, removing an expired one. The lock must be held.
func (m *memoryBackend) live(key string) *memoryEntry {
	e, ok := m.entries[key]
	if !ok {
		return nil
	}
	if !e.expires.IsZero() && !m.now().Before(e.expires) {
		delete(m.entries, key)
		return nil
	}
	return e
}

// wrote counts a write and sweeps now and then. The lock must be held.
func (m *memoryBackend) wrote() {
	m.writes++
	if m.writes%sweepEvery != 0 {
		return
	}
	for key := range m.entries {
		m.live(key)
	}
}

func (m *memoryBackend) ping(ctx context.Context) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

func (m *memoryBackend) get(ctx context.Context, key string) ([]byte, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e := m.live(key)
	switch {
	case e == nil:
		return nil, ErrNotFound
	case e.members != nil:
		return nil, errWrongType
	}
	return bytes.Clone(e.value), nil // the caller may scribble on it
}

func (m *memoryBackend) setXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if m.live(key) == nil {
		return false, nil
	}
	m.setLocked(key, value, ttl) // like SET XX, whatever the key held
	return true, nil
}

func (m *memoryBackend) setNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if m.live(key) != nil {
		return false, nil
	}
	m.setLocked(key, value, ttl)
	return true, nil
}

// ifHolds runs act, under the lock, only if key holds exactly value, and says whether it did: the
// compare-and-act family (delIfEquals, swap, extendIfEquals), as Redis runs them in one script.
func (m *memoryBackend) ifHolds(ctx context.Context, key string, value []byte, act func(*memoryEntry)) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	e := m.live(key)
	if e == nil || e.members != nil || !bytes.Equal(e.value, value) {
		return false, nil
	}
	act(e)
	return true, nil
}

func (m *memoryBackend) delIfEquals(ctx context.Context, key string, value []byte, also ...string) error {
	_, err := m.ifHolds(ctx, key, value, func(*memoryEntry) {
		delete(m.entries, key)
		for _, k := range also {
			delete(m.entries, k)
		}
	})
	return err
}

func (m *memoryBackend) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	values := make([][]byte, len(keys))
	for i, key := range keys {
		if e := m.live(key); e != nil && e.members == nil {
			values[i] = bytes.Clone(e.value)
		}
	}
	return values, nil
}

func (m *memoryBackend) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.setLocked(key, value, ttl)
	return nil
}

func (m *memoryBackend) setLocked(key string, value []byte, ttl time.Duration) {
	if value == nil {
		value = []byte{} // nil marks a sorted set
	}
	m.entries[key] = &memoryEntry{value: bytes.Clone(value), expires: m.now().Add(ttl)}
	m.wrote()
}

func (m *memoryBackend) del(ctx context.Context, key string) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

func (m *memoryBackend) newest(ctx context.Context, key string, n int) ([]string, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e := m.live(key)
	if e == nil {
		return nil, nil
	}
	if e.members == nil {
		return nil, errWrongType
	}
	ranked := rankHighestFirst(e.members)
	return ranked[:min(n, len(ranked))], nil
}

// rankHighestFirst orders members as ZREVRANGE does: by score, then by member, both descending.
func rankHighestFirst(members map[string]float64) []string {
	ranked := make([]string, 0, len(members))
	for member := range members {
		ranked = append(ranked, member)
	}
	slices.SortFunc(ranked, func(a, b string) int {
		if c := cmp.Compare(members[b], members[a]); c != 0 {
			return c
		}
		return strings.Compare(b, a)
	})
	return ranked
}

func (m *memoryBackend) atomically(ctx context.Context, fn func(batch)) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	b := &memoryBatch{m: m}
	fn(b)
	return b.err
}

func (m *memoryBackend) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.entries = nil
	return nil
}

// memoryBatch applies each write at once: atomically holds the lock for the whole batch, so no reader
// sees half of it.
type memoryBatch struct {
	m   *memoryBackend
	err error // the first failure; like EXEC, the other writes still apply
}

func (b *memoryBatch) set(key string, value []byte, ttl time.Duration) {
	b.m.setLocked(key, value, ttl)
}

// sortedSet returns the live sorted set under key, creating it (with no expiry) if create is set.
func (b *memoryBatch) sortedSet(key string, create bool) *memoryEntry {
	e := b.m.live(key)
	switch {
	case e == nil && create:
		e = &memoryEntry{members: make(map[string]float64)}
		b.m.entries[key] = e
	case e != nil && e.members == nil:
		if b.err == nil {
			b.err = fmt.Errorf("%q: %w", key, errWrongType)
		}
		return nil
	}
	return e
}

func (b *memoryBatch) addIfAbsent(key string, score float64, member string) {
	e := b.sortedSet(key, true)
	if e == nil {
		return
	}
	if _, ok := e.members[member]; !ok {
		e.members[member] = score
	}
	b.m.wrote()
}

func (b *memoryBatch) keepHighest(key string, n int) {
	e := b.sortedSet(key, false)
	if e == nil || len(e.members) <= n {
		return
	}
	for _, member := range rankHighestFirst(e.members)[n:] {
		delete(e.members, member)
	}
	b.m.dropIfEmpty(key, e)
}

func (b *memoryBatch) dropScoredBelow(key string, floor float64) {
	e := b.sortedSet(key, false)
	if e == nil {
		return
	}
	for member, score := range e.members {
		if score < floor {
			delete(e.members, member)
		}
	}
	b.m.dropIfEmpty(key, e)
}

// dropIfEmpty removes an emptied sorted set, as Redis does.
func (m *memoryBackend) dropIfEmpty(key string, e *memoryEntry) {
	if len(e.members) == 0 {
		delete(m.entries, key)
	}
}

func (b *memoryBatch) expire(key string, ttl time.Duration) {
	if e := b.m.live(key); e != nil {
		e.expires = b.m.now().Add(ttl)
	}
}

func (b *memoryBatch) put(key string, score float64, member string) {
	if e := b.sortedSet(key, true); e != nil {
		e.members[member] = score
		b.m.wrote()
	}
}

func (b *memoryBatch) extendExpiry(key string, ttl time.Duration) {
	if e := b.m.live(key); e != nil {
		if at := b.m.now().Add(ttl); e.expires.IsZero() || at.After(e.expires) {
			e.expires = at
		}
	}
}

func (m *memoryBackend) swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	return m.ifHolds(ctx, key, old, func(*memoryEntry) { m.setLocked(key, value, ttl) })
}

func (m *memoryBackend) extendIfEquals(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return m.ifHolds(ctx, key, value, func(e *memoryEntry) { e.expires = m.now().Add(ttl) })
}

func (m *memoryBackend) release(ctx context.Context, set, member string, floor float64, key string) ([]byte, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	b := &memoryBatch{m: m}
	if e := b.sortedSet(set, false); e != nil {
		delete(e.members, member)
		m.dropIfEmpty(set, e)
	}
	b.dropScoredBelow(set, floor)
	if b.err != nil {
		return nil, b.err
	}
	if m.live(set) != nil {
		return nil, nil
	}
	e := m.live(key)
	if e == nil || e.members != nil {
		return nil, nil
	}
	delete(m.entries, key)
	return e.value, nil
}
