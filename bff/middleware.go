package bff

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/google/uuid"

	"beadbff/bff/bead"
	"beadbff/session"
)

// Keys of c.Locals.
const (
	localRequestID = "beadbff.requestID"
	localNonce     = "beadbff.nonce"
	localSession   = "beadbff.session"
	localRoute     = "beadbff.route"
	localEnded     = "beadbff.sessionEnded" // the cookie named a session that is gone
	localQuietLog  = "beadbff.quietLog"     // a line of its own already said enough (or was held back by a logGate)
)

// saneRequestID is what we accept from a caller as X-Request-Id; anything else is replaced, so that an id
// can be logged and sent to Bead without escaping.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

// requestID gives every request an id (the caller's when sane), puts it on the response, and carries it in
// the user context so the Bead client sends it as x-request-id.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get("X-Request-Id")
	if !saneRequestID.MatchString(id) {
		id = uuid.NewString()
	} else {
		id = utils.CopyString(id)
	}
	c.Locals(localRequestID, id)
	c.Set("X-Request-Id", id)
	c.SetUserContext(bead.WithRequestID(c.UserContext(), id))
	return c.Next()
}

func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// accessLog writes one line per request and counts it. It runs the error handler itself so that the logged
// status is the one sent.
func (s *Server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			s.log.Error("error handler failed", "requestId", requestIDOf(c), "err", herr)
			c.Status(http.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	if r, ok := c.Locals(localRoute).(string); ok {
		route = r
	}
	elapsed := time.Since(start)
	// A streamed body (server-sent events) has no size yet, and reading Body() would wait for the whole
	// stream to end before the response even starts.
	size := -1
	if !c.Response().IsBodyStream() {
		size = len(c.Response().Body())
	}
	// Metric labels outlive the request: c.Method() points into a buffer the next request reuses.
	method := utils.CopyString(c.Method())
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.requestDuration.WithLabelValues(method, route).Observe(elapsed.Seconds())
	if quiet, _ := c.Locals(localQuietLog).(bool); quiet {
		return nil // counted in the metrics above; anyone could make these lines by the thousand
	}
	level := slogLevelFor(status)
	s.log.Log(c.UserContext(), level, "request",
		"requestId", requestIDOf(c),
		"method", method,
		"path", loggedPath(c.Path()), // the path only (queries may carry things we do not want in logs), capability ids cut
		"route", route,
		"status", status,
		"durationMs", float64(elapsed.Microseconds())/1000,
		"bytes", size,
	)
	return nil
}

// loggedPath is a request path as a log line may hold it. A checkout id is the only key to an embedded
// checkout (no login, no cookie), so only its first 4 characters are written: enough to tell two
// checkouts apart in a log, far too little to open one (24 of its 256 bits). Two rules, each segment
// percent-decoded leniently first (a segment that does not decode is taken as it is):
//   - any run of 43 or more base64url characters anywhere (the shape of a checkout id) is cut, so that no
//     spelling a route does not serve (doubled slashes, case, encoding, a prefix) carries a whole id;
//   - the segment after embed/checkout is an id whatever its shape, so a short one shows nothing.
//
// Everything else is logged as it came. Tracking ids (32 hex) and incident ids (22 characters) are not
// keys: they open nothing without the staff session they belong to.
func loggedPath(path string) string {
	segs := strings.Split(path, "/")
	var before, last string // the two non-empty segments before this one, decoded
	for i, seg := range segs {
		if seg == "" {
			continue
		}
		plain := seg
		if strings.Contains(seg, "%") {
			if u, err := url.PathUnescape(seg); err == nil {
				plain = u
			}
		}
		switch {
		case strings.EqualFold(before, "embed") && strings.EqualFold(last, "checkout"):
			segs[i] = cutID(plain)
		case len(plain) >= 43 && idShaped.MatchString(plain): // shorter cannot match: most requests skip the regexp
			segs[i] = idShaped.ReplaceAllStringFunc(plain, cutID)
		}
		before, last = last, plain
	}
	return strings.Join(segs, "/")
}

// idShaped finds what could be a checkout id: 32 random bytes in unpadded base64url.
var idShaped = regexp.MustCompile(`[A-Za-z0-9_-]{43,}`)

// cutID is an id as a log line shows it: its first 4 characters, or nothing of a short one.
func cutID(id string) string {
	if len(id) >= 12 {
		return id[:4] + "…"
	}
	return "…"
}

// securityHeaders sets the headers every answer carries. Pages get a CSP with a per-response nonce; the
// embed pages of a later issue override frame-ancestors.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	nonce := newNonce()
	c.Locals(localNonce, nonce)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonce+"'; style-src 'self'; "+
		"img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	if s.cfg.Secure() {
		c.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	return c.Next()
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawStdEncoding.EncodeToString(b[:])
}

func nonceOf(c *fiber.Ctx) string {
	n, _ := c.Locals(localNonce).(string)
	return n
}

// apiHeaders: every /api answer is private and varies by Origin (CORS comes in a later issue).
func (s *Server) apiHeaders(c *fiber.Ctx) error {
	c.Set("Cache-Control", "no-store")
	c.Vary("Origin")
	return c.Next()
}

// cookieName is the session cookie; under https it takes the __Host- prefix, which pins it to this exact
// origin (Secure, Path=/, no Domain).
func (s *Server) cookieName() string {
	if s.cfg.Secure() {
		return "__Host-beadbff_session"
	}
	return "beadbff_session"
}

func (s *Server) setSessionCookie(c *fiber.Ctx, id string) {
	c.Cookie(&fiber.Cookie{
		Name:     s.cookieName(),
		Value:    id,
		Path:     "/",
		HTTPOnly: true,
		Secure:   s.cfg.Secure(),
		SameSite: fiber.CookieSameSiteLaxMode,
		MaxAge:   int(s.cfg.SessionMaxLifetime / time.Second),
	})
}

func (s *Server) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name:     s.cookieName(),
		Value:    "",
		Path:     "/",
		HTTPOnly: true,
		Secure:   s.cfg.Secure(),
		SameSite: fiber.CookieSameSiteLaxMode,
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
	})
}

// withOptionalSession loads the session named by the cookie, if any. A cookie naming no live session is
// cleared. A store that cannot answer stops the request with 503 and leaves the cookie alone: an outage
// must never log anyone out.
func (s *Server) withOptionalSession(c *fiber.Ctx) error {
	if err := s.loadSession(c); err != nil {
		return err
	}
	return c.Next()
}

func (s *Server) loadSession(c *fiber.Ctx) error {
	id := utils.CopyString(c.Cookies(s.cookieName())) // it becomes Session.ID, which outlives Fiber's buffer
	if id == "" {
		return nil
	}
	sess, err := s.store.Load(c.UserContext(), id)
	switch {
	case err == nil:
		ended := s.sessionOver(sess)
		if ended {
			s.endSession(c.UserContext(), sess)
		} else {
			ended = !s.touch(c, sess)
		}
		if ended {
			// As below: the API leaves the cookie, so that the page whose script met the 401 can still
			// say, when it reloads, that the session ended.
			if !isAPI(c) {
				s.clearSessionCookie(c)
			}
			c.Locals(localEnded, true)
			return nil
		}
		c.Locals(localSession, sess)
	case errors.Is(err, session.ErrUnavailable):
		return storeUnavailable(err)
	default:
		if errors.Is(err, session.ErrUnreadable) {
			s.log.Warn("stored session unreadable; treated as no session", "requestId", requestIDOf(c))
		}
		// Pages clear the stale cookie (after telling the person, see requirePageSession); the API leaves
		// it, so that a page whose script met the 401 can still say so when it reloads.
		if !isAPI(c) {
			s.clearSessionCookie(c)
		}
		c.Locals(localEnded, true)
	}
	return nil
}

// sessionOver applies the absolute timeout (the idle one is the store's TTL).
func (s *Server) sessionOver(sess *session.Session) bool {
	return s.now().Sub(sess.CreatedAt) > s.cfg.SessionMaxLifetime
}

func sessionOf(c *fiber.Ctx) *session.Session {
	sess, _ := c.Locals(localSession).(*session.Session)
	return sess
}

func (s *Server) requireAPISession(c *fiber.Ctx) error {
	if sessionOf(c) == nil {
		return notAuthenticated()
	}
	return c.Next()
}

// requirePageSession sends a browser without a session to the login page, remembering where it was going.
func (s *Server) requirePageSession(c *fiber.Ctx) error {
	if sessionOf(c) != nil {
		return c.Next()
	}
	if c.Method() != fiber.MethodGet {
		return notAuthenticated()
	}
	q := url.Values{}
	if next := c.OriginalURL(); next != "/" {
		q.Set("next", next)
	}
	if ended, _ := c.Locals(localEnded).(bool); ended {
		q.Set("ended", "1") // the login page says why it is shown
	}
	if len(q) == 0 {
		return c.Redirect("/login", http.StatusSeeOther)
	}
	return c.Redirect("/login?"+q.Encode(), http.StatusSeeOther)
}

// csrfHeader enforces CONTRACT.md's rule: a state-changing API call made with a session cookie carries
// X-CSRF: 1. A cross-origin page cannot add that header without a CORS preflight, which we decide on.
func (s *Server) csrfHeader(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if c.Cookies(s.cookieName()) == "" {
		return c.Next()
	}
	if c.Get("X-CSRF") != "1" {
		return &Problem{Status: http.StatusForbidden, Cause: CauseCSRFHeaderMissing, Title: "CSRF header missing",
			Detail: "A state-changing request made with a session cookie must carry the header X-CSRF: 1. Nothing was done."}
	}
	return c.Next()
}

// sameOriginForm refuses a form post that a browser says came from another site. Browsers send Origin on
// every POST and Sec-Fetch-Site on all current versions; a request with neither is not from a browser
// page and is let through to the token check.
func (s *Server) sameOriginForm(c *fiber.Ctx) error {
	site := c.Get("Sec-Fetch-Site")
	origin := c.Get("Origin")
	crossSite := site == "cross-site" || site == "same-site" || (origin != "" && origin != s.cfg.Origin())
	if crossSite {
		return crossSiteForm(s.cfg.Origin(), origin, site)
	}
	return c.Next()
}

// formToken checks the session's per-session token on HTML form posts.
func (s *Server) formToken(c *fiber.Ctx) error {
	sess := sessionOf(c)
	got := c.FormValue("csrf")
	if sess == nil || sess.CSRFToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
		return &Problem{Status: http.StatusForbidden, Cause: CauseCSRFTokenInvalid, Title: "Form expired",
			Detail: "This form did not carry the token of your session (it may be from an older page). Reload the page and try again."}
	}
	return c.Next()
}

// safeNext keeps a post-login redirect on this server: a plain local path, nothing a browser could read
// as another host ("//evil", "/\\evil", or "/\t/evil", since browsers drop tabs and newlines from URLs).
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}
