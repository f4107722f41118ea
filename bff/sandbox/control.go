package sandbox

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// This file is /_sandbox/: the controls tests and demos use to act as the shopper, inject faults
// and read counters. Nothing like it exists on Bead; faults never apply to it. Its bodies are
// plain JSON, with {"error": "..."} on failure.

func (s *Sandbox) controlRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sandbox/terminals", s.handleControlTerminals)
	mux.HandleFunc("POST /_sandbox/payments/{trackingId}/status", s.handleControlStatus)
	mux.HandleFunc("GET /_sandbox/faults", s.handleGetFaults)
	mux.HandleFunc("POST /_sandbox/faults", s.handlePostFault)
	mux.HandleFunc("DELETE /_sandbox/faults", s.handleDeleteFaults)
	mux.HandleFunc("GET /_sandbox/stats", s.handleStats)
	mux.HandleFunc("POST /_sandbox/reset-stats", s.handleResetStats)
	mux.HandleFunc("GET /_sandbox/config", s.handleGetConfig)
	mux.HandleFunc("POST /_sandbox/config", s.handlePostConfig)
	mux.HandleFunc("GET /_sandbox/webhooks", s.handleWebhookLog)
	return mux
}

func controlJSON(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, "application/json; charset=utf-8", v)
}

func controlError(w http.ResponseWriter, status int, format string, args ...any) {
	controlJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// decodeControl reads a control body strictly: an unknown field is a typo in a test, and
// silently ignoring it would make the test pass for the wrong reason.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		controlError(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

func (s *Sandbox) handleControlTerminals(w http.ResponseWriter, r *http.Request) {
	controlJSON(w, http.StatusOK, s.Terminals())
}

// handleControlStatus moves a payment as if the shopper had acted, and sends its webhook.
// Posting the status the payment already has re-sends that webhook: Bead's retries can deliver
// one change twice, and receivers must dedupe.
func (s *Sandbox) handleControlStatus(w http.ResponseWriter, r *http.Request) {
	var req struct {
		StatusCode json.RawMessage `json:"statusCode"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	to, ok := canonicalStatus(strings.Trim(string(req.StatusCode), `"`))
	if !ok {
		controlError(w, http.StatusBadRequest, "unknown statusCode %s: want one of created, processing, completed, underpaid, overpaid, expired, invalid, cancelled, fullyRefunded, partiallyRefunded", req.StatusCode)
		return
	}
	s.mu.Lock()
	p := s.state.payments[strings.ToLower(r.PathValue("trackingId"))]
	if p == nil {
		s.mu.Unlock()
		controlError(w, http.StatusNotFound, "no payment with trackingId %q", r.PathValue("trackingId"))
		return
	}
	if p.status != to && !canMove(p.status, to) {
		from := p.status
		s.mu.Unlock()
		controlError(w, http.StatusConflict, "payment is %s and cannot become %s", from, to)
		return
	}
	n, targets := s.state.changeStatusLocked(p, to)
	s.mu.Unlock()
	s.sendWebhooks(n, targets)
	writeBody(w, http.StatusOK, "application/json; charset=utf-8", n.body)
}

func (s *Sandbox) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.state.faults.view()
	s.mu.Unlock()
	controlJSON(w, http.StatusOK, v)
}

func (s *Sandbox) handlePostFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind    string `json:"kind"`
		Count   int    `json:"count"`
		DelayMs int64  `json:"delayMs"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	counted := countedFaults[req.Kind]
	if !counted && req.Kind != faultExpireTokens && req.Kind != faultRevokeRefreshTokens {
		controlError(w, http.StatusBadRequest, "unknown fault kind %q: see GET /_sandbox/faults for the kinds", req.Kind)
		return
	}
	if req.Count < 0 || req.DelayMs < 0 {
		controlError(w, http.StatusBadRequest, "count and delayMs must not be negative")
		return
	}
	delay := time.Duration(req.DelayMs) * time.Millisecond
	if delay > maxSlowDelay {
		controlError(w, http.StatusBadRequest, "delayMs must be at most %d", maxSlowDelay.Milliseconds())
		return
	}

	s.mu.Lock()
	f := &s.state.faults
	switch req.Kind {
	case faultExpireTokens:
		f.accessCutoff = s.now()
	case faultRevokeRefreshTokens:
		f.refreshCutoff = s.now()
	default:
		f.remaining[req.Kind] = max(req.Count, 1) // "the next call" when no count is given
		switch req.Kind {
		case faultSlow:
			f.slowDelay = cmp.Or(delay, defaultSlowDelay)
		case faultSlowToken:
			f.slowTokenDelay = cmp.Or(delay, defaultSlowDelay)
		}
	}
	v := f.view()
	s.mu.Unlock()
	s.log.Info("sandbox fault injected", "kind", req.Kind, "count", req.Count, "delayMs", req.DelayMs)
	controlJSON(w, http.StatusOK, v)
}

// handleDeleteFaults ends every fault: pending counts, and the expiry and revocation cut-offs
// (tokens they had ended work again, as if the fault had never been injected).
func (s *Sandbox) handleDeleteFaults(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.state.faults = newFaults()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) handleStats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.state.stats.view()
	s.mu.Unlock()
	controlJSON(w, http.StatusOK, v)
}

func (s *Sandbox) handleResetStats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.state.stats = newStats()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// configView is the JSON of /_sandbox/config. The signing secret is write-only here: Bead's own
// PUT /Terminals/{terminalId}/webhook is where a client learns it.
type configView struct {
	AccessTokenTTL   string           `json:"accessTokenTtl"`
	RefreshTokenTTL  string           `json:"refreshTokenTtl"`
	PaymentURLsShape PaymentURLsShape `json:"paymentUrlsShape"`
	StatusCodeFormat StatusCodeFormat `json:"statusCodeFormat"`
	WebhookURL       string           `json:"webhookUrl"`
}

func (c runtimeConfig) view() configView {
	return configView{
		AccessTokenTTL:   c.accessTTL.String(),
		RefreshTokenTTL:  c.refreshTTL.String(),
		PaymentURLsShape: c.paymentURLsShape,
		StatusCodeFormat: c.statusCodeFormat,
		WebhookURL:       c.webhookURL,
	}
}

func (s *Sandbox) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.state.cfg.view()
	s.mu.Unlock()
	controlJSON(w, http.StatusOK, v)
}

// handlePostConfig changes knobs at run time; fields left out keep their value. Token
// lifetimes apply to tokens issued from now on.
func (s *Sandbox) handlePostConfig(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AccessTokenTTL   *string           `json:"accessTokenTtl"`  // Go duration, "90s"
		RefreshTokenTTL  *string           `json:"refreshTokenTtl"` // Go duration
		PaymentURLsShape *PaymentURLsShape `json:"paymentUrlsShape"`
		StatusCodeFormat *StatusCodeFormat `json:"statusCodeFormat"`
		WebhookURL       *string           `json:"webhookUrl"`    // the terminals' default
		WebhookSecret    *string           `json:"webhookSecret"` // base64, to test rotation
	}
	if !decodeControl(w, r, &req) {
		return
	}
	// Parse first, then apply under one lock, so concurrent updates cannot undo each other.
	var accessTTL, refreshTTL time.Duration
	var secret []byte
	var err error
	if req.AccessTokenTTL != nil {
		if accessTTL, err = time.ParseDuration(*req.AccessTokenTTL); err != nil {
			controlError(w, http.StatusBadRequest, "accessTokenTtl: %v", err)
			return
		}
	}
	if req.RefreshTokenTTL != nil {
		if refreshTTL, err = time.ParseDuration(*req.RefreshTokenTTL); err != nil {
			controlError(w, http.StatusBadRequest, "refreshTokenTtl: %v", err)
			return
		}
	}
	if req.WebhookSecret != nil {
		if secret, err = base64.StdEncoding.DecodeString(*req.WebhookSecret); err != nil || len(secret) == 0 {
			controlError(w, http.StatusBadRequest, "webhookSecret: want non-empty standard base64")
			return
		}
	}

	s.mu.Lock()
	next := s.state.cfg
	if req.AccessTokenTTL != nil {
		next.accessTTL = accessTTL
	}
	if req.RefreshTokenTTL != nil {
		next.refreshTTL = refreshTTL
	}
	if req.PaymentURLsShape != nil {
		next.paymentURLsShape = *req.PaymentURLsShape
	}
	if req.StatusCodeFormat != nil {
		next.statusCodeFormat = *req.StatusCodeFormat
	}
	if req.WebhookURL != nil {
		next.webhookURL = *req.WebhookURL
	}
	if secret != nil {
		next.webhookSecret = secret
	}
	err = next.validate()
	if err == nil {
		s.state.cfg = next
	}
	s.mu.Unlock()
	if err != nil {
		controlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	controlJSON(w, http.StatusOK, next.view())
}

func (s *Sandbox) handleWebhookLog(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	log := append([]deliveryRecord{}, s.state.webhookLog...)
	s.mu.Unlock()
	controlJSON(w, http.StatusOK, log)
}
