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
//
// Until it is settled a claim also holds the mark of the last attempt that went to Bead under it (a
// random id each attempt swaps in, compare-and-swap, before it is let go to Bead). A release deletes the
// claim only while it still holds the releasing attempt's mark: once another attempt has joined, one
// attempt's refusal proves nothing about the other's, which may have made the payment, so the claim
// stays. The price is conservative: a key whose concurrent attempts were all refused stays bound to their
// details until it expires, and other details under it are refused (the caller is told to use a new key).

// IdempotencyClaim is what an idempotency key of a terminal is bound to.
type IdempotencyClaim struct {
	Fingerprint string `json:"fp"`
	TrackingID  string `json:"trk,omitempty"` // the payment the key made, once known ("" until then)
	// Attempt is, as ClaimIdempotencyKey returns it, this call's mark in the claim (which
	// ReleaseIdempotencyKey is given), and "" when the call did not go into the claim (another fingerprint,
	// or a settled claim, which nothing releases).
	Attempt string `json:"at,omitempty"`
}

func (s *store) idempotencyKey(terminalID, key string) string {
	return s.opts.Prefix + "idem:{" + url.QueryEscape(terminalID) + "}:" + url.QueryEscape(key)
}

// claimValue is a claim as stored. Strings always encode, so it has no error to return.
func claimValue(c IdempotencyClaim) []byte {
	b, _ := json.Marshal(c)
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

// claimRounds bounds the compare-and-swap loops on one claim. A round is lost only when the claim changed
// between the read and the write (a concurrent attempt joined, settled or released it, or it expired);
// five are far more than that needs, and a claim that keeps changing is refused as the store failing
// (nothing is sent to Bead then).
const claimRounds = 5

// ClaimIdempotencyKey binds key (of terminalID) to fingerprint for ttl, unless it is bound already.
// first is true when this call bound it; otherwise stored is the earlier binding, whose fingerprint may
// be another. A call with the binding's fingerprint while no payment is known joins the claim: its mark
// replaces the last attempt's (and the claim's time to live starts again), so that an attempt already
// at Bead can no longer release it. A claim that cannot be decoded is returned with an empty
// fingerprint: it matches nothing.
func (s *store) ClaimIdempotencyKey(ctx context.Context, terminalID, key, fingerprint string, ttl time.Duration) (IdempotencyClaim, bool, error) {
	const op = "claim idempotency key"
	if err := validClaim(terminalID, key, fingerprint, ttl); err != nil {
		return IdempotencyClaim{}, false, fmt.Errorf("session: %s: %w", op, err)
	}
	attempt, err := s.NewID()
	if err != nil {
		return IdempotencyClaim{}, false, fmt.Errorf("session: %s: %w", op, err)
	}
	mine := IdempotencyClaim{Fingerprint: fingerprint, Attempt: attempt}
	value := claimValue(mine)
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return IdempotencyClaim{}, false, err
	}
	name := s.idempotencyKey(terminalID, key)
	for range claimRounds {
		added, err := s.be.setNX(ctx, name, value, ttl)
		if err != nil {
			return IdempotencyClaim{}, false, unavailable(op, err)
		}
		if added {
			return mine, true, nil
		}
		raw, err := s.be.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // released or expired since the SET NX: claim again
		}
		if err != nil {
			return IdempotencyClaim{}, false, unavailable(op, err)
		}
		var stored IdempotencyClaim
		if json.Unmarshal(raw, &stored) != nil {
			return IdempotencyClaim{}, false, nil
		}
		if stored.Fingerprint != fingerprint || stored.TrackingID != "" {
			stored.Attempt = "" // another attempt's mark is none of this caller's business
			return stored, false, nil
		}
		joined, err := s.be.swap(ctx, name, raw, value, ttl)
		if err != nil {
			return IdempotencyClaim{}, false, unavailable(op, err)
		}
		if joined {
			return mine, false, nil
		}
	}
	return IdempotencyClaim{}, false, unavailable(op, fmt.Errorf("the claim changed under %d attempts to take it", claimRounds))
}

// SettleIdempotencyKey records trackingID as the payment key made under fingerprint, for ttl from now.
// A claim that was released or expired meanwhile is made again, settled, since the key has made a payment
// after all; a key bound to another fingerprint or another payment is left as it is.
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
	settled := claimValue(IdempotencyClaim{Fingerprint: fingerprint, TrackingID: trackingID})
	for range claimRounds {
		raw, err := s.be.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			added, err := s.be.setNX(ctx, name, settled, ttl)
			if err != nil {
				return unavailable(op, err)
			}
			if added {
				return nil
			}
			continue
		}
		if err != nil {
			return unavailable(op, err)
		}
		var stored IdempotencyClaim
		if json.Unmarshal(raw, &stored) != nil || stored.Fingerprint != fingerprint || stored.TrackingID != "" {
			return nil
		}
		// Whichever attempt's mark the claim holds, the key has made this payment.
		swapped, err := s.be.swap(ctx, name, raw, settled, ttl)
		if err != nil {
			return unavailable(op, err)
		}
		if swapped {
			return nil
		}
	}
	return unavailable(op, fmt.Errorf("the claim changed under %d attempts to settle it", claimRounds))
}

// ReleaseIdempotencyKey frees key if it is still claimed under fingerprint, has made no payment (Bead
// refused the request in a way that proves it made none) and holds attempt's mark (no other attempt has
// joined it since), so that it may be sent again with corrected details. Any other claim stays.
func (s *store) ReleaseIdempotencyKey(ctx context.Context, terminalID, key, fingerprint, attempt string) error {
	const op = "release idempotency key"
	if err := validClaim(terminalID, key, fingerprint, time.Second); err != nil {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	if attempt == "" {
		return fmt.Errorf("session: %s: the attempt's mark is required", op)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	mine := claimValue(IdempotencyClaim{Fingerprint: fingerprint, Attempt: attempt})
	if err := s.be.delIfEquals(ctx, s.idempotencyKey(terminalID, key), mine); err != nil {
		return unavailable(op, err)
	}
	return nil
}
