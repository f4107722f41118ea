package bff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
	"beadbff/config"
	"beadbff/session"
	"beadbff/views"
)

// Bead's token policy (bead-api.md part A): refresh a few minutes before expiry, with jitter, one refresher
// at a time; on a 401/403 refresh once and retry once.
const (
	refreshAhead       = 2 * time.Minute
	refreshAheadJitter = 60 * time.Second
)

// needsRefresh says whether the token should be refreshed before use. For short-lived tokens (the
// sandbox can issue 2-second ones) the margin shrinks to a third of the lifetime.
func needsRefresh(t session.Token, now time.Time, jitter time.Duration) bool {
	if t.Expiry.IsZero() {
		return false
	}
	margin := refreshAhead + jitter
	if life := t.Expiry.Sub(t.ObtainedAt); !t.ObtainedAt.IsZero() && life > 0 && margin > life/3 {
		margin = life / 3
	}
	return !now.Before(t.Expiry.Add(-margin))
}

// beadCall is one call to Bead's payments API with an access token.
type beadCall func(ctx context.Context, accessToken string) error

// callOutcome is what terminalCall did: the token it used last (for the diagnosis and its support
// bundle), what it tried, the call's error, and fatal when a refresh failed in a way that ends the
// attempt (the terminal's login is over, the store is down, another server is stuck refreshing).
type callOutcome struct {
	token *session.TerminalToken
	rec   diagnose.Recovery
	err   error
	fatal error
}

// fatalRefresh says whether a failed refresh ends the attempt rather than leaving the call's own
// refusal to be diagnosed.
func fatalRefresh(err error) bool {
	return bead.IsInvalidGrant(err) || errors.Is(err, errTerminalLoggedOut) || errors.Is(err, session.ErrUnavailable) ||
		errors.Is(err, errRefreshBusy)
}

// terminalCall runs call with the terminal's shared token: refreshed ahead of expiry, and on a 401/403
// from Bead refreshed once and the call retried once (with the same body and Idempotency-Key, which the
// call closes over). When the "refresh" only found a token another server had already obtained, and Bead
// refuses that one too, a real refresh and one more retry follow: the tokens may have died together.
// lineage is the session's (its login must still be the terminal's); "" accepts any, for work that has no
// session behind it.
func (s *Server) terminalCall(ctx context.Context, terminalID, lineage, op string, call beadCall) callOutcome {
	tok, err := s.terminalToken(ctx, terminalID, lineage)
	if err != nil {
		return callOutcome{fatal: err}
	}
	if needsRefresh(tok.Token, s.now(), rand.N(refreshAheadJitter)) {
		next, err := s.refreshTerminal(ctx, tok, "ahead")
		switch {
		case err == nil:
			tok = next
		// Refreshing ahead is an optimisation: while the token still lives, a realm that is briefly
		// unreachable must not fail the call. A dead login or store does end it.
		case fatalRefresh(err) || !s.now().Before(tok.Token.Expiry):
			return callOutcome{token: tok, fatal: err}
		default:
			s.log.Warn("refresh ahead of expiry failed; using the current token", "terminalId", terminalID, "err", err)
		}
		if lineage != "" && tok.Lineage != lineage {
			return callOutcome{token: tok, fatal: errTerminalLoggedOut}
		}
	}
	err = s.timedCall(ctx, op, tok.Token.AccessToken, call)
	var rec diagnose.Recovery
	rec.FirstStatus, rec.FirstBy = diagnose.AnswerOf(err)
	for attempt := 0; bead.IsAuthFailure(err) && attempt < 2; attempt++ {
		started := s.now()
		next, rerr := s.refreshTerminal(ctx, tok, "after_"+statusWord(err))
		rec.Refreshed = true
		if rerr != nil {
			rec.RefreshErr = rerr
			out := callOutcome{token: tok, rec: rec, err: err}
			if fatalRefresh(rerr) {
				out.fatal = rerr
			}
			return out // else the realm could not be asked: the refusal we have is diagnosed, with what was tried
		}
		if lineage != "" && next.Lineage != lineage {
			return callOutcome{token: next, rec: rec, err: err, fatal: errTerminalLoggedOut}
		}
		rec.Retried = true
		tok, err = next, s.timedCall(ctx, op, next.Token.AccessToken, call)
		rec.RetryStatus, rec.RetryBy = diagnose.AnswerOf(err)
		if !next.Token.ObtainedAt.Before(started) {
			break // a fresh grant: if Bead refuses it too, that is for the diagnosis
		}
		// The "newer" token was one another request or server had obtained before this refusal; refused
		// as well, it may be as dead as the first (expired or revoked with it), so one real refresh follows.
	}
	return callOutcome{token: tok, rec: rec, err: err}
}

// withBead runs call for the session's terminal (terminalCall); what still fails becomes a Problem for
// the browser or the app.
func (s *Server) withBead(c *fiber.Ctx, sess *session.Session, op string, call beadCall) error {
	out := s.terminalCall(c.UserContext(), sess.TerminalID, sess.Lineage, op, call)
	if out.fatal != nil {
		return s.refreshProblem(c, sess, out.token, out.fatal)
	}
	return s.beadProblem(c, sess, out.token, op, out.err, out.rec)
}

func statusWord(err error) string {
	var ae *bead.APIError
	if errors.As(err, &ae) {
		return fmt.Sprint(ae.Status)
	}
	return "error"
}

func (s *Server) timedCall(ctx context.Context, op, token string, call beadCall) error {
	start := time.Now()
	err := call(ctx, token)
	status := "ok"
	var ae *bead.APIError
	var te *bead.TransportError
	switch {
	case errors.As(err, &ae):
		status = fmt.Sprint(ae.Status)
	case errors.As(err, &te):
		status = "transport_error"
	case err != nil:
		status = "error"
	}
	s.metrics.beadCalls.WithLabelValues(op, status).Inc()
	s.metrics.beadDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return err
}

// errTerminalLoggedOut: the terminal has no token any more (its refresh token died, or its last holder
// logged out), or it has one of another lineage than the session's: the session's login is over.
var errTerminalLoggedOut = errors.New("bff: the terminal's Bead login has ended")

// terminalToken is the terminal's token as this process knows it, read from the store when it knows none,
// or one of another lineage than the caller's (a login on another server may have started a lineage this
// process has not seen yet). Steady state costs no store call: the access token is used until it needs a
// refresh or Bead refuses it, and either way the store is read again before anything is refreshed.
func (s *Server) terminalToken(ctx context.Context, terminalID, lineage string) (*session.TerminalToken, error) {
	if t := s.tokens.get(terminalID); t != nil && (lineage == "" || t.Lineage == lineage) {
		return t, nil
	}
	t, err := s.loadTerminalToken(ctx, terminalID)
	if err != nil {
		return nil, err
	}
	if lineage != "" && t.Lineage != lineage {
		return t, errTerminalLoggedOut
	}
	return t, nil
}

// loadTerminalToken reads the terminal's token from the store and keeps it in the cache.
func (s *Server) loadTerminalToken(ctx context.Context, terminalID string) (*session.TerminalToken, error) {
	t, err := s.store.LoadTerminalToken(ctx, terminalID)
	switch {
	case err == nil:
		s.tokens.put(t)
		return t, nil
	case errors.Is(err, session.ErrNotFound):
		s.tokens.drop(terminalID, "")
		return nil, fmt.Errorf("%w: %w", errTerminalLoggedOut, err)
	}
	return nil, err
}

// tokenTTL is how long the store keeps a terminal's token: as long as its refresh token lives (after that
// it is of no use), or, when the realm did not say, the longest a session may live.
func (s *Server) tokenTTL(t session.Token) time.Duration {
	if t.RefreshExpiry.IsZero() {
		return s.cfg.SessionMaxLifetime
	}
	return max(t.RefreshExpiry.Sub(s.now()), time.Second)
}

// claimTerminal makes a fresh login's token the terminal's (ClaimTerminalToken) for holder until until, and
// ends at the realm the realm session of the token it replaced: one terminal, one realm session.
func (s *Server) claimTerminal(ctx context.Context, tok *bead.Token, claims bead.Claims, holder string, until time.Time) (*session.TerminalToken, error) {
	fresh := session.TerminalToken{TerminalID: claims.TerminalID, MerchantID: claims.MerchantID,
		Token: tokenFromBead(tok), Lineage: randomToken()[:22]}
	current, replaced, err := s.store.ClaimTerminalToken(ctx, fresh, s.tokenTTL(fresh.Token), holder, until)
	if err != nil {
		return nil, err
	}
	s.tokens.put(current)
	if replaced != nil {
		s.endRealmSession(ctx, replaced, "replaced by a newer login")
	}
	return current, nil
}

// endRealmSession logs the token's session out at the realm, best effort: the realm would end it when it
// idles out anyway. Access tokens already handed out stay valid until they expire, as with Keycloak.
func (s *Server) endRealmSession(ctx context.Context, t *session.TerminalToken, why string) {
	if t == nil || t.Token.RefreshToken == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := s.bead.Logout(ctx, t.Token.RefreshToken); err != nil {
		s.log.Warn("realm logout failed", "terminalId", t.TerminalID, "why", why, "err", err)
		return
	}
	s.log.Info("realm session ended", "terminalId", t.TerminalID, "why", why)
}

// refreshTerminal replaces the terminal's token stale with a fresh one, or returns the newer one another
// request or server stored meanwhile. Bead's realm rotates refresh tokens and treats a second use of one as
// theft, so one refresh runs per terminal: callers holding the same stale token share one flight in this
// process, and across processes a lock in the store lets one refresh while the others wait and then take
// the token it stored.
func (s *Server) refreshTerminal(ctx context.Context, stale *session.TerminalToken, reason string) (*session.TerminalToken, error) {
	v, err, _ := s.refreshes.Do(stale.TerminalID+"\x00"+stale.Version, func() (any, error) {
		return s.refreshAcrossProcesses(context.WithoutCancel(ctx), stale, reason)
	})
	if err != nil {
		return nil, err
	}
	return v.(*session.TerminalToken), nil
}

const (
	refreshWaitStep = 50 * time.Millisecond
	// The refresh lock's lease (REFRESH_LOCK_LEASE) is renewed every third of itself while a refresh runs.
	leaseRenewals = 3
)

// errRefreshBusy: another process held the refresh lock for longer than a refresh can take.
var errRefreshBusy = errors.New("bff: token refresh of this terminal is held elsewhere")

func (s *Server) refreshAcrossProcesses(ctx context.Context, stale *session.TerminalToken, reason string) (*session.TerminalToken, error) {
	lock := "refresh:" + url.QueryEscape(stale.TerminalID)
	lease := s.cfg.RefreshLockLease
	deadline := time.Now().Add(lease + s.cfg.BeadTimeout)
	for {
		current, newer, err := s.newerToken(ctx, stale)
		if err != nil || newer {
			return current, err
		}
		held, err := s.store.Lock(ctx, lock, lease)
		if err != nil {
			return nil, err
		}
		if held != "" {
			return s.refreshHolding(ctx, lock, held, stale, reason)
		}
		if time.Now().After(deadline) {
			s.metrics.refreshes.WithLabelValues("lock_timeout").Inc()
			return nil, errRefreshBusy
		}
		time.Sleep(refreshWaitStep)
	}
}

// refreshHolding refreshes while holding the lock, renewing its lease as long as the work runs. If a
// renewal fails (the lock was lost, or the store does not answer), the grant is cancelled before it is
// sent, or abandoned if it is under way; what it may still bring back is fenced by the compare-and-swap.
func (s *Server) refreshHolding(ctx context.Context, lock, held string, stale *session.TerminalToken, reason string) (*session.TerminalToken, error) {
	work, cancel := context.WithCancelCause(ctx)
	stop := s.keepLease(ctx, cancel, lock, held)
	defer func() {
		stop()
		_ = s.store.Unlock(ctx, lock, held)
	}()
	// Look once more under the lock: the previous holder may have finished just now.
	current, newer, err := s.newerToken(work, stale)
	if err != nil || newer {
		return current, err
	}
	tok, err := s.bead.Refresh(work, current.Token.RefreshToken)
	if err != nil {
		if cause := context.Cause(work); cause != nil && !errors.Is(cause, context.Canceled) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return s.refreshFailed(ctx, current, err)
	}
	next := *current
	next.Token = tokenFromBead(tok)
	// The new refresh token is stored before anyone uses the new access token, with ctx, not work: once
	// the realm has rotated, losing the lease must not lose the only copy of the new refresh token.
	stored, ok, err := s.storeRefreshed(ctx, current, next)
	if err != nil {
		s.metrics.refreshes.WithLabelValues("store_failed").Inc()
		return nil, err
	}
	if !ok {
		// Someone wrote since current was read (a login, or a refresher that took over after this
		// lease was lost): theirs is the terminal's token, and this one is let go.
		s.metrics.refreshes.WithLabelValues("fenced").Inc()
		s.log.Warn("refreshed token not stored: the terminal's token changed meanwhile", "terminalId", current.TerminalID)
		return s.loadTerminalToken(ctx, current.TerminalID)
	}
	s.tokens.put(stored)
	s.metrics.refreshes.WithLabelValues("ok_" + reason).Inc()
	return stored, nil
}

var errLeaseLost = errors.New("bff: the refresh lock's lease was lost")

// keepLease renews the lock's lease every lease/leaseRenewals until stop is called. A renewal the store
// did not answer is tried again at the next tick while the lease still runs (a Redis blip must not cost a
// refresh); once the lock is known lost (another holder has it, or the lease ran out unrenewed) the work
// is cancelled with errLeaseLost, so that a grant still waiting for the realm is not sent after another
// process may have taken over.
func (s *Server) keepLease(ctx context.Context, cancel context.CancelCauseFunc, lock, held string) (stop func()) {
	lease := s.cfg.RefreshLockLease
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(lease / leaseRenewals)
		defer tick.Stop()
		renewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				ok, err := s.store.ExtendLock(ctx, lock, held, lease)
				switch {
				case err == nil && ok:
					renewed = time.Now()
					s.metrics.refreshes.WithLabelValues("lease_renewed").Inc()
					continue
				case err != nil && time.Since(renewed) < lease-lease/leaseRenewals:
					s.metrics.refreshes.WithLabelValues("lease_renewal_failed").Inc()
					continue // the lease still runs: try again at the next tick
				}
				s.metrics.refreshes.WithLabelValues("lease_lost").Inc()
				cancel(fmt.Errorf("%w (renewal: %v)", errLeaseLost, err))
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		cancel(nil)
	}
}

// storeRefreshed stores the refreshed token with the compare-and-swap, trying again a few times when the
// store does not answer: the realm has rotated, so this is the only copy of the new refresh token, and
// losing it would end the terminal's login.
func (s *Server) storeRefreshed(ctx context.Context, current *session.TerminalToken, next session.TerminalToken) (*session.TerminalToken, bool, error) {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
		}
		var stored *session.TerminalToken
		var ok bool
		if stored, ok, err = s.store.SwapTerminalToken(ctx, current, next, s.tokenTTL(next.Token)); err == nil {
			return stored, ok, nil
		}
		// A swap that timed out may have applied: then the next attempt finds our own write, not current.
		if now, lerr := s.store.LoadTerminalToken(ctx, current.TerminalID); lerr == nil && now.Token.RefreshToken == next.Token.RefreshToken {
			return now, true, nil
		}
	}
	return nil, false, err
}

// refreshFailed sorts a failed grant. invalid_grant ends the terminal's login, unless the token was
// replaced meanwhile (a login on another server ended the realm session this refresh token was of): then
// the replacement is the answer.
func (s *Server) refreshFailed(ctx context.Context, current *session.TerminalToken, err error) (*session.TerminalToken, error) {
	s.metrics.refreshes.WithLabelValues(refreshOutcome(err)).Inc()
	if !bead.IsInvalidGrant(err) {
		return nil, err
	}
	now, lerr := s.store.LoadTerminalToken(ctx, current.TerminalID)
	if lerr == nil && now.Version != current.Version {
		s.tokens.put(now)
		return now, nil
	}
	if derr := s.store.DropTerminalToken(ctx, current); derr != nil {
		s.log.Warn("dead terminal token not dropped", "terminalId", current.TerminalID, "err", derr)
	}
	s.tokens.drop(current.TerminalID, current.Version)
	return nil, fmt.Errorf("%w: %w", errTerminalLoggedOut, err)
}

// newerToken reads the terminal's token from the store: when it is fresh and not stale (another request
// or process refreshed), that is the answer. Otherwise current is the newest copy, whose refresh token is
// the one to use.
func (s *Server) newerToken(ctx context.Context, stale *session.TerminalToken) (current *session.TerminalToken, newer bool, err error) {
	current, err = s.loadTerminalToken(ctx, stale.TerminalID)
	if err != nil {
		return nil, false, err
	}
	if current.Version != stale.Version && current.Token.AccessToken != stale.Token.AccessToken &&
		!needsRefresh(current.Token, s.now(), 0) {
		s.metrics.refreshes.WithLabelValues("reused_newer").Inc()
		return current, true, nil
	}
	return current, false, nil
}

// holderName names a session among its terminal's holders (and in lock names) without its id: the id is
// the cookie.
func holderName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

func refreshOutcome(err error) string {
	switch {
	case errors.Is(err, errLeaseLost):
		return "lease_lost_cancelled"
	case bead.IsInvalidGrant(err):
		return "invalid_grant"
	default:
		var te *bead.TransportError
		if errors.As(err, &te) {
			return "transport_error"
		}
		return "failed"
	}
}

// refreshProblem: a refresh that failed. A login that has ended ends the session: the person logs in again.
func (s *Server) refreshProblem(c *fiber.Ctx, sess *session.Session, tok *session.TerminalToken, err error) error {
	if errors.Is(err, session.ErrUnavailable) {
		return storeUnavailable(err)
	}
	if errors.Is(err, errRefreshBusy) {
		return &Problem{Status: http.StatusServiceUnavailable, Cause: CauseBeadUnavailable, Title: "Token refresh still under way",
			Detail:     "Another server is refreshing this terminal's Bead token and has not finished. Try again in a moment.",
			RetryAfter: time.Second, Err: err}
	}
	if bead.IsInvalidGrant(err) || errors.Is(err, errTerminalLoggedOut) {
		s.endSession(c.UserContext(), sess)
		c.Locals(localSession, nil)
		return &Problem{Status: http.StatusUnauthorized, Cause: CauseRefreshTokenInvalid, Title: "Your Bead session has ended",
			Detail: "Bead no longer accepts this terminal's login (its refresh token expired, was revoked or was already used, " +
				"or the terminal was logged out). Log in again.",
			LoginAgain: true, Err: err}
	}
	return s.diagnoseFailure(c, sess, tokenOf(tok), diagnose.OpRefreshGrant, err, diagnose.Recovery{RefreshErr: err})
}

// tokenOf is t's token set, or none.
func tokenOf(t *session.TerminalToken) session.Token {
	if t == nil {
		return session.Token{}
	}
	return t.Token
}

// beadProblem turns a failed call to Bead into what the client is shown. A request Bead found invalid and
// a payment it does not know are answered plainly; everything else is diagnosed (diagnoseFailure).
func (s *Server) beadProblem(c *fiber.Ctx, sess *session.Session, tok *session.TerminalToken, op string, err error, rec diagnose.Recovery) error {
	if err == nil {
		return nil
	}
	var ae *bead.APIError
	var te *bead.TransportError
	var ke *bead.TokenError
	if !errors.As(err, &ae) && !errors.As(err, &te) && !errors.As(err, &ke) {
		return err // not an answer of Bead's: a bug or a refused id, handled by the error mapping
	}
	if ae != nil {
		switch ae.Status {
		case http.StatusNotFound:
			return notFound("The payment")
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			p := &Problem{Status: http.StatusBadRequest, Cause: CauseInvalidRequest, Title: "Bead did not accept the request",
				Detail: firstNonEmpty(ae.Detail, ae.Title, "Bead found the request invalid."), Err: err}
			for f, msgs := range ae.FieldErrors {
				if len(msgs) > 0 {
					if p.Fields == nil {
						p.Fields = map[string]string{}
					}
					p.Fields[f] = msgs[0]
				}
			}
			return p
		}
	}
	return s.diagnoseFailure(c, sess, tokenOf(tok), op, err, rec)
}

// supportBundle is exactly what Bead's 403 article asks to send to support: the time with its zone, the
// request path without secrets, the x-request-id and the first 50 characters of the JWT.
func supportBundle(now time.Time, sent bead.SentRequest, accessToken, env string) *views.SupportBundle {
	at := sent.SentAt
	if at.IsZero() {
		at = now
	}
	path := sent.Method + " " + pathOnly(sent.URL)
	b := &views.SupportBundle{
		Timestamp: at.UTC().Format(time.RFC3339) + " (UTC)",
		Path:      path,
		RequestID: sent.RequestID,
		JWTPrefix: jwtPrefix(accessToken),
		Email:     config.BeadSupportEmail,
	}
	b.Text = fmt.Sprintf("Timestamp: %s\nRequest: %s\nx-request-id: %s\nJWT (first 50 characters): %s\n",
		b.Timestamp, b.Path, b.RequestID, b.JWTPrefix)
	b.MailtoURL = bundleMailto(b, env, "Request refused by the payments API")
	return b
}

// bundleMailto is the mail of bundle b to its Email, with subject and the bundle's text as its body.
func bundleMailto(b *views.SupportBundle, env, subject string) string {
	return "mailto:" + b.Email + "?subject=" + mailEscape("["+env+"] [P2] "+subject) + "&body=" + mailEscape(b.Text)
}

// jwtPrefix is the one deliberate exception to "no token anywhere": Bead's support looks tokens up by
// their first 50 characters.
// A token too short to be a real JWT shows at most a third of itself, so the prefix can never be the token.
func jwtPrefix(token string) string {
	return token[:min(50, len(token)/3)]
}

func tokenFromBead(t *bead.Token) session.Token {
	return session.Token{
		AccessToken:   t.AccessToken,
		RefreshToken:  t.RefreshToken,
		IDToken:       t.IDToken,
		TokenType:     t.TokenType,
		Scope:         t.Scope,
		Expiry:        t.Expiry,
		RefreshExpiry: t.RefreshExpiry,
		ObtainedAt:    t.ObtainedAt,
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
