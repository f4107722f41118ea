package bff

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"beadbff/bff/bead"
	"beadbff/session"
	"beadbff/views"
)

// touchEvery bounds how often a request moves a session's expiry along, so that steady traffic costs one
// store read per request (the session's GET) and not a write too.
const touchEvery = time.Minute

// sessionTTL is how long the store keeps a session from now: until its idle or its absolute timeout,
// whichever comes first. The idle timeout lives in the store's TTL alone. The session holds no token, so
// the refresh token's lifetime is not its concern: the terminal's token has its own TTL, and a session
// whose terminal's login has ended learns so at its next call to Bead (401, log in again).
func (s *Server) sessionTTL(sess *session.Session) time.Duration {
	ttl := s.cfg.SessionIdleTimeout
	if left := sess.CreatedAt.Add(s.cfg.SessionMaxLifetime).Sub(s.now()); left < ttl {
		ttl = left
	}
	return max(ttl, time.Second)
}

// sessionExpiresAt is when the session ends if it stays idle (the API's expiresAt).
func (s *Server) sessionExpiresAt(sess *session.Session) time.Time {
	at := sess.ExpiresAt
	if at.IsZero() {
		at = s.now().Add(s.sessionTTL(sess))
	}
	return at.UTC().Truncate(time.Second)
}

// touch moves the idle timeout along, at most about once a minute: when the session's remaining time has
// fallen a minute (or a tenth of the idle timeout) below a full one, or is unknown (a session stored
// before it carried its expiry), or is longer than this server's timeouts allow (the writer's clock runs
// ahead of this one's: without this, a server whose clock is behind would let a session in use expire).
// It reports false when the session has ended: logged out meanwhile, or its terminal's login (its token
// lineage) is over, so it must not hold the terminal again. A store that fails costs nothing but an
// earlier expiry, so it is logged and the request goes on.
func (s *Server) touch(c *fiber.Ctx, sess *session.Session) bool {
	ttl := s.sessionTTL(sess)
	threshold := min(touchEvery, s.cfg.SessionIdleTimeout/10)
	aheadOfUs := sess.ExpiresIn > ttl+threshold
	if sess.ExpiresIn > 0 && ttl-sess.ExpiresIn < threshold && !aheadOfUs {
		return true
	}
	// At most once per threshold from this process, whatever the stored expiry says: with clocks a
	// minute apart, each server would otherwise find every other server's write due or ahead, and touch
	// on every request. Each touch gives the session a full ttl, so one a minute per server keeps it.
	if last, ok := s.touched.Get(sess.ID); ok && s.now().Sub(last) < threshold {
		return true
	}
	if aheadOfUs {
		if ok, held := s.skewLog.allow("", s.now()); ok {
			s.log.Warn("a session's stored expiry is later than this server's timeouts allow: server clocks disagree "+
				"(keep them in sync with NTP), or SESSION_IDLE_TIMEOUT was lowered", "requestId", requestIDOf(c),
				"aheadBy", (sess.ExpiresIn - ttl).Round(time.Second).String(), "notLoggedBefore", held)
		}
	}
	ctx := c.UserContext()
	if !s.lineageLives(ctx, sess) {
		s.endSession(ctx, sess)
		return false
	}
	switch err := s.store.Touch(ctx, sess, ttl); {
	case errors.Is(err, session.ErrNotFound):
		return false // logged out meanwhile: nothing may hold its terminal again
	case err != nil:
		s.log.Warn("session touch failed", "requestId", requestIDOf(c), "err", err)
		return true
	}
	s.touched.Add(sess.ID, s.now())
	// The session still holds its terminal for as long as it lives (ReleaseTerminal counts holders).
	if err := s.store.HoldTerminal(ctx, sess.TerminalID, holderName(sess.ID), s.now().Add(ttl)); err != nil {
		s.log.Warn("terminal hold not extended", "requestId", requestIDOf(c), "err", err)
	}
	return true
}

// lineageLives says whether the session's terminal still has a token of the lineage the session joined
// at login. It reads the store, never this process's copy of the token: another server may have dropped
// the lineage (invalid_grant) while this copy still holds it. A touch is at most once a minute, so this
// is one read a minute per session. When the store cannot say, it is taken to live: a wrongly kept hold
// ends with its time to live, a wrongly ended session would log a staff member out.
func (s *Server) lineageLives(ctx context.Context, sess *session.Session) bool {
	t, err := s.loadTerminalToken(ctx, sess.TerminalID) // keeps this process's copy in step, or drops it
	switch {
	case errors.Is(err, errTerminalLoggedOut):
		return false
	case err != nil:
		return true
	}
	return t.Lineage == sess.Lineage
}

// login logs in to Bead with the password grant and opens a new session (a new id: an id known before the
// login is never the id after it). The login's token becomes the terminal's (claimTerminal): the session
// joins its terminal's lineage and holds the terminal for as long as it lives.
func (s *Server) login(c *fiber.Ctx, username, password string) (*session.Session, error) {
	username = strings.TrimSpace(username)
	fields := map[string]string{}
	if username == "" || len(username) > 256 {
		fields["username"] = "Enter the terminal's username."
	}
	if password == "" || len(password) > 1024 {
		fields["password"] = "Enter the terminal's password."
	}
	if len(fields) > 0 {
		return nil, invalidFields(fields)
	}
	attempt, err := s.takeLoginAttempt(c, username)
	if err != nil {
		return nil, err
	}
	tok, err := s.bead.Login(c.UserContext(), username, password)
	attempt.settle(c, bead.IsInvalidGrant(err)) // only a refused password counts against the limit
	if err != nil {
		return nil, s.loginProblem(err)
	}
	claims, err := bead.DecodeClaims(tok.AccessToken)
	if err != nil || claims.TerminalID == "" {
		return nil, &Problem{Status: http.StatusBadGateway, Cause: CauseUnknown, Title: "Bead's token names no terminal",
			Detail: "The realm issued a token this server cannot read a terminal from.", Err: err}
	}
	old := sessionOf(c)
	if old != nil {
		if err := s.store.Delete(c.UserContext(), old.ID); err != nil {
			return nil, storeUnavailable(err)
		}
	}
	id, err := s.store.NewID()
	if err != nil {
		return nil, err
	}
	now := s.now()
	sess := &session.Session{
		ID:         id,
		TerminalID: claims.TerminalID,
		MerchantID: claims.MerchantID,
		Username:   utils.CopyString(username),
		CSRFToken:  randomToken(),
		CreatedAt:  now,
		LastSeen:   now,
	}
	current, err := s.claimTerminal(c.UserContext(), tok, claims, holderName(id), now.Add(s.sessionTTL(sess)))
	if err != nil {
		return nil, storeUnavailable(err)
	}
	sess.Lineage = current.Lineage
	if err := s.store.Save(c.UserContext(), sess, s.sessionTTL(sess)); err != nil {
		return nil, storeUnavailable(err)
	}
	if old != nil {
		s.releaseTerminal(c.UserContext(), old) // after the claim: the new session holds its terminal already
	}
	s.setSessionCookie(c, id)
	c.Locals(localSession, sess)
	s.log.Info("logged in", "requestId", requestIDOf(c), "terminalId", sess.TerminalID, "merchantId", sess.MerchantID)
	return sess, nil
}

func (s *Server) loginProblem(err error) error {
	var ke *bead.TokenError
	var te *bead.TransportError
	switch {
	case bead.IsInvalidGrant(err):
		return &Problem{Status: http.StatusUnauthorized, Cause: CauseInvalidCredentials, Title: "Wrong username or password",
			Detail: "Bead's identity realm did not accept these terminal credentials.", Err: err}
	case errors.As(err, &ke):
		p := &Problem{Status: http.StatusBadGateway, Cause: CauseUnknown, Title: "Bead's identity realm refused the login",
			Detail: firstNonEmpty(ke.Description, ke.Code), Err: err}
		if ke.Code == "invalid_client" || ke.Code == "unauthorized_client" || ke.Code == "invalid_scope" {
			p.Cause = CauseWrongClientOrScope
			p.Detail = "The realm refused the client or scope this server is configured with (BEAD_CLIENT_ID, BEAD_SCOPE): " + p.Detail
		}
		return p
	case errors.As(err, &te):
		return &Problem{Status: http.StatusBadGateway, Cause: CauseBeadUnavailable, Title: "Bead's identity realm could not be reached",
			Detail: "Try again in a moment.", Err: err}
	}
	return err
}

// logout ends the session. The terminal's realm session is ended too when this was the terminal's last
// holder (no other session, no service account); while others still use the terminal's token, ending it
// at the realm would log them out as well.
func (s *Server) logout(c *fiber.Ctx) error {
	sess := sessionOf(c)
	s.clearSessionCookie(c)
	if sess == nil {
		return nil
	}
	if err := s.store.Delete(c.UserContext(), sess.ID); err != nil {
		return storeUnavailable(err)
	}
	s.releaseTerminal(c.UserContext(), sess)
	return nil
}

// endSession deletes a session that is over (its login ended, or its absolute timeout passed) and lets go
// of its terminal, best effort: the request has its answer whatever the store says.
func (s *Server) endSession(ctx context.Context, sess *session.Session) {
	if err := s.store.Delete(ctx, sess.ID); err != nil {
		s.log.Warn("ended session not deleted", "err", err)
	}
	s.releaseTerminal(ctx, sess)
}

// releaseTerminal removes the session from its terminal's holders; the last one out ends the terminal's
// realm session.
func (s *Server) releaseTerminal(ctx context.Context, sess *session.Session) {
	last, err := s.store.ReleaseTerminal(ctx, sess.TerminalID, holderName(sess.ID))
	if err != nil {
		s.log.Warn("terminal hold not released", "terminalId", sess.TerminalID, "err", err)
		return
	}
	if last == nil {
		// Said, so that an operator who expected a realm logout sees why there was none.
		s.log.Info("realm session kept: other sessions or the service account still use the terminal's token",
			"terminalId", sess.TerminalID)
		return
	}
	s.tokens.drop(last.TerminalID, "")
	s.endRealmSession(ctx, last, "its last session logged out")
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Pages.

func (s *Server) loginView(c *fiber.Ctx) views.LoginView {
	v := views.LoginView{Page: s.page(c, "Log in"), Next: safeNext(c.Query("next"))}
	v.CSRFToken = s.loginToken(c) // the pre-session token (csrf.go), whatever session the page shows
	// Fixed notices keyed by a flag, never text from the URL: a link cannot make this page say anything
	// else. Whoever still has a session never sees them (loginPage sends them on).
	switch {
	case c.Query("ended") == "1":
		v.Flash = "Your session has ended. Log in again to continue."
	case c.Query("loggedout") == "1":
		v.Flash = "You are logged out."
	}
	if s.cfg.Demo {
		v.Demo = s.demo
	}
	return v
}

func (s *Server) loginPage(c *fiber.Ctx) error {
	if sessionOf(c) != nil {
		return c.Redirect(safeNext(c.Query("next")), http.StatusSeeOther)
	}
	return render(c, http.StatusOK, views.Login(s.loginView(c)))
}

func (s *Server) loginSubmit(c *fiber.Ctx) error {
	username := utils.CopyString(c.FormValue("username"))
	_, err := s.login(c, username, c.FormValue("password"))
	if err == nil {
		return c.Redirect(safeNext(c.FormValue("next")), http.StatusSeeOther)
	}
	p, ok := asProblem(err)
	if !ok || (p.Cause != CauseInvalidCredentials && p.Cause != CauseInvalidRequest && p.Cause != CauseLoginThrottled) {
		return err
	}
	v := s.loginView(c)
	v.Username, v.Next = username, safeNext(c.FormValue("next"))
	v.Error = p.Title + "."
	switch p.Cause {
	case CauseInvalidRequest:
		v.Error = "Enter the terminal's username and password."
	case CauseLoginThrottled:
		v.Error = p.Detail
		setRetryAfter(c, p.RetryAfter)
	}
	return render(c, p.Status, views.Login(v))
}

func (s *Server) logoutSubmit(c *fiber.Ctx) error {
	if err := s.logout(c); err != nil {
		return err
	}
	return c.Redirect("/login?loggedout=1", http.StatusSeeOther) // the login page confirms it
}

// API.

type sessionJSON struct {
	TerminalID string    `json:"terminalId"`
	MerchantID string    `json:"merchantId"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

func (s *Server) sessionJSON(sess *session.Session) sessionJSON {
	return sessionJSON{TerminalID: sess.TerminalID, MerchantID: sess.MerchantID, ExpiresAt: s.sessionExpiresAt(sess)}
}

func (s *Server) apiLogin(c *fiber.Ctx) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	sess, err := s.login(c, in.Username, in.Password)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(s.sessionJSON(sess))
}

func (s *Server) apiWhoAmI(c *fiber.Ctx) error {
	return c.JSON(s.sessionJSON(sessionOf(c)))
}

func (s *Server) apiLogout(c *fiber.Ctx) error {
	if err := s.logout(c); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// decodeJSON reads a JSON body strictly: the right content type, one object, no unknown fields.
func decodeJSON(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(c.Get(fiber.HeaderContentType), ";", 2)[0]))
	if ct != fiber.MIMEApplicationJSON {
		return &Problem{Status: http.StatusUnsupportedMediaType, Cause: CauseInvalidRequest, Title: "Unsupported content type",
			Detail: "Send the body as application/json."}
	}
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return invalidRequest("The body is not valid JSON for this endpoint: " + jsonErrorText(err))
	}
	if dec.More() {
		return invalidRequest("The body has data after its JSON object.")
	}
	return nil
}

// jsonErrorText describes a decoding error without echoing the body back.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	return "malformed"
}
