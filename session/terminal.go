package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// One token per terminal, as Bead advises (bead-api.md part A): every staff session of a terminal, and the
// server's own service account when it is that terminal's, use one token set, stored once, sealed, under
// the terminal's id. A login puts its fresh token in place of the terminal's, and the sessions already
// holding the terminal carry on with it; refreshes replace it with a compare-and-swap, so a refresher that lost its lease can never put back an older
// token; and the terminal's holders (its sessions and the service account) are counted, so that the last
// one to log out can end the terminal's session at the realm.

// TerminalToken is a terminal's Bead token set.
type TerminalToken struct {
	TerminalID string `json:"tid"`
	MerchantID string `json:"mid"`
	Token      Token  `json:"tok"`
	// Lineage names the login this token descends from: a password grant starts one, every refresh
	// keeps it. A session remembers the lineage it joined; when the terminal's token is of another
	// lineage (revoked, expired and logged in again), that session's login has ended.
	Lineage string `json:"lin"`
	// Version changes with every write (login or refresh), so two reads can tell whether the token moved.
	Version  string    `json:"ver"`
	StoredAt time.Time `json:"sat"`

	// stored is the sealed value as read: what SwapTerminalToken and DropTerminalToken compare against.
	stored []byte
}

// ServiceHolder is the holder name of the server's service account (BEAD_TERMINAL_USERNAME).
const ServiceHolder = "service"

func (s *store) terminalTokenKey(terminalID string) string {
	return s.opts.Prefix + "tok:{" + url.QueryEscape(terminalID) + "}"
}

// holdersKey shares the token key's hash tag, so the scripts that read both run on one Cluster node.
func (s *store) holdersKey(terminalID string) string {
	return s.opts.Prefix + "hold:{" + url.QueryEscape(terminalID) + "}"
}

func (s *store) sealTerminalToken(t *TerminalToken) ([]byte, error) {
	if t.TerminalID == "" {
		return nil, errors.New("session: terminal token: terminal id is required")
	}
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("session: terminal token: encode: %w", err)
	}
	return s.keys.Seal(s.terminalTokenKey(t.TerminalID), plain), nil
}

func (s *store) openTerminalToken(terminalID string, blob []byte) (*TerminalToken, error) {
	plain, err := s.keys.Open(s.terminalTokenKey(terminalID), blob)
	if err != nil {
		return nil, fmt.Errorf("session: terminal token: %w: %w", ErrNotFound, err)
	}
	var t TerminalToken
	if err := json.Unmarshal(plain, &t); err != nil || t.TerminalID != terminalID {
		return nil, fmt.Errorf("session: terminal token: %w: %w: sealed token does not decode", ErrNotFound, ErrUnreadable)
	}
	t.stored = blob
	return &t, nil
}

// newVersion gives t a fresh version and stamps it.
func (s *store) newVersion(t *TerminalToken) error {
	v, err := s.NewID()
	if err != nil {
		return err
	}
	t.Version, t.StoredAt = v[:22], s.opts.Now()
	return nil
}

// ClaimTerminalToken is a login's step: holder (a session's key name, or ServiceHolder) holds the
// terminal until until, and t (the login's fresh token) becomes the terminal's token for ttl. A fresh
// login's token is one the realm has just vouched for, so it always replaces the stored one, but it keeps
// the stored token's Lineage: the sessions already holding the terminal carry on with it. Only when there
// is no stored token (or it does not open) does t start the lineage t names. It returns the token now in
// force and the one it replaced, whose realm session the caller should end (nil when none).
func (s *store) ClaimTerminalToken(ctx context.Context, t TerminalToken, ttl time.Duration, holder string, until time.Time) (current, replaced *TerminalToken, err error) {
	const op = "claim terminal token"
	if ttl <= 0 || t.Lineage == "" || holder == "" {
		return nil, nil, fmt.Errorf("session: %s: ttl, lineage and holder are required", op)
	}
	// Held first, then claimed: a last logout running meanwhile either sees this holder, or has deleted
	// the token before the claim below stores a new one. It can never delete the token claimed here.
	if err := s.HoldTerminal(ctx, t.TerminalID, holder, until); err != nil {
		return nil, nil, err
	}
	cctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, nil, err
	}
	key := s.terminalTokenKey(t.TerminalID)
	// Read, then compare-and-swap; a write by someone else in between makes the swap fail and the
	// loop read again. Logins and refreshes of one terminal are rare, so a few rounds always suffice.
	for range 8 {
		existing, err := s.be.get(cctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, unavailable(op, err)
		}
		next := t
		var old *TerminalToken
		if existing != nil {
			if old, _ = s.openTerminalToken(t.TerminalID, existing); old != nil {
				next.Lineage = old.Lineage
			}
		}
		if err := s.newVersion(&next); err != nil {
			return nil, nil, err
		}
		blob, err := s.sealTerminalToken(&next)
		if err != nil {
			return nil, nil, err
		}
		var stored bool
		if existing == nil {
			stored, err = s.be.setNX(cctx, key, blob, ttl)
		} else {
			stored, err = s.be.swap(cctx, key, existing, blob, ttl)
		}
		if err != nil {
			return nil, nil, unavailable(op, err)
		}
		if stored {
			next.stored = blob
			return &next, old, nil
		}
	}
	return nil, nil, unavailable(op, errors.New("the terminal's token kept changing"))
}

// LoadTerminalToken reads the terminal's token: ErrNotFound when there is none (never logged in, its
// refresh token expired, or the last holder logged out) or it does not open.
func (s *store) LoadTerminalToken(ctx context.Context, terminalID string) (*TerminalToken, error) {
	const op = "load terminal token"
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, err
	}
	blob, err := s.be.get(ctx, s.terminalTokenKey(terminalID))
	if err != nil {
		return nil, backendErr(op, err)
	}
	return s.openTerminalToken(terminalID, blob)
}

// SwapTerminalToken stores next (a refresh of prev: same terminal and lineage) for ttl only if the store
// still holds exactly prev, and says whether it did. This is the fence: a refresher whose read is no
// longer current (another refresh or a login wrote since) cannot overwrite the newer token.
func (s *store) SwapTerminalToken(ctx context.Context, prev *TerminalToken, next TerminalToken, ttl time.Duration) (*TerminalToken, bool, error) {
	const op = "swap terminal token"
	switch {
	case prev == nil || prev.stored == nil:
		return nil, false, fmt.Errorf("session: %s: prev must come from the store", op)
	case next.TerminalID != prev.TerminalID:
		return nil, false, fmt.Errorf("session: %s: terminal changed", op)
	case ttl <= 0:
		return nil, false, fmt.Errorf("session: %s: ttl %v is not positive", op, ttl)
	}
	if err := s.newVersion(&next); err != nil {
		return nil, false, err
	}
	blob, err := s.sealTerminalToken(&next)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, false, err
	}
	ok, err := s.be.swap(ctx, s.terminalTokenKey(next.TerminalID), prev.stored, blob, ttl)
	if err != nil {
		return nil, false, unavailable(op, err)
	}
	next.stored = blob
	return &next, ok, nil
}

// DropTerminalToken deletes the terminal's token if it is still prev (a refresh found it dead), and its
// holders with it: the sessions that held it belong to a lineage that has ended and must not count against
// the next lineage's last logout. A newer token (and its holders) stays.
func (s *store) DropTerminalToken(ctx context.Context, prev *TerminalToken) error {
	const op = "drop terminal token"
	if prev == nil || prev.stored == nil {
		return fmt.Errorf("session: %s: prev must come from the store", op)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.delIfEquals(ctx, s.terminalTokenKey(prev.TerminalID), prev.stored, s.holdersKey(prev.TerminalID)); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// HoldTerminal records that holder uses the terminal's token until until (a session's expiry, moved
// along as the session is touched). Holders whose time has passed no longer count.
func (s *store) HoldTerminal(ctx context.Context, terminalID, holder string, until time.Time) error {
	const op = "hold terminal"
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	now := s.opts.Now()
	key := s.holdersKey(terminalID)
	err = s.be.atomically(ctx, func(b batch) {
		b.put(key, score(until), holder)
		b.dropScoredBelow(key, score(now))
		b.extendExpiry(key, until.Sub(now)+time.Minute)
	})
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// ReleaseTerminal removes holder. When no holder is left, the terminal's token is deleted in the same
// step and returned, so that the caller can end its session at the realm; otherwise it returns nil.
func (s *store) ReleaseTerminal(ctx context.Context, terminalID, holder string) (*TerminalToken, error) {
	const op = "release terminal"
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, err
	}
	last, err := s.be.release(ctx, s.holdersKey(terminalID), holder, score(s.opts.Now()), s.terminalTokenKey(terminalID))
	if err != nil {
		return nil, unavailable(op, err)
	}
	if last == nil {
		return nil, nil
	}
	t, err := s.openTerminalToken(terminalID, last)
	if err != nil {
		return nil, nil // deleted all the same; a token that does not open cannot be logged out
	}
	return t, nil
}
