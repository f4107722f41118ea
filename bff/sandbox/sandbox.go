// Package sandbox is a stand-in for Bead that runs in memory: a Keycloak-like identity service
// with the realms nonprod and prod, the payments API, the hosted payment page, the webhook sender
// and the fault injection the product's tests and demo mode need.
//
// It deliberately imports none of the product's packages. It is a second, independent reading of
// Bead's wire format (shared/bead-api.md, part A), so that a misreading in the product's Bead
// client shows up as a failing test instead of being agreed on by both sides. Where Bead's real
// behaviour is known only by analogy (ASP.NET Core behind Keycloak), the sandbox copies what those
// frameworks answer by default, failures included: empty 401 bodies with WWW-Authenticate, bare
// 403s, ProblemDetails with traceId, Keycloak's {error, error_description}.
//
// Everything is served by one http.Handler, and base URLs and token issuers are derived from each
// request's Host, so it works on any address:
//
//	/realms/{nonprod,prod}/...            realm.go    discovery, token, certs, logout, userinfo
//	/payments/crypto, /payments/tracking/{trackingId}, /Payments/{paymentId}/tracking,
//	/Terminals/{terminalId}/webhook, /currencies
//	                                      api.go      the payments API (paths case-insensitive)
//	/pay/{paymentPageId}                  page.go     the hosted payment page
//	/_sandbox/...                         control.go  terminals, status changes, faults, stats, config
//
// Bearer checks are in auth.go, request validation in validation.go, webhooks in webhook.go and
// fault injection in faults.go. State is in memory only and lost when the process ends.
package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configures a Sandbox. The zero value is a working sandbox with Bead's documented
// defaults.
type Options struct {
	// AccessTokenTTL is the access-token lifetime; default 3600 s. Values down to 1 s work
	// (token times are whole seconds, as in Keycloak).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the refresh-token lifetime; default 36000 s.
	RefreshTokenTTL time.Duration
	// WebhookURL receives the status callbacks of every terminal that has not registered its
	// own URL with PUT /Terminals/{terminalId}/webhook. Empty: no terminal default.
	WebhookURL string
	// WebhookSecret is the raw HMAC key webhooks are signed with; its base64 form is the
	// signingSecret the API returns. Nil or empty: 32 random bytes.
	WebhookSecret []byte
	// WebhookRetry is the wait before each retry of a failed delivery; nil: 2, 4, 8, 16, 32 s
	// (so at most six attempts); empty: no retry. Tests pass tiny values.
	WebhookRetry []time.Duration
	// PaymentURLsShape selects which of Bead's three paymentUrls shapes the create answer uses;
	// default PaymentURLsStrings, the newest. It can be changed at run time via /_sandbox/config.
	PaymentURLsShape PaymentURLsShape
	// StatusCodeFormat selects words ("completed") or the legacy numbers (2) for statusCode;
	// default StatusCodeWords.
	StatusCodeFormat StatusCodeFormat
	// Logger receives one line per request and webhook attempt; nil discards.
	Logger *slog.Logger
	// Now is the clock for token times, payment times and webhook timestamps; nil: time.Now.
	Now func() time.Time
	// HTTPClient delivers webhooks; nil: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// PaymentURLsShape is the JSON shape of paymentUrls in the create-payment answer. Bead's docs
// show all three over time; the product must accept each.
type PaymentURLsShape string

const (
	PaymentURLsStrings PaymentURLsShape = "strings" // ["https://…/pay/{id}"], the newest
	PaymentURLsObjects PaymentURLsShape = "objects" // [{"type":"web","url":"…"}]
	PaymentURLsObject  PaymentURLsShape = "object"  // {"type":"web","url":"…"}, the oldest
)

// StatusCodeFormat is how statusCode is written in tracking answers and webhooks.
type StatusCodeFormat string

const (
	StatusCodeWords   StatusCodeFormat = "word"   // "completed", what Bead answers today
	StatusCodeNumbers StatusCodeFormat = "number" // 2, the legacy enum removed in May 2025
)

// Terminal is one seeded Bead terminal and its realm credentials. The credentials are fixed
// sandbox values, safe to show on a demo login page.
type Terminal struct {
	TerminalID   string `json:"terminalId"`
	MerchantID   string `json:"merchantId"`
	Username     string `json:"username"` // the realm login, {terminalId}@beadpay.io
	Password     string `json:"password"`
	Label        string `json:"label"`
	MerchantName string `json:"merchantName"`
}

// usernameSuffix is the domain Bead's realm appends to terminal ids to form login names.
const usernameSuffix = "@beadpay.io"

// seedTerminals returns the fixed terminals: merchant A with two terminals, merchant B with one.
// The ids look like the 24-hex Mongo ObjectIds Bead uses and never change, so demo pages, docs
// and tests can name them.
func seedTerminals() []Terminal {
	type seed struct{ terminal, merchant, password, label, merchantName string }
	seeds := []seed{
		{"5eadbeef00000000000a0001", "5eadbeef0000000000000a01", "sandbox-pass-a1", "Front counter", "Bead Coffee Roasters"},
		{"5eadbeef00000000000a0002", "5eadbeef0000000000000a01", "sandbox-pass-a2", "Web shop", "Bead Coffee Roasters"},
		{"5eadbeef00000000000b0001", "5eadbeef0000000000000b01", "sandbox-pass-b1", "Online store", "Bead Books"},
	}
	out := make([]Terminal, len(seeds))
	for i, s := range seeds {
		out[i] = Terminal{
			TerminalID:   s.terminal,
			MerchantID:   s.merchant,
			Username:     s.terminal + usernameSuffix,
			Password:     s.password,
			Label:        s.label,
			MerchantName: s.merchantName,
		}
	}
	return out
}

// Sandbox is a running Bead stand-in. All its state is in memory behind one mutex; it is safe
// for concurrent use.
type Sandbox struct {
	log        *slog.Logger
	now        func() time.Time
	httpClient *http.Client
	retry      []time.Duration

	signingKey *rsa.PrivateKey // shared by both realms; each realm has its own kid
	refreshKey []byte          // HS512 key of refresh tokens, which only the realm reads
	refreshKid string
	realms     map[string]realm

	terminals  []Terminal
	byID       map[string]Terminal
	byUsername map[string]Terminal // lower-cased login name

	handler http.Handler

	// Webhook deliveries run in goroutines that Close cancels and waits for.
	deliveryCtx    context.Context
	stopDeliveries context.CancelFunc
	deliveries     sync.WaitGroup

	mu    sync.Mutex
	state state // guarded by mu
}

// state is everything that changes after New. It lives behind Sandbox.mu.
type state struct {
	cfg runtimeConfig

	sessions       map[string]*session       // by sid
	refreshTokens  map[string]*refreshRecord // by jti
	accessTokens   map[string]accessRecord   // by jti, for the expire_tokens fault
	sweepAt        int                       // map size that triggers the next sweep
	nonprodIssuers map[string]bool           // every nonprod issuer URL tokens were signed with

	payments      map[string]*payment // by trackingId
	byPaymentID   map[string]*payment
	byPageID      map[string]*payment
	idempotency   map[string]createResult // by terminalId + "\x00" + Idempotency-Key
	terminalHooks map[string]string       // terminalId -> webhook URL registered by PUT

	faults     faults
	stats      stats
	webhookLog []deliveryRecord // the most recent attempts, oldest first
}

// runtimeConfig holds the knobs POST /_sandbox/config may change while running.
type runtimeConfig struct {
	accessTTL        time.Duration
	refreshTTL       time.Duration
	paymentURLsShape PaymentURLsShape
	statusCodeFormat StatusCodeFormat
	webhookURL       string
	webhookSecret    []byte
}

// Defaults from Bead's documentation (bead-api.md part A).
const (
	defaultAccessTTL  = 3600 * time.Second
	defaultRefreshTTL = 36000 * time.Second
	webhookTimeout    = 10 * time.Second
)

var defaultWebhookRetry = []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}

// New builds a sandbox: it generates the realms' RSA key (about 0.1 s) and seeds the terminals.
func New(opts Options) (*Sandbox, error) {
	cfg := runtimeConfig{
		accessTTL:        opts.AccessTokenTTL,
		refreshTTL:       opts.RefreshTokenTTL,
		paymentURLsShape: opts.PaymentURLsShape,
		statusCodeFormat: opts.StatusCodeFormat,
		webhookURL:       opts.WebhookURL,
		webhookSecret:    append([]byte(nil), opts.WebhookSecret...),
	}
	if cfg.accessTTL == 0 {
		cfg.accessTTL = defaultAccessTTL
	}
	if cfg.refreshTTL == 0 {
		cfg.refreshTTL = defaultRefreshTTL
	}
	if cfg.paymentURLsShape == "" {
		cfg.paymentURLsShape = PaymentURLsStrings
	}
	if cfg.statusCodeFormat == "" {
		cfg.statusCodeFormat = StatusCodeWords
	}
	if len(cfg.webhookSecret) == 0 {
		cfg.webhookSecret = make([]byte, 32)
		rand.Read(cfg.webhookSecret)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}

	retry := opts.WebhookRetry
	if retry == nil {
		retry = defaultWebhookRetry
	}
	for _, d := range retry {
		if d < 0 {
			return nil, errors.New("sandbox: WebhookRetry: negative wait")
		}
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("sandbox: generate signing key: %w", err)
	}
	refreshKey := make([]byte, 64)
	rand.Read(refreshKey)

	s := &Sandbox{
		log:        opts.Logger,
		now:        opts.Now,
		httpClient: opts.HTTPClient,
		retry:      append([]time.Duration(nil), retry...),
		signingKey: key,
		refreshKey: refreshKey,
		refreshKid: newUUID(),
		realms:     newRealms(&key.PublicKey),
		terminals:  seedTerminals(),
		byID:       map[string]Terminal{},
		byUsername: map[string]Terminal{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.httpClient == nil {
		s.httpClient = &http.Client{Timeout: webhookTimeout}
	}
	for _, t := range s.terminals {
		s.byID[t.TerminalID] = t
		s.byUsername[strings.ToLower(t.Username)] = t
	}
	s.state = state{
		cfg:            cfg,
		sessions:       map[string]*session{},
		refreshTokens:  map[string]*refreshRecord{},
		accessTokens:   map[string]accessRecord{},
		sweepAt:        sweepMinimum,
		nonprodIssuers: map[string]bool{},
		payments:       map[string]*payment{},
		byPaymentID:    map[string]*payment{},
		byPageID:       map[string]*payment{},
		idempotency:    map[string]createResult{},
		terminalHooks:  map[string]string{},
		faults:         newFaults(),
		stats:          newStats(),
	}
	s.deliveryCtx, s.stopDeliveries = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// validate reports the first knob that Bead could not have.
func (c runtimeConfig) validate() error {
	switch {
	case c.accessTTL < time.Second:
		return fmt.Errorf("access token lifetime %v: must be at least 1s", c.accessTTL)
	case c.refreshTTL < time.Second:
		return fmt.Errorf("refresh token lifetime %v: must be at least 1s", c.refreshTTL)
	}
	switch c.paymentURLsShape {
	case PaymentURLsStrings, PaymentURLsObjects, PaymentURLsObject:
	default:
		return fmt.Errorf("paymentUrls shape %q: want %q, %q or %q", c.paymentURLsShape, PaymentURLsStrings, PaymentURLsObjects, PaymentURLsObject)
	}
	switch c.statusCodeFormat {
	case StatusCodeWords, StatusCodeNumbers:
	default:
		return fmt.Errorf("statusCode format %q: want %q or %q", c.statusCodeFormat, StatusCodeWords, StatusCodeNumbers)
	}
	if c.webhookURL != "" && !isAbsoluteHTTPURL(c.webhookURL) {
		return fmt.Errorf("webhook URL %q: want an absolute http or https URL", c.webhookURL)
	}
	return nil
}

// Handler serves everything on one address: the payments API at the root, the realms under
// /realms/{realm}, hosted payment pages under /pay/ and the controls under /_sandbox/.
func (s *Sandbox) Handler() http.Handler { return s.handler }

// Terminals returns the seeded terminals and their credentials.
func (s *Sandbox) Terminals() []Terminal { return append([]Terminal(nil), s.terminals...) }

// SigningSecret returns the base64 signingSecret webhooks are currently signed with, the value
// PUT /Terminals/{terminalId}/webhook returns. The embedding server needs it to verify callbacks.
func (s *Sandbox) SigningSecret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return base64.StdEncoding.EncodeToString(s.state.cfg.webhookSecret)
}

// Close stops webhook deliveries, including pending retries, and waits for them to end.
func (s *Sandbox) Close() {
	// Cancelled under the lock sendWebhooks holds while it checks and adds, so no delivery
	// starts after Wait begins.
	s.mu.Lock()
	s.stopDeliveries()
	s.mu.Unlock()
	s.deliveries.Wait()
}

func (s *Sandbox) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/realms/", s.realmRoutes())
	mux.Handle("/pay/", s.pageRoutes())
	mux.Handle("/_sandbox/", s.controlRoutes())
	mux.Handle("/", s.apiHandler())
	return mux
}

// baseURL is the sandbox's own origin as the caller sees it. Deriving it per request lets the
// same handler serve on any port, behind httptest or embedded in another server.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func isAbsoluteHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
