package bff

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"beadbff/static"
	"beadbff/views"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	c.Set("Cache-Control", "no-store")
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz says whether this process can serve: its session store and Bead's realm answer.
func (s *Server) readyz(c *fiber.Ctx) error {
	c.Set("Cache-Control", "no-store")
	if err := s.checkReady(c.UserContext()); err != nil {
		p := toProblem(err)
		s.log.Warn("not ready", "cause", p.Cause, "err", err)
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "cause": p.Cause, "detail": p.Title})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// staticAsset serves the embedded assets under content-hashed names, so they can be cached for a year.
func (s *Server) staticAsset(c *fiber.Ctx) error {
	body, ctype, ok := static.Lookup(c.Params("name"))
	if !ok {
		return notFound("This file")
	}
	c.Set("Cache-Control", "public, max-age=31536000, immutable")
	c.Set(fiber.HeaderContentType, ctype)
	return c.Send(body)
}

func (s *Server) helpPage(c *fiber.Ctx) error {
	v := views.HelpView{Page: s.page(c, "Troubleshooting: why a request failed"), SupportEmail: supportEmail}
	v.Causes = helpSections()
	return render(c, http.StatusOK, views.Help(v))
}

// envLabel names the Bead environment in support mails ("[SANDBOX]" or "[PROD]").
func (s *Server) envLabel() string {
	if s.cfg.Demo || strings.Contains(s.cfg.BeadAPIURL, "test") || strings.Contains(s.cfg.BeadIdentityURL, "/nonprod") {
		return "SANDBOX"
	}
	return "PROD"
}

// pathOnly drops scheme, host and query from a URL: the support bundle names the path only.
func pathOnly(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable path)"
	}
	if u.Path == "" {
		return "/"
	}
	return u.EscapedPath()
}

// mailEscape encodes a mailto: subject or body (spaces as %20, as mail programs expect, not "+").
func mailEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
