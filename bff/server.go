// Package bff is beadbff's web server: the Fiber app, its routes and middleware, the staff pages, the JSON
// API, and the one place where errors become problem+json or an error page. It calls Bead only through
// package bead, keeps state only through package session, and renders only through package views.
package bff

import (
	"context"
	"errors"
	lru "github.com/hashicorp/golang-lru/v2"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
	"beadbff/views"
)

// beadAPI is what the server needs of Bead; *bead.Client implements it.
type beadAPI interface {
	Login(ctx context.Context, username, password string) (*bead.Token, error)
	Refresh(ctx context.Context, refreshToken string) (*bead.Token, error)
	Logout(ctx context.Context, refreshToken string) error
	Discover(ctx context.Context) error
	CreatePayment(ctx context.Context, accessToken string, req bead.CreatePaymentRequest, idempotencyKey string) (*bead.CreatedPayment, error)
	Tracking(ctx context.Context, accessToken, trackingID string) (*bead.PaymentStatus, error)
	Probe(ctx context.Context, accessToken string) error
}

// Deps is everything the server is built from.
type Deps struct {
	Config   *config.Config
	Logger   *slog.Logger
	Store    session.Store
	Bead     beadAPI
	Registry *prometheus.Registry // metrics are registered here and served on /metrics
	Now      func() time.Time     // nil: time.Now
	// DemoCredentials are shown on the login page in demo mode.
	DemoCredentials []views.DemoCredential
}

// Server is the assembled web server.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	store   session.Store
	bead    beadAPI
	now     func() time.Time
	metrics *metrics
	demo    []views.DemoCredential
	app     *fiber.App

	tokens    *tokenCache                   // each terminal's token as this process last read or wrote it
	skewLog   *logGate                      // the clock-skew warning of touch, once a minute
	touched   *lru.Cache[string, time.Time] // when this process last touched each session (touch)
	payments  *paymentCache                 // the payment records this process last read or wrote (paymentStatus)
	refreshes singleflight.Group            // one refresh at a time per terminal's token, in this process
	ready     readiness
	web       *browserSurface // CORS, framing, login form tokens and throttling, embedded checkouts
	hooks     *webhooks       // Bead's status callbacks and the live updates of open pages
}

// bodyLimit bounds every request body: payments and logins are small.
const bodyLimit = 64 << 10

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	if d.Config == nil || d.Store == nil || d.Bead == nil {
		return nil, errors.New("bff: Config, Store and Bead are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:     d.Config,
		log:     d.Logger,
		store:   d.Store,
		bead:    d.Bead,
		now:     d.Now,
		metrics: newMetrics(d.Registry),
		demo:    d.DemoCredentials,
		tokens:  newTokenCache(),
	}
	s.payments = newPaymentCache(d.Now)
	s.skewLog = newLogGate(1, time.Minute)
	s.touched, _ = lru.New[string, time.Time](maxTouchedSessions) // an error only for a size below 1
	s.ready = readiness{ttl: 2 * time.Second, mu: make(chan struct{}, 1)}
	s.web = newBrowserSurface(d.Config, d.Bead, d.Registry, d.Now)
	s.hooks = newWebhooks(s, d.Registry)
	s.app = fiber.New(fiber.Config{
		AppName:               "beadbff",
		ErrorHandler:          s.errorHandler,
		BodyLimit:             bodyLimit,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		// Fiber's default would answer unknown methods with 405 before our handlers see them; keep the
		// routing strict so the surface is exactly routes.go.
		StrictRouting: true,
		CaseSensitive: true,
	})
	s.routes(d.Registry)
	s.stampEveryAnswer()
	s.stampAPIAnswers()
	return s, nil
}

// stampEveryAnswer gives an X-Request-Id to the few answers Fiber writes before any handler runs (an
// unknown HTTP method, for one), so that every answer, without exception, can be traced.
func (s *Server) stampEveryAnswer() {
	srv := s.app.Server()
	next := srv.Handler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		next(fctx)
		if len(fctx.Response.Header.Peek("X-Request-Id")) == 0 {
			fctx.Response.Header.Set("X-Request-Id", uuid.NewString())
		}
	}
}

// App is the Fiber app, for tests (app.Test) and for Listen.
func (s *Server) App() *fiber.App { return s.app }

// Shutdown stops accepting connections and waits up to timeout for requests in flight. The live event
// streams end first: they would otherwise hold their connections open for the whole timeout.
func (s *Server) Shutdown(timeout time.Duration) error {
	s.hooks.close()
	return s.app.ShutdownWithTimeout(timeout)
}

// readiness caches the last /readyz probe so a burst of probes does not become a burst of Bead calls.
type readiness struct {
	ttl time.Duration
	mu  chan struct{} // a one-slot semaphore guarding at and err
	at  time.Time
	err error
}

func (s *Server) checkReady(ctx context.Context) error {
	s.ready.mu <- struct{}{}
	defer func() { <-s.ready.mu }()
	if now := s.now(); now.Sub(s.ready.at) < s.ready.ttl {
		return s.ready.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := s.store.Ping(ctx)
	if err != nil {
		err = &Problem{Status: http.StatusServiceUnavailable, Cause: CauseSessionStoreUnavailable, Title: "Session store unavailable", Err: err}
	} else if berr := s.bead.Discover(ctx); berr != nil {
		err = &Problem{Status: http.StatusServiceUnavailable, Cause: CauseBeadUnavailable, Title: "Bead's identity realm unreachable", Err: berr}
	}
	s.ready.at, s.ready.err = s.now(), err
	return err
}

// maxTouchedSessions bounds touch's memory of which sessions this process touched (about 100 bytes
// each); a session it forgot is at worst touched once more.
const maxTouchedSessions = 50000
