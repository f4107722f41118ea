package bff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
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

// withBead runs call with the session's access token: refreshed ahead of expiry, and on a 401/403 from
// Bead refreshed once and the call retried once (with the same body and Idempotency-Key, which the call
// closes over). What still fails becomes a Problem for the browser or the app.
func (s *Server) withBead(c *fiber.Ctx, sess *session.Session, op string, call beadCall) error {
	ctx := c.UserContext()
	if needsRefresh(sess.Token, s.now(), rand.N(refreshAheadJitter)) {
		if err := s.refresh(ctx, sess, sess.Token.AccessToken, "ahead"); err != nil {
			// Refreshing ahead is an optimisation: while the token still lives, a realm that is briefly
			// unreachable must not fail the call. A dead refresh token or store does end it.
			if bead.IsInvalidGrant(err) || errors.Is(err, session.ErrUnavailable) || !s.now().Before(sess.Token.Expiry) {
				return s.refreshProblem(c, sess, err)
			}
			s.log.Warn("refresh ahead of expiry failed; using the current token", "requestId", requestIDOf(c), "err", err)
		}
	}
	first := s.timedCall(ctx, op, sess.Token.AccessToken, call)
	if first == nil || !bead.IsAuthFailure(first) {
		return s.beadProblem(c, sess, op, first, diagnose.Recovery{FirstStatus: statusOf(first)})
	}
	rec := diagnose.Recovery{FirstStatus: statusOf(first), Refreshed: true}
	if err := s.refresh(ctx, sess, sess.Token.AccessToken, "after_"+statusWord(first)); err != nil {
		rec.RefreshErr = err
		if bead.IsInvalidGrant(err) || errors.Is(err, session.ErrUnavailable) || errors.Is(err, errRefreshBusy) {
			return s.refreshProblem(c, sess, err)
		}
		// The realm could not be asked: diagnose the refusal we have, with what was tried.
		return s.beadProblem(c, sess, op, first, rec)
	}
	rec.Retried = true
	second := s.timedCall(ctx, op, sess.Token.AccessToken, call)
	return s.beadProblem(c, sess, op, second, rec)
}

func statusOf(err error) int {
	var ae *bead.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
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

// refresh replaces sess's token with a fresh one. Bead's realm rotates refresh tokens and treats a second
// use of one as theft, so exactly one refresh may run per session: within this process the callers share
// one flight, and across processes a lock in the session store (held for at most refreshLockTTL) lets one
// refresh while the others wait and then take the token it stored.
func (s *Server) refresh(ctx context.Context, sess *session.Session, staleAccess, reason string) error {
	v, err, _ := s.refreshes.Do(sess.ID, func() (any, error) {
		return s.refreshAcrossProcesses(context.WithoutCancel(ctx), sess, staleAccess, reason)
	})
	if err != nil {
		return err
	}
	sess.Token = v.(session.Token)
	return nil
}

const (
	refreshLockTTL    = 15 * time.Second // longer than one refresh grant may take (BEAD_TIMEOUT defaults to 10 s)
	refreshLockMargin = 2 * time.Second  // the holder's work ends this long before its lease does
	refreshWaitStep   = 50 * time.Millisecond
)

// errRefreshBusy: another process held the refresh lock for longer than a refresh can take.
var errRefreshBusy = errors.New("bff: token refresh of this session is held elsewhere")

func (s *Server) refreshAcrossProcesses(ctx context.Context, sess *session.Session, staleAccess, reason string) (session.Token, error) {
	lock := "refresh:" + sessionKeyName(sess.ID)
	deadline := time.Now().Add(refreshLockTTL)
	for {
		current, newer, err := s.newerToken(ctx, sess, staleAccess)
		if err != nil || newer {
			return current.Token, err
		}
		held, err := s.store.Lock(ctx, lock, refreshLockTTL)
		if err != nil {
			return session.Token{}, err
		}
		if held != "" {
			defer func() { _ = s.store.Unlock(ctx, lock, held) }()
			// The lease bounds the work: the grant and its save must end before the lock can expire and
			// let another process refresh with the same refresh token.
			lctx, cancel := context.WithTimeout(ctx, refreshLockTTL-refreshLockMargin)
			defer cancel()
			// Look once more under the lock: the previous holder may have finished just now.
			if current, newer, err = s.newerToken(lctx, sess, staleAccess); err != nil || newer {
				return current.Token, err
			}
			return s.refreshGrant(lctx, current, reason)
		}
		if time.Now().After(deadline) {
			s.metrics.refreshes.WithLabelValues("lock_timeout").Inc()
			return session.Token{}, errRefreshBusy
		}
		time.Sleep(refreshWaitStep)
	}
}

// newerToken reads the stored session: when it holds a fresh token other than staleAccess (another request
// or process refreshed), that is the answer. Otherwise current is the newest copy, whose refresh token is
// the one to use.
func (s *Server) newerToken(ctx context.Context, sess *session.Session, staleAccess string) (current *session.Session, newer bool, err error) {
	stored, err := s.store.Load(ctx, sess.ID)
	switch {
	case err == nil:
		if stored.Token.AccessToken != staleAccess && !needsRefresh(stored.Token, s.now(), 0) {
			s.metrics.refreshes.WithLabelValues("reused_newer").Inc()
			return stored, true, nil
		}
		return stored, false, nil
	case errors.Is(err, session.ErrUnavailable):
		return sess, false, err
	}
	return sess, false, nil // gone from the store (logged out meanwhile): refresh what we hold
}

// refreshGrant performs the refresh grant and stores the result before anyone uses the new access token.
func (s *Server) refreshGrant(ctx context.Context, current *session.Session, reason string) (session.Token, error) {
	tok, err := s.bead.Refresh(ctx, current.Token.RefreshToken)
	if err != nil {
		s.metrics.refreshes.WithLabelValues(refreshOutcome(err)).Inc()
		return session.Token{}, err
	}
	next := *current
	next.Token = tokenFromBead(tok)
	next.LastSeen = s.now()
	if err := s.store.Save(ctx, &next, s.sessionTTL(&next)); err != nil {
		s.metrics.refreshes.WithLabelValues("store_failed").Inc()
		return session.Token{}, err
	}
	s.metrics.refreshes.WithLabelValues("ok_" + reason).Inc()
	return next.Token, nil
}

// sessionKeyName names a session in store keys (locks) without its id: the id is the cookie.
func sessionKeyName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

func refreshOutcome(err error) string {
	switch {
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

// refreshProblem: a refresh that failed. A dead refresh token ends the session: the person logs in again.
func (s *Server) refreshProblem(c *fiber.Ctx, sess *session.Session, err error) error {
	if errors.Is(err, session.ErrUnavailable) {
		return storeUnavailable(err)
	}
	if errors.Is(err, errRefreshBusy) {
		return &Problem{Status: http.StatusServiceUnavailable, Cause: CauseBeadUnavailable, Title: "Token refresh still under way",
			Detail:     "Another server is refreshing this session's Bead token and has not finished. Try again in a moment.",
			RetryAfter: time.Second, Err: err}
	}
	if bead.IsInvalidGrant(err) {
		_ = s.store.Delete(c.UserContext(), sess.ID)
		c.Locals(localSession, nil)
		return &Problem{Status: http.StatusUnauthorized, Cause: CauseRefreshTokenInvalid, Title: "Your Bead session has ended",
			Detail:     "Bead no longer accepts this session's refresh token (it expired, was revoked or was already used). Log in again.",
			LoginAgain: true, Err: err}
	}
	return s.diagnoseFailure(c, sess, diagnose.OpRefreshGrant, err, diagnose.Recovery{RefreshErr: err})
}

// beadProblem turns a failed call to Bead into what the client is shown. A request Bead found invalid and
// a payment it does not know are answered plainly; everything else is diagnosed (diagnoseFailure).
func (s *Server) beadProblem(c *fiber.Ctx, sess *session.Session, op string, err error, rec diagnose.Recovery) error {
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
	return s.diagnoseFailure(c, sess, op, err, rec)
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
	b.MailtoURL = "mailto:" + b.Email + "?subject=" + mailEscape("["+env+"] [P2] Request refused by the payments API") +
		"&body=" + mailEscape(b.Text)
	return b
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
