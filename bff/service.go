package bff

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"beadbff/bff/bead"
)

// serviceAccount is this process's Bead login for BEAD_TERMINAL_USERNAME: the token for work that has no
// staff session behind it, such as reading the status of an embedded checkout. Each process logs in on
// its own and keeps its token in memory only: there is no shared refresh token, so the realm's rotation
// and reuse detection never see two processes race for one. It logs in at first use, refreshes ahead of
// expiry, logs in again when a refresh fails, and after a failed login waits before trying again so that
// wrong credentials do not hammer the realm.
type serviceAccount struct {
	username, password string
	bead               beadAPI
	now                func() time.Time

	// turn is a one-slot semaphore, held across the realm call so that one login or refresh runs at a
	// time; unlike a mutex, a caller waiting for it gives up when its own deadline passes.
	turn       chan struct{}
	tok        *bead.Token
	terminalID string
	failedAt   time.Time
	failure    error
	// known is terminalID for readers that must not wait for a login in progress.
	known atomic.Value
}

// serviceRetryAfter is how long a failed service login is remembered before the next try.
const serviceRetryAfter = 30 * time.Second

func newServiceAccount(username, password string, b beadAPI, now func() time.Time) *serviceAccount {
	return &serviceAccount{username: username, password: password, bead: b, now: now, turn: make(chan struct{}, 1)}
}

func (a *serviceAccount) lock(ctx context.Context) error {
	select {
	case a.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bff: service account busy: %w", ctx.Err())
	}
}

func (a *serviceAccount) unlock() { <-a.turn }

// token returns a usable access token and the terminal it belongs to.
func (a *serviceAccount) token(ctx context.Context) (accessToken, terminalID string, err error) {
	if err := a.lock(ctx); err != nil {
		return "", "", err
	}
	defer a.unlock()
	now := a.now()
	if a.tok != nil && !needsRefresh(tokenFromBead(a.tok), now, 0) {
		return a.tok.AccessToken, a.terminalID, nil
	}
	if a.tok != nil && a.tok.RefreshToken != "" {
		if t, err := a.bead.Refresh(ctx, a.tok.RefreshToken); err == nil {
			return a.keep(t)
		}
		a.tok = nil // a refresh that failed: log in afresh below
	}
	if a.failure != nil && now.Sub(a.failedAt) < serviceRetryAfter {
		return "", "", a.failure
	}
	t, err := a.bead.Login(ctx, a.username, a.password)
	if err != nil {
		a.failedAt, a.failure = now, fmt.Errorf("bff: service login as BEAD_TERMINAL_USERNAME: %w", err)
		return "", "", a.failure
	}
	return a.keep(t)
}

func (a *serviceAccount) keep(t *bead.Token) (string, string, error) {
	claims, err := bead.DecodeClaims(t.AccessToken)
	if err != nil || claims.TerminalID == "" {
		a.tok, a.failedAt, a.failure = nil, a.now(), errors.New("bff: service login: the token names no terminal")
		return "", "", a.failure
	}
	a.tok, a.terminalID, a.failure = t, claims.TerminalID, nil
	a.known.Store(claims.TerminalID)
	return t.AccessToken, a.terminalID, nil
}

// terminal is the terminal the account belongs to, once known ("" before the first login).
func (a *serviceAccount) terminal() string {
	t, _ := a.known.Load().(string)
	return t
}

// drop forgets accessToken after Bead refused it, so that the next call logs in again.
// It never waits: if another caller holds the account just now, the drop is skipped, and at worst this
// poll fails and the next one drops the token.
func (a *serviceAccount) drop(accessToken string) {
	select {
	case a.turn <- struct{}{}:
		defer a.unlock()
	default:
		return
	}
	if a.tok != nil && a.tok.AccessToken == accessToken {
		a.tok = nil
	}
}

// pollThrottle keeps many shoppers watching one checkout from becoming as many calls to Bead: each
// payment is read from Bead at most once per interval per process, and otherwise served as stored.
type pollThrottle struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

// due reports whether the payment may be read from Bead now, and if so marks it read.
func (p *pollThrottle) due(trackingID string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.last[trackingID]; ok && now.Sub(at) < p.every {
		return false
	}
	if len(p.last) >= 10000 { // bound the memory: forget what is no longer being watched
		for id, at := range p.last {
			if now.Sub(at) >= p.every {
				delete(p.last, id)
			}
		}
	}
	p.last[trackingID] = now
	return true
}
