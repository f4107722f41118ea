package session

import (
	"context"
	"time"
)

// backend is the seam between the one Store implementation (store, in kvstore.go) and where the bytes
// live. It speaks in keys, byte values and sorted sets, never in sessions or payments, so the Redis and
// memory stores cannot drift apart in what they mean: only in how they keep bytes. Absence is reported as
// ErrNotFound; every other error is a failure of the backend, which store wraps with ErrUnavailable.
type backend interface {
	ping(ctx context.Context) error
	// get returns the value of key, or ErrNotFound.
	get(ctx context.Context, key string) ([]byte, error)
	// getMany returns one value per key, nil where the key is absent.
	getMany(ctx context.Context, keys []string) ([][]byte, error)
	// set stores value under key for ttl (> 0), replacing what was there.
	set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// setXX stores value under key for ttl only if key is present, and says whether it did (a session
	// touched while a logout deletes it must stay deleted).
	setXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// setNX stores value under key for ttl only if key is absent, and says whether it did.
	setNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// delIfEquals removes key, and the keys also, only if key holds value (a lock's owner releasing it,
	// never another's; a dead token dropped with its holders, never a newer one).
	delIfEquals(ctx context.Context, key string, value []byte, also ...string) error
	// swap stores value under key for ttl only if key holds exactly old, and says whether it did.
	swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error)
	// extendIfEquals sets key's time to live to ttl only if key holds value, and says whether it did.
	extendIfEquals(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// release removes member from the sorted set set, and the members scored below floor. If none is
	// left, it deletes key too and returns the value key held (nil if none); otherwise it returns nil.
	release(ctx context.Context, set, member string, floor float64, key string) ([]byte, error)
	// del removes key; an absent key is not an error.
	del(ctx context.Context, key string) error
	// newest returns up to n members of the sorted set key, highest score first (ties: the greater member
	// first, as Redis's ZREVRANGE orders them).
	newest(ctx context.Context, key string, n int) ([]string, error)
	// atomically applies the writes fn records as one unit: MULTI/EXEC in Redis, one lock in memory.
	atomically(ctx context.Context, fn func(batch)) error
	close() error
}

// batch records writes for backend.atomically. Its methods cannot fail on their own: the batch's outcome
// is atomically's error.
type batch interface {
	set(key string, value []byte, ttl time.Duration)
	// addIfAbsent adds member to the sorted set key with score, unless it is already there (ZADD NX), so
	// a re-put keeps its first position.
	addIfAbsent(key string, score float64, member string)
	// put adds member to the sorted set key with score, or moves it to score (ZADD).
	put(key string, score float64, member string)
	// keepHighest trims the sorted set key to its n highest-scored members.
	keepHighest(key string, n int)
	// dropScoredBelow removes the members of the sorted set key whose score is below floor.
	dropScoredBelow(key string, floor float64)
	// expire sets key's time to live, if the key exists.
	expire(key string, ttl time.Duration)
	// extendExpiry sets key's time to live to ttl if the key exists and would otherwise expire sooner
	// (or has no time to live yet).
	extendExpiry(key string, ttl time.Duration)
}
