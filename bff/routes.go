package bff

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// routes is the whole surface of the server, in one screen.
func (s *Server) routes(reg *prometheus.Registry) {
	app := s.app

	// Every request: an id, a log line and metrics, security headers.
	app.Use(s.requestID, s.accessLog, s.securityHeaders, s.htmlNoStore)

	// Static assets: immutable, content-hashed names.
	app.Get("/static/:name", s.staticAsset)

	// Operations.
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))

	// Pages. Each loads the session if there is one (only pages: /api loads its own, once); pages that need
	// one send the browser to /login.
	sess := s.withOptionalSession
	app.Get("/help/403", sess, s.helpPage)
	app.Get("/help/incidents/:incidentId", sess, s.incidentPage)
	app.Get("/login", sess, s.loginPage)
	app.Post("/login", s.sameOriginForm, s.loginFormToken, sess, s.loginSubmit)
	app.Post("/logout", s.sameOriginForm, sess, s.requirePageSession, s.formToken, s.logoutSubmit)
	app.Get("/", sess, s.requirePageSession, s.dashboardPage)
	app.Get("/payments/new", sess, s.requirePageSession, s.newPaymentPage)
	app.Get("/payments", s.paymentsAddress)
	app.Get("/payments/events", sess, s.requireStreamSession, s.dashboardEvents) // before :trackingId
	app.Post("/payments", s.sameOriginForm, sess, s.requirePageSession, s.formToken, s.createPaymentSubmit)
	app.Get("/payments/:trackingId", sess, s.requirePageSession, s.paymentPage)
	app.Get("/payments/:trackingId/qr.png", sess, s.requirePageSession, s.paymentQR)
	app.Get("/payments/:trackingId/events", sess, s.requireStreamSession, s.paymentEvents)
	app.Get("/webhooks", sess, s.requirePageSession, s.webhooksPage)
	app.Post("/webhooks/register", s.sameOriginForm, sess, s.requirePageSession, s.formToken, s.webhookRegisterSubmit)

	// Bead's signed status callbacks: server to server, so no session, cookie, CSRF or CORS (it is not
	// under /api); the signature is the only credential.
	app.Post("/webhooks/bead", s.webhookReceive)

	// The JSON API for front-end apps.
	// CORS first: preflights are answered, and foreign origins refused, before any session or store work.
	api := app.Group("/api/v1", s.cors, s.apiHeaders, sess, s.csrfHeader)
	api.Post("/session", s.apiLogin)
	api.Get("/session", s.requireAPISession, s.apiWhoAmI)
	api.Delete("/session", s.apiLogout)
	api.Post("/payments", s.requireAPISession, s.apiCreatePayment)
	api.Get("/payments", s.requireAPISession, s.apiListPayments)
	api.Get("/payments/:trackingId", s.requireAPISession, s.apiGetPayment)
	api.Use(s.apiNotFound)

	// The embeddable checkout merchant sites frame: no session, no cookie; only FRAME_ANCESTORS may frame it.
	embed := app.Group("/embed", s.embedHeaders)
	embed.Get("/beadbff-embed.js", s.embedHelperScript)
	embed.Get("/checkout/:checkoutId", s.embedCheckoutPage)
	embed.Get("/checkout/:checkoutId/status", s.embedCheckoutStatus)
	embed.Get("/checkout/:checkoutId/qr.png", s.embedCheckoutQR)
	embed.Get("/checkout/:checkoutId/events", s.embedCheckoutEvents)
	embed.Use(s.embedNotFound)

	// Anything else.
	app.Use(s.pageNotFound)
}
