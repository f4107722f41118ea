package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file is the payments API: its routes, the front-proxy faults in front of it, and the
// handlers. Answers carry what Bead's Kestrel server sends (Server: Kestrel, x-request-id);
// failures keep ASP.NET's shapes, including the empty-bodied 401 and 403.

// apiRoute is one endpoint. Bead runs on ASP.NET Core, whose routing matches literal segments
// case-insensitively (/Payments/crypto is /payments/crypto); http.ServeMux cannot, hence this.
type apiRoute struct {
	method   string
	segments []string // literals, or "{name}" for a path value
	clients  []string // OAuth clients (azp) the endpoint's policy admits
	handle   func(http.ResponseWriter, *http.Request, principal)
}

func route(method, pattern string, clients []string, h func(http.ResponseWriter, *http.Request, principal)) apiRoute {
	return apiRoute{method: method, segments: strings.Split(pattern, "/"), clients: clients, handle: h}
}

// match reports whether path segments fit the route, setting its path values on r if so.
func (rt apiRoute) match(r *http.Request, segs []string) bool {
	if len(segs) != len(rt.segments) {
		return false
	}
	for i, want := range rt.segments {
		if !strings.HasPrefix(want, "{") && !strings.EqualFold(segs[i], want) {
			return false
		}
	}
	for i, want := range rt.segments {
		if strings.HasPrefix(want, "{") {
			r.SetPathValue(strings.Trim(want, "{}"), segs[i])
		}
	}
	return true
}

var (
	terminalClient = []string{clientTerminal}
	// Terminal management is entity management, which Bead documents for bead-integrator;
	// the terminal's own token is admitted too.
	managementClients = []string{clientTerminal, clientIntegrator}
)

func (s *Sandbox) apiRoutes() []apiRoute {
	return []apiRoute{
		route(http.MethodPost, "payments/crypto", terminalClient, s.handleCreatePayment),
		route(http.MethodGet, "payments/tracking/{trackingId}", terminalClient, s.handleTracking),
		route(http.MethodGet, "payments/{paymentId}/tracking", terminalClient, s.handleTracking),
		route(http.MethodGet, "currencies", terminalClient, s.handleCurrencies),
		route(http.MethodPut, "terminals/{terminalId}/webhook", managementClients, s.handlePutWebhook),
		route(http.MethodDelete, "terminals/{terminalId}/webhook", managementClients, s.handleDeleteWebhook),
	}
}

func (s *Sandbox) apiHandler() http.Handler {
	routes := s.apiRoutes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		s.serveAPI(rec, r, routes)
		s.countAPIRequest(rec.code())
		s.log.Info("sandbox api", "method", r.Method, "path", r.URL.Path, "status", rec.code(),
			"requestId", rec.Header().Get("x-request-id"), "durationMs", float64(time.Since(start).Microseconds())/1000)
	})
}

// statusClientClosed is recorded when the caller gave up during a slow fault (nginx's 499).
const statusClientClosed = 499

// stall waits the delay a slow fault set (read under the lock), and reports false if the caller gave up
// first.
func (s *Sandbox) stall(r *http.Request, delayOf func(*faults) time.Duration) bool {
	s.mu.Lock()
	delay := delayOf(&s.state.faults)
	s.mu.Unlock()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Sandbox) serveAPI(w *statusRecorder, r *http.Request, routes []apiRoute) {
	// The faults come first because they sit in front of Bead: a load balancer, a WAF, the
	// API gateway. Each consumes one use only when it actually hits the call.
	if s.takeFault(faultSlow) && !s.stall(r, func(f *faults) time.Duration { return f.slowDelay }) {
		w.status = statusClientClosed
		return
	}
	if s.takeFault(faultWAFBlock) {
		writeWAFBlock(w)
		return
	}

	w.Header().Set("Server", "Kestrel")
	w.Header().Set("x-request-id", requestID(r.Header.Get("x-request-id")))
	if s.takeFault(faultRateLimit) {
		s.writeRateLimited(w, r)
		return
	}
	stripped := s.takeFault(faultStripAuthorization)

	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var allowed []string
	for _, rt := range routes {
		if !rt.match(r, segs) {
			continue
		}
		if rt.method != r.Method {
			allowed = append(allowed, rt.method)
			continue
		}
		p, fail := s.authenticate(r, stripped, rt.clients)
		switch {
		case fail == nil:
			rt.handle(w, r, p)
		case fail.status == http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", fail.challenge)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			// A policy failure (wrong client, no openid) gets the ProblemDetails that
			// AddProblemDetails writes for a bare 403; the terminal-binding 403 inside the
			// handlers stays empty, as Bead's does. The product meets both shapes.
			writeProblem(w, http.StatusForbidden)
		}
		return
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

// wafBlockPage is what an AWS load balancer with a WAF rule answers: HTML, its own Server
// header, none of Bead's headers.
const wafBlockPage = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n"

func writeWAFBlock(w http.ResponseWriter) {
	w.Header().Set("Server", "awselb/2.0")
	writeBody(w, http.StatusForbidden, "text/html", []byte(wafBlockPage))
}

// Bead's documented per-terminal limits for the sandbox, per minute.
const (
	rateLimitWrites = 100
	rateLimitReads  = 1000
)

func (s *Sandbox) writeRateLimited(w http.ResponseWriter, r *http.Request) {
	limit := rateLimitReads
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		limit = rateLimitWrites
	}
	h := w.Header()
	h.Set("Retry-After", "1")
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Second).Unix(), 10))
	writeJSON(w, http.StatusTooManyRequests, "application/json; charset=utf-8", map[string]any{
		"code":    http.StatusTooManyRequests,
		"error":   "rate_limit_exceeded",
		"message": "Too many requests for this terminal. Retry after 1 second.",
	})
}

var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,128}$`)

// requestID echoes the caller's x-request-id when it is sane, else makes one.
func requestID(got string) string {
	if saneRequestID.MatchString(got) {
		return got
	}
	return newUUID()
}

// createResult is a create-payment answer kept for Idempotency-Key replays, byte for byte.
type createResult struct{ body []byte }

type createPaymentResponse struct {
	TrackingID    string `json:"trackingId"`
	PaymentID     string `json:"paymentId"`
	PaymentPageID string `json:"paymentPageId"`
	PaymentURLs   any    `json:"paymentUrls"`
}

const maxIdempotencyKey = 255

func (s *Sandbox) handleCreatePayment(w http.ResponseWriter, r *http.Request, p principal) {
	var req createPaymentRequest
	if !decodeJSONBody(w, r, &req) {
		return
	}
	errs := req.validate()
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		errs.add("Idempotency-Key", "The Idempotency-Key header must be at most 255 characters.")
	}
	if len(errs) > 0 {
		writeValidationProblem(w, errs)
		return
	}
	// Bead's bare 403: the token belongs to another terminal or merchant than the body names.
	if req.TerminalID != p.terminalID || req.MerchantID != p.merchantID {
		w.WriteHeader(http.StatusForbidden)
		return
	}

	pageURL := baseURL(r) + "/pay/"
	s.mu.Lock()
	idemKey := p.terminalID + "\x00" + key
	if prior, ok := s.state.idempotency[idemKey]; ok && key != "" {
		s.mu.Unlock()
		writeBody(w, http.StatusOK, "application/json; charset=utf-8", prior.body)
		return
	}
	pay := &payment{
		id:          randomHex(12),
		trackingID:  randomHex(16),
		pageID:      randomHex(12),
		code:        newPaymentCode(),
		terminal:    s.byID[p.terminalID],
		amount:      req.RequestedAmount.value,
		reference:   req.Reference,
		description: req.Description,
		redirectURL: req.RedirectURL,
		webhookURLs: req.WebhookURLs,
		created:     s.now(),
		status:      statusCreated,
	}
	s.state.payments[pay.trackingID] = pay
	s.state.byPaymentID[pay.id] = pay
	s.state.byPageID[pay.pageID] = pay
	s.state.stats.paymentsCreated++
	body, _ := json.Marshal(createPaymentResponse{
		TrackingID:    pay.trackingID,
		PaymentID:     pay.id,
		PaymentPageID: pay.pageID,
		PaymentURLs:   paymentURLsJSON(s.state.cfg.paymentURLsShape, pageURL+pay.pageID),
	})
	if key != "" {
		s.state.idempotency[idemKey] = createResult{body: body}
	}
	s.mu.Unlock()
	writeBody(w, http.StatusOK, "application/json; charset=utf-8", body)
}

// handleTracking answers both status paths: by trackingId (the documented one) and by paymentId
// (the newest docs). Ids are hex, which Bead parses case-insensitively.
func (s *Sandbox) handleTracking(w http.ResponseWriter, r *http.Request, p principal) {
	s.mu.Lock()
	var pay *payment
	if id := r.PathValue("trackingId"); id != "" {
		pay = s.state.payments[strings.ToLower(id)]
	} else {
		pay = s.state.byPaymentID[strings.ToLower(r.PathValue("paymentId"))]
	}
	var body []byte
	if pay != nil && pay.terminal.TerminalID == p.terminalID {
		body = pay.statusJSON(s.state.cfg.statusCodeFormat)
	}
	s.mu.Unlock()
	switch {
	case pay == nil:
		writeProblem(w, http.StatusNotFound)
	case body == nil:
		w.WriteHeader(http.StatusForbidden) // another terminal's payment: Bead's bare 403
	default:
		writeBody(w, http.StatusOK, "application/json; charset=utf-8", body)
	}
}

func (s *Sandbox) handleCurrencies(w http.ResponseWriter, r *http.Request, p principal) {
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", []currency{currencyUSD, currencyCAD, currencyBTC, currencyUSDC})
}

// webhookRegistration is the body of PUT /Terminals/{terminalId}/webhook. Older revisions of
// Bead's docs call the field url (or Url); both are read.
type webhookRegistration struct {
	WebhookURL string `json:"webhookUrl"`
	URL        string `json:"url"`
}

func (s *Sandbox) handlePutWebhook(w http.ResponseWriter, r *http.Request, p principal) {
	if r.PathValue("terminalId") != p.terminalID {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	var req webhookRegistration
	if !decodeJSONBody(w, r, &req) {
		return
	}
	target := req.WebhookURL
	if target == "" {
		target = req.URL
	}
	errs := validationErrors{}
	switch {
	case target == "":
		errs.add("WebhookUrl", "The WebhookUrl field is required.")
	case !isAbsoluteHTTPURL(target):
		errs.add("WebhookUrl", "The WebhookUrl field is not a valid fully-qualified http, https, or ftp URL.")
	}
	if len(errs) > 0 {
		writeValidationProblem(w, errs)
		return
	}
	s.mu.Lock()
	s.state.terminalHooks[p.terminalID] = target
	secret := base64.StdEncoding.EncodeToString(s.state.cfg.webhookSecret)
	s.mu.Unlock()
	// Bead generates a signingSecret and returns it here. The sandbox has one secret for all
	// terminals (Options.WebhookSecret), so registering again does not rotate it and a
	// server configured with BEAD_WEBHOOK_SECRET keeps working.
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]string{
		"terminalId":    p.terminalID,
		"webhookUrl":    target,
		"signingSecret": secret,
		"updated":       s.now().UTC().Format(time.RFC3339),
	})
}

func (s *Sandbox) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, p principal) {
	if r.PathValue("terminalId") != p.terminalID {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	s.mu.Lock()
	s.state.terminalHooks[p.terminalID] = "" // explicitly none, even with Options.WebhookURL
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
