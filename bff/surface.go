package bff

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"beadbff/config"
)

// browserSurface is what the browser-facing rules need beyond the core server: the CORS and framing
// allow-lists, the key of the login form's pre-session token, the service account that keeps embedded
// checkouts current, and the metrics of refusals. It is built once in New from the validated config.
type browserSurface struct {
	corsOrigins    originList
	frameAncestors originList
	// loginKeys sign the login form's pre-session token: derived from SESSION_KEYS (the first signs, all
	// verify), or one random key for this process when none are configured (demo mode, where sessions
	// end with the process anyway).
	loginKeys [][]byte
	service   *serviceAccount // nil without BEAD_TERMINAL_USERNAME
	polls     pollThrottle
	metrics   *browserMetrics
}

func newBrowserSurface(cfg *config.Config, b beadAPI, reg prometheus.Registerer, now func() time.Time) *browserSurface {
	w := &browserSurface{
		corsOrigins:    newOriginList(cfg.CORSAllowedOrigins),
		frameAncestors: newOriginList(cfg.FrameAncestors),
		metrics:        newBrowserMetrics(reg),
		polls:          pollThrottle{every: embedPollEvery, last: map[string]time.Time{}},
	}
	for _, k := range cfg.SessionKeys {
		w.loginKeys = append(w.loginKeys, deriveKey(k, "beadbff login form token v1"))
	}
	if len(w.loginKeys) == 0 {
		k := make([]byte, 32)
		_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
		w.loginKeys = [][]byte{k}
	}
	if cfg.TerminalUsername != "" && cfg.TerminalPassword != "" {
		w.service = newServiceAccount(cfg.TerminalUsername, cfg.TerminalPassword)
	}
	return w
}

// deriveKey gives each use of a session key its own key, so that a token signed for one purpose can never
// be passed off as another's.
func deriveKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// browserMetrics count what the browser-facing rules refused or did.
type browserMetrics struct {
	corsRefusals   *prometheus.CounterVec
	loginThrottled *prometheus.CounterVec
	embedStatus    *prometheus.CounterVec
}

func newBrowserMetrics(reg prometheus.Registerer) *browserMetrics {
	m := &browserMetrics{
		corsRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_cors_refusals_total",
			Help: "Cross-origin calls to /api refused because their Origin is not in CORS_ALLOWED_ORIGINS, by kind (preflight, request).",
		}, []string{"kind"}),
		loginThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_login_throttled_total",
			Help: "Logins refused with 429 before reaching Bead, by the limit that was full (username, address).",
		}, []string{"by"}),
		embedStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_embed_status_reads_total",
			Help: "Status reads of embedded checkouts, by source (stored, bead, bead_failed).",
		}, []string{"source"}),
	}
	reg.MustRegister(m.corsRefusals, m.loginThrottled, m.embedStatus)
	return m
}

// logSafe bounds a header value for a log line (slog escapes it; this keeps a hostile one short).
func logSafe(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// htmlNoStore makes every HTML answer Cache-Control: no-store unless its handler chose otherwise. Pages
// carry a per-response CSP nonce, and most the session's terminal and form token: a stored copy would
// replay both to whoever is served it next. (Error pages get the same from errorHandler.)
func (s *Server) htmlNoStore(c *fiber.Ctx) error {
	err := c.Next()
	h := &c.Response().Header
	if len(h.Peek(fiber.HeaderCacheControl)) == 0 && bytes.HasPrefix(h.ContentType(), []byte("text/html")) {
		h.Set(fiber.HeaderCacheControl, "no-store")
	}
	return err
}
