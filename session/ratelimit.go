package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Attempt limiting: login throttling shared by every process on the store.
//
// An attempt holds one of limit slots, each a key of its own taken with SET NX for the window. That makes
// the limit exact across processes without a counter command (the backend has none): two processes can
// never both take the last slot, a slot frees itself when its window has passed, and an attempt that turns
// out not to count (a correct password, Bead unreachable) gives its slot back with ReturnAttempt. A slot's
// value carries its expiry, so one MGET tells both which slots are free and, when none is, how long until
// the first one frees (Retry-After).

// MaxAttemptSlots bounds limit in TakeAttempt: every slot is one key and one MGET argument.
const MaxAttemptSlots = 1000

// ErrNoSlotClaimed: the ticket given to ReturnAttempt was not issued by TakeAttempt.
var ErrNoSlotClaimed = errors.New("session: not an attempt ticket")

// attemptSlotKey names a slot of name (slot is its number, as a ticket carries it). The name sits in a
// Cluster hash tag so that the MGET over its slots stays legal on a Redis Cluster.
func (s *store) attemptSlotKey(name, slot string) string {
	return s.opts.Prefix + "rl:{" + url.QueryEscape(name) + "}:" + slot
}

// attemptSlotKeys names the slots of name.
func (s *store) attemptSlotKeys(name string, limit int) []string {
	keys := make([]string, limit)
	for i := range keys {
		keys[i] = s.attemptSlotKey(name, strconv.Itoa(i))
	}
	return keys
}

// TakeAttempt claims one of limit attempt slots of name for window. It returns a ticket for ReturnAttempt
// when it did, or, when every slot is held, no ticket and how long until the first one frees (always
// positive).
func (s *store) TakeAttempt(ctx context.Context, name string, limit int, window time.Duration) (ticket string, retryAfter time.Duration, err error) {
	switch {
	case name == "":
		return "", 0, errors.New("session: take attempt: empty name")
	case limit < 1 || limit > MaxAttemptSlots:
		return "", 0, fmt.Errorf("session: take attempt: limit %d out of 1..%d", limit, MaxAttemptSlots)
	case window <= 0:
		return "", 0, fmt.Errorf("session: take attempt: window %v is not positive", window)
	}
	var nonce [12]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails on supported platforms
	ctx, cancel, err := s.call(ctx, "take attempt")
	defer cancel()
	if err != nil {
		return "", 0, err
	}
	keys := s.attemptSlotKeys(name, limit)
	// A slot can be taken by another process between the MGET and our SET NX; then look again. Three
	// rounds lost in a row means a burst on the same name: refuse this one rather than spin.
	for range 3 {
		values, err := s.be.getMany(ctx, keys)
		if err != nil {
			return "", 0, unavailable("take attempt", err)
		}
		now := s.opts.Now()
		free := -1
		var soonest time.Time
		for i, v := range values {
			if v == nil {
				free = i
				break
			}
			if exp := slotExpiry(v, now.Add(window)); soonest.IsZero() || exp.Before(soonest) {
				soonest = exp
			}
		}
		if free < 0 {
			return "", max(soonest.Sub(now), time.Millisecond), nil
		}
		value := strconv.FormatInt(now.Add(window).UnixMicro(), 10) + ":" + base64.RawURLEncoding.EncodeToString(nonce[:])
		ok, err := s.be.setNX(ctx, keys[free], []byte(value), window)
		if err != nil {
			return "", 0, unavailable("take attempt", err)
		}
		if ok {
			return strconv.Itoa(free) + "/" + value, 0, nil
		}
	}
	return "", time.Second, nil
}

// ReturnAttempt gives back the slot a ticket of TakeAttempt holds, if it still does: an attempt that does
// not count against the limit. A slot that expired (and was perhaps taken again) is left alone.
func (s *store) ReturnAttempt(ctx context.Context, name, ticket string) error {
	slot, value, ok := strings.Cut(ticket, "/")
	i, err := strconv.Atoi(slot)
	if !ok || err != nil || i < 0 || i >= MaxAttemptSlots || value == "" {
		return ErrNoSlotClaimed
	}
	ctx, cancel, err := s.call(ctx, "return attempt")
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.delIfEquals(ctx, s.attemptSlotKey(name, slot), []byte(value)); err != nil {
		return unavailable("return attempt", err)
	}
	return nil
}

// slotExpiry reads the expiry a slot's value carries; a value it cannot read (written by hand, or by
// another version) counts as held for a whole window from now, the cautious reading.
func slotExpiry(v []byte, fallback time.Time) time.Time {
	micros, _, _ := strings.Cut(string(v), ":")
	n, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return fallback
	}
	return time.UnixMicro(n)
}
