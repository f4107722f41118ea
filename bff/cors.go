package bff

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"
)

// CORS for /api/v1: a thin layer of our own rather than Fiber's cors middleware, which (v2.52) answers
// "*" when given an empty list (our default), sets Access-Control-Allow-Methods and Max-Age for origins
// it refused, mirrors any requested header when none are configured, cannot send a max-age of 0 without
// a negative number, matches "*." patterns by prefix and suffix alone (so "https://x/.example.com" or an
// empty label would pass), and has no hook to refuse, log and count a disallowed origin. Every rule it
// would have to be configured around is one line here, and the tests pin each.

const (
	// The API's methods: CONTRACT.md's state-changing ones and GET. HEAD is safelisted.
	corsAllowMethods = "GET, POST, PUT, PATCH, DELETE"
	// What a front-end app sends: JSON bodies, the CSRF header, its own request id, idempotent creates.
	corsAllowHeaders = "Content-Type, X-CSRF, X-Request-Id, Idempotency-Key"
	// What it may read besides the safelisted headers: the id to quote to support, when to retry, and
	// where a created payment lives.
	corsExposeHeaders = "X-Request-Id, Retry-After, Location"
)

// cors runs first on /api/v1, before any session or store work: it answers preflights itself, refuses
// calls from origins that are not allowed, and marks answers to allowed ones readable, errors included.
func (s *Server) cors(c *fiber.Ctx) error {
	c.Vary(fiber.HeaderOrigin)
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || origin == s.cfg.Origin() {
		// Not a cross-origin browser call: a same-origin page (browsers send Origin on its POSTs too), or
		// a program that is no browser and is not bound by CORS anyway.
		return c.Next()
	}
	preflight := c.Method() == fiber.MethodOptions && c.Get(fiber.HeaderAccessControlRequestMethod) != ""
	if preflight {
		c.Vary(fiber.HeaderAccessControlRequestMethod, fiber.HeaderAccessControlRequestHeaders)
	}
	if !s.web.corsOrigins.allows(origin) {
		return s.refuseOrigin(c, origin, preflight)
	}
	setCORSHeaders(&c.Response().Header, origin)
	if !preflight {
		return c.Next()
	}
	h := &c.Response().Header
	h.Set(fiber.HeaderAccessControlAllowMethods, corsAllowMethods)
	h.Set(fiber.HeaderAccessControlAllowHeaders, corsAllowHeaders)
	// Always sent, 0 included: without the header browsers cache for 5 s, which is not what 0 asks for.
	h.Set(fiber.HeaderAccessControlMaxAge, strconv.Itoa(int(s.cfg.CORSMaxAge/time.Second)))
	// Private Network Access: a public page calling a server on a private address is asked about first.
	// Only the demo (a laptop's localhost) has a reason to say yes; a deployed server is reached over its
	// public URL.
	if s.cfg.Demo && strings.EqualFold(c.Get("Access-Control-Request-Private-Network"), "true") {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	return c.SendStatus(http.StatusNoContent)
}

func setCORSHeaders(h *fasthttp.ResponseHeader, origin string) {
	h.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	h.Set(fiber.HeaderAccessControlAllowCredentials, "true")
	h.Set(fiber.HeaderAccessControlExposeHeaders, corsExposeHeaders)
}

// refuseOrigin answers a call from an origin that is not allowed: no CORS headers (the page cannot read
// the answer), nothing done whatever the method (a GET could still refresh a token or call Bead), logged
// with the origin and counted. A browser page can only get here through fetch, never by a navigation or
// a form, which send no Origin on GET and go to the pages, not /api.
func (s *Server) refuseOrigin(c *fiber.Ctx, origin string, preflight bool) error {
	kind := "request"
	if preflight {
		kind = "preflight"
	}
	s.web.metrics.corsRefusals.WithLabelValues(kind).Inc()
	s.log.Warn("cross-origin call refused: origin not in CORS_ALLOWED_ORIGINS",
		"requestId", requestIDOf(c), "origin", logSafe(origin), "kind", kind,
		"method", utils.CopyString(c.Method()), "path", c.Path())
	return &Problem{Status: http.StatusForbidden, Cause: CauseCORSOriginNotAllowed, Title: "Origin not allowed",
		Detail: "This API does not accept calls from pages on " + logSafe(origin) + ": the origin is not in CORS_ALLOWED_ORIGINS. Nothing was done."}
}

// stampAPIAnswers makes two promises hold for every /api answer, also those Fiber writes before any
// handler runs (an unknown method; a body over the limit, which fasthttp hands to its ErrorHandler
// instead): it varies by Origin, so no cache hands one origin's answer to another, and an allowed origin
// can read it.
func (s *Server) stampAPIAnswers() {
	srv := s.app.Server()
	next := srv.Handler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		next(fctx)
		s.stampAPIAnswer(fctx)
	}
	if onError := srv.ErrorHandler; onError != nil {
		srv.ErrorHandler = func(fctx *fasthttp.RequestCtx, err error) {
			onError(fctx, err)
			s.stampAPIAnswer(fctx)
		}
	}
}

func (s *Server) stampAPIAnswer(fctx *fasthttp.RequestCtx) {
	if !bytes.HasPrefix(fctx.Path(), []byte("/api/")) {
		return
	}
	h := &fctx.Response.Header
	if vary := h.Peek(fiber.HeaderVary); !hasToken(vary, fiber.HeaderOrigin) {
		if len(vary) == 0 {
			h.Set(fiber.HeaderVary, fiber.HeaderOrigin)
		} else {
			h.Set(fiber.HeaderVary, string(vary)+", "+fiber.HeaderOrigin)
		}
	}
	origin := string(fctx.Request.Header.Peek(fiber.HeaderOrigin))
	if origin != "" && len(h.Peek(fiber.HeaderAccessControlAllowOrigin)) == 0 && s.web.corsOrigins.allows(origin) {
		setCORSHeaders(h, origin)
	}
}

// hasToken reports whether a comma-separated header value holds token (case-insensitively).
func hasToken(value []byte, token string) bool {
	for part := range strings.SplitSeq(string(value), ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// originList is an allow-list of origins as config.CheckOriginPattern admits them (CORS_ALLOWED_ORIGINS,
// FRAME_ANCESTORS): exact origins, and https://*.example.com[:port] patterns that match one or more labels
// below example.com, never example.com itself, with scheme and port exact.
type originList struct {
	exact    map[string]bool
	patterns []originPattern
	// sources are the entries in their canonical form, for a CSP frame-ancestors directive.
	sources []string
}

type originPattern struct {
	scheme string // "https"
	domain string // "example.com"
	port   string // "" for the scheme's default
}

// newOriginList reads validated entries; one it cannot read is left out (Validate has refused it).
func newOriginList(entries []string) originList {
	l := originList{exact: map[string]bool{}}
	for _, e := range entries {
		u, err := url.Parse(strings.ToLower(strings.TrimSpace(e)))
		if err != nil || u.Host == "" {
			continue
		}
		host, port := u.Hostname(), u.Port()
		if port == defaultPort(u.Scheme) {
			port = "" // browsers never write the default port in an Origin
		}
		if domain, ok := strings.CutPrefix(host, "*."); ok {
			l.patterns = append(l.patterns, originPattern{scheme: u.Scheme, domain: domain, port: port})
		} else {
			l.exact[u.Scheme+"://"+hostPort(u.Host, port)] = true
		}
		l.sources = append(l.sources, u.Scheme+"://"+hostPort(u.Host, port))
	}
	return l
}

func (l originList) empty() bool { return len(l.exact) == 0 && len(l.patterns) == 0 }

// allows reports whether origin, as a browser sends it, is on the list. Anything a browser would not
// send (a path, user info, a default port, capitals, "null") is refused without further thought.
func (l originList) allows(origin string) bool {
	if origin == "" || len(origin) > 300 || origin == "null" {
		return false
	}
	if l.exact[origin] {
		return true
	}
	if len(l.patterns) == 0 || origin != strings.ToLower(origin) {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
		u.Scheme+"://"+u.Host != origin {
		return false
	}
	host, port := u.Hostname(), u.Port()
	if port != "" && port == defaultPort(u.Scheme) {
		return false
	}
	for _, p := range l.patterns {
		if u.Scheme != p.scheme || port != p.port {
			continue
		}
		sub, ok := strings.CutSuffix(host, "."+p.domain)
		if ok && validLabels(sub) {
			return true
		}
	}
	return false
}

// validLabels reports whether s is one or more DNS labels ("shop", "eu.shop"): letters, digits and
// inner hyphens, 1 to 63 characters each. It is what keeps "*.example.com" from matching the apex or
// anything that merely ends in the same characters.
func validLabels(s string) bool {
	if s == "" {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '-' {
				return false
			}
		}
	}
	return true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// hostPort is u.Host with its port replaced by port ("" drops it).
func hostPort(host, port string) string {
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	if port == "" {
		return host
	}
	return host + ":" + port
}
