package bff

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"beadbff/session"
	"beadbff/views"
)

// toProblem is the one table that turns an error into what the client is shown.
func toProblem(err error) *Problem {
	if p, ok := asProblem(err); ok {
		return p
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusNotFound:
			return notFound("This page")
		case http.StatusRequestEntityTooLarge:
			return &Problem{Status: fe.Code, Cause: CauseInvalidRequest, Title: "Request too large",
				Detail: "The request body is larger than " + strconv.Itoa(bodyLimit>>10) + " KiB."}
		case http.StatusMethodNotAllowed:
			return &Problem{Status: fe.Code, Cause: CauseInvalidRequest, Title: "Method not allowed"}
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return &Problem{Status: fe.Code, Cause: CauseInvalidRequest, Title: http.StatusText(fe.Code), Detail: fe.Message}
		}
	}
	if errors.Is(err, session.ErrUnavailable) {
		return storeUnavailable(err)
	}
	return &Problem{Status: http.StatusInternalServerError, Cause: CauseInternal, Title: "Internal error",
		Detail: "Something went wrong on our side. It has been logged with the request id below.", Err: err}
}

// errorHandler renders err as problem+json for /api and as a page for everything else, and logs what
// deserves it. It is Fiber's ErrorHandler and is also called by accessLog.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	rid := requestIDOf(c)
	if rid == "" && errors.Is(err, fiber.ErrRequestTimeout) && len(c.Request().Header.RawHeaders()) == 0 {
		// A connection that never sent a request (a browser's preconnect, a health checker's bare TCP
		// check) timed out. There is no request to log, refuse or explain: Fiber's bare 408 and nothing else.
		return c.SendStatus(http.StatusRequestTimeout)
	}
	p := toProblem(err)
	if rid == "" {
		// Fiber answers some errors (a body over the limit) before any middleware runs.
		rid = uuid.NewString()
		c.Locals(localRequestID, rid)
		c.Set("X-Request-Id", rid)
	}
	attrs := []any{"requestId", rid, "cause", p.Cause, "status", p.Status, "path", loggedPath(c.Path())}
	if p.Err != nil {
		attrs = append(attrs, "err", p.Err.Error())
	}
	switch {
	case p.Status >= 500:
		s.log.Error("request failed", attrs...)
	case p.Cause != CauseNotFound && p.Cause != CauseNotAuthenticated:
		s.log.Info("request refused", attrs...)
	}
	// A 401 leaves the cookie alone: the session behind it is gone, and the next page load, finding the
	// cookie stale, clears it and can tell the person their session ended.
	setRetryAfter(c, p.RetryAfter)
	c.Set("Cache-Control", "no-store")
	if isAPI(c) {
		return s.writeProblem(c, p, rid)
	}
	return s.renderErrorPage(c, p, rid)
}

// isAPI: the answer is for a program (the JSON API, Bead's webhooks), so errors are problem+json.
func isAPI(c *fiber.Ctx) bool {
	p := c.Path()
	return strings.HasPrefix(p, "/api/") || p == "/webhooks/bead"
}

func (s *Server) helpURL(cause string) string {
	return s.cfg.Origin() + "/help/403#" + cause
}

func (s *Server) writeProblem(c *fiber.Ctx, p *Problem, rid string) error {
	body := problemBody{
		Type:      s.helpURL(p.Cause),
		Title:     p.Title,
		Status:    p.Status,
		Detail:    p.Detail,
		Cause:     p.Cause,
		RequestID: rid,
		HelpURL:   s.helpURL(p.Cause),
		Errors:    p.Fields,
	}
	if b := p.Bundle; b != nil {
		body.Support = &supportBody{Timestamp: b.Timestamp, Path: b.Path, RequestID: b.RequestID, JWTPrefix: b.JWTPrefix, Email: b.Email, Note: b.Note}
	}
	if inc := p.Incident; inc != nil {
		body.Confidence, body.Checks = inc.Diagnosis.Confidence, inc.Diagnosis.Checks
		if p.IncidentID != "" {
			body.IncidentID, body.IncidentURL = p.IncidentID, s.cfg.Origin()+"/help/incidents/"+p.IncidentID
		}
	}
	c.Status(p.Status)
	if err := c.JSON(body); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return nil
}

func (s *Server) renderErrorPage(c *fiber.Ctx, p *Problem, rid string) error {
	if p.Incident != nil {
		return render(c, p.Status, views.Incident(s.incidentView(c, p.Incident, p.IncidentID)))
	}
	v := views.ErrorView{
		Page:       s.page(c, p.Title),
		Status:     p.Status,
		Heading:    p.Title,
		Detail:     p.Detail,
		Cause:      p.Cause,
		RequestID:  rid,
		LoginAgain: p.LoginAgain,
		Bundle:     p.Bundle,
	}
	if p.Cause != CauseNotFound && p.Cause != CauseInternal {
		v.HelpURL = "/help/403#" + p.Cause
	}
	if p.Status == http.StatusUnauthorized {
		v.Staff = nil // the session is gone
	}
	return render(c, p.Status, views.Error(v))
}

// render writes a templ component as the HTML answer.
func render(c *fiber.Ctx, status int, comp templ.Component) error {
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return comp.Render(c.UserContext(), c.Response().BodyWriter())
}

// page is the common part of every page's view model.
func (s *Server) page(c *fiber.Ctx, title string) views.Page {
	p := views.Page{Title: title, Nonce: nonceOf(c), Demo: s.cfg.Demo}
	if sess := sessionOf(c); sess != nil {
		p.CSRFToken = sess.CSRFToken
		p.Staff = &views.Staff{TerminalID: sess.TerminalID, MerchantID: sess.MerchantID, Username: sess.Username}
	}
	return p
}

func (s *Server) apiNotFound(c *fiber.Ctx) error { return notFound("This API endpoint") }

func (s *Server) pageNotFound(c *fiber.Ctx) error {
	// The 404 page shows who is logged in, so load the session (only on misses).
	if err := s.loadSession(c); err != nil {
		return err
	}
	return notFound("This page")
}

// slogLevelFor is the level of a request's log line: server errors stand out, the rest is info.
func slogLevelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
