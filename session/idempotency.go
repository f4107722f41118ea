package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Idempotency keys. Bead answers a repeated Idempotency-Key with the payment it made first, whatever the
// body, so a key sent again with other details after a lost answer (nothing recorded here yet) would get
// that payment recorded with the new details. A claim binds a key to the first request's details before
// Bead is asked: it holds a fingerprint of them (a hash the web server makes: never the details), and,
// once the key has made a payment, that payment's tracking id. A claim is one key, SET NX, with the
// terminal in its Redis Cluster hash tag like the terminal's other keys.

// IdempotencyClaim is what an idempotency key of a terminal is bound to.
type IdempotencyClaim struct {
	Fingerprint string `json:"fp"`
	TrackingID  string `json:"trk,omitempty"` // the payment the key made, once known ("" until then)
}

func (s *store) idempotencyKey(terminalID, key string) string {
	return s.opts.Prefix + "idem:{" + url.QueryEscape(terminalID) + "}:" + url.QueryEscape(key)
}

// claimValue is a claim as stored. Two strings always encode, so it has no error to return.
func claimValue(fingerprint, trackingID string) []byte {
	b, _ := json.Marshal(IdempotencyClaim{Fingerprint: fingerprint, TrackingID: trackingID})
	return b
}

func validClaim(terminalID, key, fingerprint string, ttl time.Duration) error {
	if terminalID == "" || key == "" || fingerprint == "" {
		return errors.New("terminal id, key and fingerprint are required")
	}
	if ttl <= 0 {
		return fmt.Errorf("ttl %v is not positive", ttl)
	}
	return nil
}

// ClaimIdempotencyKey binds key (of terminalID) to fingerprint for ttl, unless it is bound already.
// first is true when this call bound it; otherwise stored is the earlier binding, whose fingerprint may
// be another. A claim that cannot be decoded is returned with an empty fingerprint: it matches nothing.
func (s *store) ClaimIdempotencyKey(ctx context.Context, terminalID, key, fingerprint string, ttl time.Duration) (IdempotencyClaim, bool, error) {
	const op = "claim idempotency key"
	if err := validClaim(terminalID, key, fingerprint, ttl); err != nil {
		return IdempotencyClaim{}, false, fmt.Errorf("session: %s: %w", op, err)
	}
	value := claimValue(fingerprint, "")
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return IdempotencyClaim{}, false, err
	}
	name := s.idempotencyKey(terminalID, key)
	// A claim released or expired between the SET NX and the GET is gone: claim again. Three rounds are
	// far more than that race needs; a claim that keeps vanishing is the store misbehaving.
	for range 3 {
		added, err := s.be.setNX(ctx, name, value, ttl)
		if err != nil {
			return IdempotencyClaim{}, false, unavailable(op, err)
		}
		if added {
			return IdempotencyClaim{Fingerprint: fingerprint}, true, nil
		}
		raw, err := s.be.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return IdempotencyClaim{}, false, unavailable(op, err)
		}
		var stored IdempotencyClaim
		if json.Unmarshal(raw, &stored) != nil {
			stored = IdempotencyClaim{}
		}
		return stored, false, nil
	}
	return IdempotencyClaim{}, false, unavailable(op, errors.New("the claim vanished three times"))
}

// SettleIdempotencyKey records trackingID as the payment key made under fingerprint, for ttl from now.
// A claim that was released meanwhile (a concurrent attempt under the same key was refused and let it go)
// is made again, settled, since the key has made a payment after all; a key bound to another fingerprint
// or another payment is left as it is.
func (s *store) SettleIdempotencyKey(ctx context.Context, terminalID, key, fingerprint, trackingID string, ttl time.Duration) error {
	const op = "settle idempotency key"
	if err := validClaim(terminalID, key, fingerprint, ttl); err != nil {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	if trackingID == "" {
		return fmt.Errorf("session: %s: a tracking id is required", op)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	name := s.idempotencyKey(terminalID, key)
	settled := claimValue(fingerprint, trackingID)
	swapped, err := s.be.swap(ctx, name, claimValue(fingerprint, ""), settled, ttl)
	if err != nil {
		return unavailable(op, err)
	}
	if !swapped {
		if _, err := s.be.setNX(ctx, name, settled, ttl); err != nil {
			return unavailable(op, err)
		}
	}
	return nil
}

// ReleaseIdempotencyKey frees key if it is still claimed under fingerprint and has made no payment (Bead
// refused the request in a way that proves it made none), so that it may be sent again with corrected
// details. A settled claim, or another fingerprint's, stays.
func (s *store) ReleaseIdempotencyKey(ctx context.Context, terminalID, key, fingerprint string) error {
	const op = "release idempotency key"
	if err := validClaim(terminalID, key, fingerprint, time.Second); err != nil {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.delIfEquals(ctx, s.idempotencyKey(terminalID, key), claimValue(fingerprint, "")); err != nil {
		return unavailable(op, err)
	}
	return nil
}
