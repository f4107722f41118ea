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
		return s.beadProblem(c, sess, op, first, false)
	}
	if err := s.refresh(ctx, sess, sess.Token.AccessToken, "after_"+statusWord(first)); err != nil {
		return s.refreshProblem(c, sess, err)
	}
	second := s.timedCall(ctx, op, sess.Token.AccessToken, call)
	return s.beadProblem(c, sess, op, second, true)
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
	refreshLockTTL  = 15 * time.Second // longer than one refresh grant may take (BEAD_TIMEOUT defaults to 10 s)
	refreshWaitStep = 50 * time.Millisecond
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
			// Look once more under the lock: the previous holder may have finished just now.
			if current, newer, err = s.newerToken(ctx, sess, staleAccess); err != nil || newer {
				return current.Token, err
			}
			return s.refreshGrant(ctx, current, reason)
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
	return s.beadProblem(c, sess, "refresh grant", err, false)
}

// beadProblem turns a failed call to Bead into what the client is shown. The full diagnosis of every
// cause is issue 3's; this names the causes that are certain from the answer alone and always attaches
// the support bundle Bead's support asks for.
func (s *Server) beadProblem(c *fiber.Ctx, sess *session.Session, op string, err error, retried bool) error {
	if err == nil {
		return nil
	}
	var (
		ae *bead.APIError
		te *bead.TransportError
		ke *bead.TokenError
	)
	p := &Problem{Err: err}
	var sent bead.SentRequest
	switch {
	case errors.As(err, &ae):
		sent = ae.Request
		switch {
		case ae.Status == http.StatusTooManyRequests:
			p.Status, p.Cause, p.Title = http.StatusTooManyRequests, CauseRateLimited, "Bead is rate-limiting this terminal"
			p.Detail = "Bead answered 429 Too Many Requests. This is not an authorisation problem: wait and try again."
			p.RetryAfter = max(ae.RetryAfter, time.Second)
		case ae.Status >= 500:
			p.Status, p.Cause, p.Title = http.StatusBadGateway, CauseBeadUnavailable, "Bead is not answering properly"
			p.Detail = fmt.Sprintf("Bead answered %d to %s. Try again in a moment.", ae.Status, op)
		case ae.Status == http.StatusForbidden && ae.Shape == bead.ShapeHTML:
			p.Status, p.Cause, p.Title = http.StatusBadGateway, CauseBlockedBeforeBead, "Blocked before reaching Bead"
			p.Detail = "The 403 came as an HTML page from a firewall or proxy in front of Bead, not from Bead's API."
		case ae.Status == http.StatusForbidden && ae.Shape == bead.ShapeEmpty && retried:
			// Bead's bare 403 to a fresh, accepted token: the request's terminal, merchant or payment is not
			// the token's (bead-api.md §4). The diagnosis of issue 3 weighs this further.
			p.Status, p.Cause, p.Title = http.StatusForbidden, CauseTerminalMismatch, "Not this terminal's"
			p.Detail = "Bead refused the request with a bare 403 even with a freshly refreshed token: the payment or ids it names belong to another terminal or merchant."
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			p.Status, p.Cause = http.StatusForbidden, CauseUnknown
			p.Title = fmt.Sprintf("Bead refused the request (%d)", ae.Status)
			p.Detail = "Bead refused the call even after this server refreshed the token and retried once. The support bundle below is what Bead's support needs."
			if !retried {
				p.Detail = "Bead refused the call."
			}
		case ae.Status == http.StatusNotFound:
			return notFound("The payment")
		case ae.Status == http.StatusBadRequest || ae.Status == http.StatusUnprocessableEntity:
			p.Status, p.Cause, p.Title = http.StatusBadRequest, CauseInvalidRequest, "Bead did not accept the request"
			p.Detail = firstNonEmpty(ae.Detail, ae.Title, "Bead found the request invalid.")
			if len(ae.FieldErrors) > 0 {
				p.Fields = map[string]string{}
				for f, msgs := range ae.FieldErrors {
					if len(msgs) > 0 {
						p.Fields[f] = msgs[0]
					}
				}
			}
		default:
			p.Status, p.Cause, p.Title = http.StatusBadGateway, CauseUnknown, fmt.Sprintf("Bead answered %d", ae.Status)
		}
	case errors.As(err, &te):
		sent = te.Request
		p.Status, p.Cause, p.Title = http.StatusBadGateway, CauseBeadUnavailable, "Bead could not be reached"
		p.Detail = "The call to Bead got no answer. Try again in a moment."
		if te.Timeout {
			p.Status, p.Detail = http.StatusGatewayTimeout, "Bead did not answer in time. Try again in a moment."
		}
	case errors.As(err, &ke):
		sent = ke.Request
		p.Status, p.Cause, p.Title = http.StatusBadGateway, CauseUnknown, "Bead's identity realm refused the request"
		p.Detail = firstNonEmpty(ke.Description, ke.Code)
		if ke.Code == "invalid_client" || ke.Code == "unauthorized_client" || ke.Code == "invalid_scope" {
			p.Cause = CauseWrongClientOrScope
		}
	default:
		return err
	}
	if p.Status == http.StatusForbidden || p.Cause == CauseBlockedBeforeBead || p.Cause == CauseUnknown {
		p.Bundle = supportBundle(s.now(), sent, sess.Token.AccessToken, s.envLabel())
	}
	return p
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
