package bff

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"beadbff/bff/bead"
	"beadbff/session"
)

// serviceAccount is BEAD_TERMINAL_USERNAME: credentials for work that has no staff session behind it,
// such as reading the status of an embedded checkout or confirming a webhook. It holds no token of its
// own: its login's token becomes its terminal's shared token, as a staff login's does, and it holds the
// terminal (session.ServiceHolder) so that staff logging out never ends the realm session the server still
// needs. It logs in only when its terminal has no token (at first use, or after the login ended), and
// after a failed login waits before trying again, so that wrong credentials do not hammer the realm.
type serviceAccount struct {
	username, password string

	// turn is a one-slot semaphore, held across the login so that one runs at a time; unlike a mutex, a
	// caller waiting for it gives up when its own deadline passes.
	turn     chan struct{}
	failedAt time.Time
	failure  error
	// known is the account's terminal once a login has told it ("" before).
	known atomic.Value
}

const (
	// serviceRetryAfter is how long a failed service login is remembered before the next try.
	serviceRetryAfter = 30 * time.Second
	// serviceHold is how long a service login holds its terminal. Past it, a last staff logout may end
	// the terminal's login, and the account simply logs in again at its next use.
	serviceHold = 24 * time.Hour
)

func newServiceAccount(username, password string) *serviceAccount {
	return &serviceAccount{username: username, password: password, turn: make(chan struct{}, 1)}
}

// terminal is the terminal the account belongs to, once known ("" before the first login).
func (a *serviceAccount) terminal() string {
	t, _ := a.known.Load().(string)
	return t
}

// mayServe says whether the account may be the terminal's (its own, or not known yet).
func (a *serviceAccount) mayServe(terminalID string) bool {
	t := a.terminal()
	return t == "" || t == terminalID
}

// serviceLogin logs the service account in and makes its token its terminal's, unless, while it waited
// for its turn, the terminal got a token other than the ended one the caller found (dead: its version,
// "" for none).
func (s *Server) serviceLogin(ctx context.Context, a *serviceAccount, dead string) (*session.TerminalToken, error) {
	select {
	case a.turn <- struct{}{}:
		defer func() { <-a.turn }()
	case <-ctx.Done():
		return nil, fmt.Errorf("bff: service account busy: %w", ctx.Err())
	}
	if tid := a.terminal(); tid != "" {
		t, err := s.loadTerminalToken(ctx, tid)
		switch {
		case err == nil && t.Version != dead:
			return t, nil
		case err != nil && !errors.Is(err, errTerminalLoggedOut):
			return nil, err
		}
	}
	now := s.now()
	if a.failure != nil && now.Sub(a.failedAt) < serviceRetryAfter {
		return nil, a.failure
	}
	tok, err := s.bead.Login(ctx, a.username, a.password)
	if err != nil {
		a.failedAt, a.failure = now, fmt.Errorf("bff: service login as BEAD_TERMINAL_USERNAME: %w", err)
		return nil, a.failure
	}
	claims, err := bead.DecodeClaims(tok.AccessToken)
	if err != nil || claims.TerminalID == "" {
		a.failedAt, a.failure = now, errors.New("bff: service login: the token names no terminal")
		return nil, a.failure
	}
	t, err := s.claimTerminal(ctx, tok, claims, session.ServiceHolder, now.Add(serviceHold))
	if err != nil {
		return nil, err // the store failed, not the login: nothing to wait out
	}
	a.failure = nil
	a.known.Store(claims.TerminalID)
	return t, nil
}

// errNoToken: the terminal has no token and the service account cannot give it one (there is none, or it
// is another terminal's).
var errNoToken = errors.New("bff: no token of this terminal at hand")

// unattendedCall runs call with a token of the terminal for work with no session behind it: the terminal's
// shared token when it has one (any staff login keeps it), else the service account's login when the
// account is that terminal's; errNoToken when neither is at hand. Like a session's call it is refreshed
// ahead, and refreshed once and retried once on a 401/403.
func (s *Server) unattendedCall(ctx context.Context, terminalID, op string, call beadCall) error {
	out := s.terminalCall(ctx, terminalID, "", op, call)
	if !errors.Is(out.fatal, errTerminalLoggedOut) {
		return cmp.Or(out.fatal, out.err)
	}
	svc := s.web.service
	if svc == nil || !svc.mayServe(terminalID) {
		return fmt.Errorf("%w: %w", errNoToken, out.fatal)
	}
	var dead string
	if out.token != nil {
		dead = out.token.Version
	}
	t, err := s.serviceLogin(ctx, svc, dead)
	if err != nil {
		return err
	}
	if t.TerminalID != terminalID {
		return errNoToken
	}
	out = s.terminalCall(ctx, terminalID, "", op, call)
	return cmp.Or(out.fatal, out.err)
}

// unattendedTracking reads a payment's status with unattendedCall.
func (s *Server) unattendedTracking(ctx context.Context, p *session.Payment, op string) (*bead.PaymentStatus, error) {
	var st *bead.PaymentStatus
	err := s.unattendedCall(ctx, p.TerminalID, op, func(ctx context.Context, token string) error {
		var err error
		st, err = s.bead.Tracking(ctx, token, p.TrackingID)
		return err
	})
	return st, err
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
