package bff

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"beadbff/bff/bead"
	"beadbff/session"
)

// Bead's status callbacks, end to end:
//
//  1. POST /webhooks/bead checks the signature over the exact bytes received (package bead), before the
//     body is decompressed or parsed, against BEAD_WEBHOOK_SECRET and the secrets registered from the
//     webhooks page. A refusal is answered 403 with the check that failed, stored in the server-wide
//     refusal log, counted, and changes nothing.
//  2. An accepted change is claimed in the store (SET NX on terminal + tracking id + status): the first
//     delivery is stored durably and queued before the 2xx; a repeat gets 2xx and changes nothing.
//  3. A worker applies it: the payment gets the announced status as PendingStatus (pages show
//     "confirming…"), then one status read from Bead confirms it, and only Bead's answer becomes
//     StatusCode. A final status never goes back to a non-final one.
//  4. Every change reaches open pages through the live hub (events.go), once per process.
//
// The confirming read needs a token of the payment's terminal: the terminal's shared token, which any
// staff login of the terminal keeps, or else the login of the service account of BEAD_TERMINAL_USERNAME
// when it is that terminal's. With neither, the payment stays "confirming…" until a staff page or the API
// reads it, which they do because a pending status is never final.

const (
	webhookWorkers    = 2
	webhookQueueSize  = 256
	webhookLockTTL    = 30 * time.Second // longer than one confirming read (BEAD_TIMEOUT, 10 s)
	webhookSweepEvery = 2 * time.Minute  // looks for changes a crashed process accepted but did not apply
	webhookSweepGrace = time.Minute      // younger events belong to the process that accepted them
	secretCacheTTL    = 10 * time.Second // how soon another process's registration verifies here
	maxWebhookBody    = 1 << 20          // a decompressed body; the raw one is bounded by bodyLimit
)

// confirmRetries are the waits before reading again when Bead's answer does not yet show what the
// webhook announced: Bead's API can lag its own callbacks by tens of seconds.
var confirmRetries = []time.Duration{3 * time.Second, 15 * time.Second, 45 * time.Second}

// Checks of our own, beyond bead.WebhookReason, that a delivery can fail.
const (
	checkSecretOfAnotherTerminal = "secret_of_another_terminal" // signed with a registered secret of another terminal
	checkBodyUnreadable          = "body_unreadable"            // verified, but not a payment status object
	checkEncodingUnsupported     = "content_encoding_unsupported"
)

// webhooks is the server's state for Bead's callbacks and the live updates they drive.
type webhooks struct {
	s       *Server
	hub     *liveHub
	metrics *webhookMetrics
	jobs    chan func(context.Context)

	ctx     context.Context // cancelled by close: ends work in flight
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex // guards closed against enqueue
	closed  bool
	confirm singleflight.Group // one confirming read per payment at a time
	// chains marks the payments whose confirming reads are running or scheduled, so a second viewer,
	// webhook or reconnect joins that chain instead of starting its own: one read per change, not per viewer.
	chains sync.Map

	secretsMu sync.Mutex
	secretsAt time.Time
	secrets   []session.WebhookSecret

	// recordGate throttles the refusals that anyone can cause (no valid MAC) to one log entry per check a
	// minute, so a flood of junk cannot push Bead's own refusals out of the webhooks page's list.
	recordGate *logGate
	// refusalLog bounds the "webhook refused" log lines (refusalLogLimit per check a minute): anyone can
	// send a refused request, a well-formed wrong signature included.
	refusalLog *logGate
}

const refusalLogLimit = 10

// unverifiedChecks are refusals of requests that are not even shaped like a signed delivery: anyone can
// send them, and they say nothing about Bead's own deliveries. (A well-formed signature that does not
// match, the sign of a wrong secret, is always recorded: it is what an operator most needs to see.)
var unverifiedChecks = map[string]bool{
	string(bead.WebhookHeaderMissing): true, string(bead.WebhookHeaderMalformed): true,
	string(bead.WebhookTimestampInvalid): true, string(bead.WebhookSignatureEncoding): true,
	string(bead.WebhookSignatureLength): true,
}

// shouldRecord says whether a refusal goes to the delivery log: a malformed request at most once per
// check a minute, anything else always.
func (w *webhooks) shouldRecord(check string, now time.Time) bool {
	if !unverifiedChecks[check] {
		return true
	}
	ok, _ := w.recordGate.allow(check, now)
	return ok
}

type webhookMetrics struct {
	deliveries    *prometheus.CounterVec
	confirmations *prometheus.CounterVec
	streams       *prometheus.GaugeVec
}

func newWebhooks(s *Server, reg prometheus.Registerer) *webhooks {
	m := &webhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_webhook_deliveries_total",
			Help: "Deliveries to POST /webhooks/bead, by outcome (accepted, duplicate, ignored, refused) and, for a refusal, the check that failed.",
		}, []string{"outcome", "check"}),
		confirmations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_webhook_confirmations_total",
			Help: "Status reads from Bead that confirm a webhook, by outcome (confirmed, not_yet, unconfirmed, failed, no_token, queue_full).",
		}, []string{"outcome"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "beadbff_live_streams",
			Help: "Open server-sent event streams, by page (payment, dashboard, checkout).",
		}, []string{"page"}),
	}
	reg.MustRegister(m.deliveries, m.confirmations, m.streams)
	w := &webhooks{s: s, metrics: m, jobs: make(chan func(context.Context), webhookQueueSize),
		refusalLog: newLogGate(refusalLogLimit, time.Minute), recordGate: newLogGate(1, time.Minute)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.hub = newLiveHub(s.loadLive, liveStoreEvery)
	for range webhookWorkers {
		w.wg.Add(1)
		go w.work()
	}
	w.wg.Add(1)
	go w.sweep()
	return w
}

// close ends the live streams and the workers. Work not done stays pending in the store for the next
// process's sweep.
func (w *webhooks) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.hub.close()
	w.wg.Wait()
}

// enqueue hands job to a worker, or reports that the queue is full (or closed).
func (w *webhooks) enqueue(job func(context.Context)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	select {
	case w.jobs <- job:
		return true
	default:
		return false
	}
}

func (w *webhooks) work() {
	defer w.wg.Done()
	for {
		select {
		case job := <-w.jobs:
			job(w.ctx)
		case <-w.ctx.Done():
			return
		}
	}
}

// sweep re-queues accepted changes that no process applied (it crashed between the 2xx and the work),
// at start and then every webhookSweepEvery.
func (w *webhooks) sweep() {
	defer w.wg.Done()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
		evs, err := w.s.store.PendingWebhookEvents(ctx, w.s.now().Add(-webhookSweepGrace), 500)
		cancel()
		if err != nil && w.ctx.Err() == nil {
			w.s.log.Warn("webhooks: looking for unapplied changes failed", "err", err)
		}
		for _, ev := range evs {
			if !w.enqueue(func(ctx context.Context) { w.apply(ctx, ev) }) {
				break
			}
		}
		timer.Reset(webhookSweepEvery)
	}
}

// verifyKey is one secret a delivery may be signed with: a BEAD_WEBHOOK_SECRET entry (terminalID "")
// or one a terminal registered.
type verifyKey struct {
	key        []byte
	terminalID string
}

// keys returns every secret to verify with. The registered ones are cached for secretCacheTTL: one
// store read per burst of deliveries, not one per delivery. A store that cannot be read leaves the
// configured ones (and the last good list), so a Redis hiccup does not refuse deliveries they verify.
// err is set only when the store failed and nothing else is known to verify with.
func (w *webhooks) keys(ctx context.Context) ([]verifyKey, error) {
	var out []verifyKey
	for _, k := range w.s.cfg.WebhookSecrets {
		out = append(out, verifyKey{key: k})
	}
	registered, err := w.registered(ctx)
	for _, sec := range registered {
		out = append(out, verifyKey{key: sec.Secret, terminalID: sec.TerminalID})
		if len(sec.Previous) > 0 {
			out = append(out, verifyKey{key: sec.Previous, terminalID: sec.TerminalID})
		}
	}
	if len(out) > 0 {
		err = nil
	}
	return out, err
}

func (w *webhooks) registered(ctx context.Context) ([]session.WebhookSecret, error) {
	w.secretsMu.Lock()
	defer w.secretsMu.Unlock()
	if !w.secretsAt.IsZero() && w.s.now().Sub(w.secretsAt) < secretCacheTTL {
		return w.secrets, nil
	}
	list, err := w.s.store.WebhookSecrets(ctx)
	if err != nil {
		w.s.log.Warn("webhooks: registered secrets unreadable; verifying with the others", "err", err)
		return w.secrets, err
	}
	w.secrets, w.secretsAt = list, w.s.now()
	return list, nil
}

// forgetSecrets makes the next delivery read the registered secrets afresh (after a registration).
func (w *webhooks) forgetSecrets() {
	w.secretsMu.Lock()
	w.secretsAt = time.Time{}
	w.secretsMu.Unlock()
}

// pushes reports whether this server can expect Bead's webhooks for the terminal (a secret to verify
// them with exists), so that its pages may rely on pushed updates and poll only as a safety net.
func (w *webhooks) pushes(ctx context.Context, terminalID string) bool {
	if len(w.s.cfg.WebhookSecrets) > 0 {
		return true
	}
	registered, _ := w.registered(ctx)
	for _, sec := range registered {
		if sec.TerminalID == terminalID {
			return true
		}
	}
	return false
}

// webhookProblemBody is the problem+json of a refused delivery: CONTRACT.md's fields plus check, the
// stable name of what failed.
type webhookProblemBody struct {
	problemBody
	Check string `json:"check,omitempty"`
}

// writeWebhookProblem answers a delivery with problem+json. The webhook route is not under /api, so the
// error handler would render an HTML page; Bead's delivery log should show the JSON instead.
func (s *Server) writeWebhookProblem(c *fiber.Ctx, p *Problem, check string) error {
	rid := requestIDOf(c)
	body := webhookProblemBody{problemBody: problemBody{
		Type: s.helpURL(p.Cause), Title: p.Title, Status: p.Status, Detail: p.Detail, Cause: p.Cause,
		RequestID: rid, HelpURL: s.helpURL(p.Cause),
	}, Check: check}
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Status(p.Status)
	if err := c.JSON(body); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return nil
}

// refuseWebhook answers a delivery that failed a check: recorded for the webhooks page, counted, logged
// (never the header, a signature or the body), nothing else stored.
func (s *Server) refuseWebhook(c *fiber.Ctx, status int, cause, check, title, detail string) error {
	h := s.hooks
	d := session.WebhookDelivery{At: s.now().UTC(), RequestID: requestIDOf(c), Outcome: session.DeliveryRefused,
		Check: check, Detail: detail, HTTPStatus: status}
	if h.shouldRecord(check, d.At) {
		if err := s.store.RecordWebhookDelivery(c.UserContext(), d); err != nil {
			s.log.Warn("webhook refusal not recorded", "requestId", d.RequestID, "err", err)
		}
	}
	h.metrics.deliveries.WithLabelValues(session.DeliveryRefused, check).Inc()
	// The request log line of a refusal says nothing the refusal's own line does not, so it is left out,
	// and the refusal's line is held back past refusalLogLimit a minute: a flood writes a few lines, not
	// one or two per request. The metrics count every one.
	c.Locals(localQuietLog, true)
	if ok, held := h.refusalLog.allow(check, d.At); ok {
		attrs := []any{"requestId", d.RequestID, "check", check, "detail", detail,
			"status", status, "bytes", len(c.BodyRaw()), "from", s.clientAddress(c)}
		if held > 0 {
			attrs = append(attrs, "notLoggedBefore", held) // refusals of this check past the limit last minute
		}
		s.log.Warn("webhook refused", attrs...)
	}
	return s.writeWebhookProblem(c, &Problem{Status: status, Cause: cause, Title: title, Detail: detail}, check)
}

// webhookReceive is POST /webhooks/bead.
func (s *Server) webhookReceive(c *fiber.Ctx) error {
	h := s.hooks
	ctx := c.UserContext()
	// BodyRaw, never Body: Fiber's Body decompresses by Content-Encoding, and the signature covers the
	// bytes as sent.
	raw := bytes.Clone(c.BodyRaw())
	header := c.Get(bead.WebhookSignatureHeader)
	if header == "" && s.cfg.WebhookLegacyHex {
		header = c.Get(bead.LegacyWebhookSignatureHeader)
	}
	keys, err := h.keys(ctx)
	if err != nil {
		s.log.Error("webhook not verified: the store holding the registered secrets is unavailable", "requestId", requestIDOf(c), "err", err)
		return s.writeWebhookProblem(c, storeUnavailable(err), "")
	}
	if len(keys) == 0 {
		// 503, not 403: nothing is wrong with the delivery; this server cannot check any. Bead retries on
		// any non-2xx, so deliveries made while the operator sets the secret are not lost.
		return s.refuseWebhook(c, http.StatusServiceUnavailable, CauseWebhookSignatureInvalid, string(bead.WebhookNoSecrets),
			"No webhook secret configured",
			"This server has no signing secret to verify Bead's webhooks with: set BEAD_WEBHOOK_SECRET to the terminal's base64 signingSecret, or register the webhook on the Webhooks page. Nothing was stored; Bead retries.")
	}
	secrets := make([][]byte, len(keys))
	for i, k := range keys {
		secrets[i] = k.key
	}
	verified, err := bead.WebhookVerifier{LegacyHex: s.cfg.WebhookLegacyHex}.Verify(header, raw, secrets, s.now())
	if err != nil {
		var we *bead.WebhookError
		if !errors.As(err, &we) {
			return err
		}
		return s.refuseWebhook(c, http.StatusForbidden, CauseWebhookSignatureInvalid, string(we.Reason),
			"Webhook signature invalid", "The "+string(we.Reason)+" check failed: "+we.Detail+". Nothing was stored.")
	}

	body, err := decodedWebhookBody(c.Get(fiber.HeaderContentEncoding), raw)
	if err != nil {
		return s.refuseWebhook(c, http.StatusUnsupportedMediaType, CauseInvalidRequest, checkEncodingUnsupported,
			"Webhook body encoding not supported", sentence(err.Error())+" The signature was valid; nothing was stored.")
	}
	st, err := bead.DecodePaymentStatus(body)
	switch {
	case err != nil:
		return s.refuseWebhook(c, http.StatusBadRequest, CauseInvalidRequest, checkBodyUnreadable, "Webhook body unreadable",
			"The signature was valid, but the body is not a payment status object ("+sentence(strings.TrimPrefix(err.Error(), bead.ErrUnexpectedAnswer.Error()+": "))+") Nothing was stored.")
	case !bead.ValidID(st.TrackingID):
		return s.refuseWebhook(c, http.StatusBadRequest, CauseInvalidRequest, checkBodyUnreadable, "Webhook body unreadable",
			"The signature was valid, but the body has no usable trackingId. Nothing was stored.")
	}
	terminal, ok := webhookTerminal(keys, verified.Matched, st.TerminalID)
	if !ok {
		return s.refuseWebhook(c, http.StatusForbidden, CauseWebhookSignatureInvalid, checkSecretOfAnotherTerminal,
			"Webhook signature invalid",
			"The delivery names terminal "+st.TerminalID+" but is signed with a secret registered for another terminal. Nothing was stored.")
	}
	return s.acceptWebhook(c, terminal, st, raw)
}

// webhookTerminal decides whose change a verified delivery is. A BEAD_WEBHOOK_SECRET entry vouches for
// any terminal (the operator configured it); a registered secret only for its own, so that one
// terminal's secret cannot move another terminal's payments. A body without terminalId belongs to the
// terminal whose registered secret signed it, if exactly one did.
// The same secret may be both configured and registered: a registered owner that matched then still
// names the terminal of a body that names none.
func webhookTerminal(keys []verifyKey, matched []int, named string) (string, bool) {
	var owners []string
	configured := false
	for _, i := range matched {
		owner := keys[i].terminalID
		switch {
		case owner == "":
			configured = true
		case named != "" && owner == named:
			return named, true
		default:
			owners = append(owners, owner)
		}
	}
	if named == "" && len(owners) > 0 {
		for _, o := range owners[1:] {
			if o != owners[0] {
				return "", configured
			}
		}
		return owners[0], true
	}
	return named, configured
}

// decodedWebhookBody is the body to parse, after the signature passed on the raw bytes: gzip is
// decompressed (bounded), identity passes, anything else is refused.
func decodedWebhookBody(encoding string, raw []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, errors.New("the body says Content-Encoding: gzip but is not gzip")
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxWebhookBody+1))
		if err != nil || len(out) > maxWebhookBody {
			return nil, errors.New("the gzip body does not decompress to at most 1 MiB")
		}
		return out, nil
	}
	return nil, fmt.Errorf("content encoding %q is not supported (only gzip)", utils.CopyString(encoding))
}

// acceptWebhook stores a verified change before answering 2xx, and hands it to a worker.
func (s *Server) acceptWebhook(c *fiber.Ctx, terminal string, st *bead.PaymentStatus, raw []byte) error {
	h := s.hooks
	ctx := c.UserContext()
	rid := requestIDOf(c)
	d := session.WebhookDelivery{At: s.now().UTC(), RequestID: rid, TerminalID: terminal, HTTPStatus: http.StatusOK}
	if terminal != "" { // the server-wide log, which every terminal's staff sees, shows no payment
		d.TrackingID, d.StatusCode = st.TrackingID, string(st.Status)
	}
	answer := func(outcome, note string) error {
		d.Outcome, d.Detail = outcome, note
		if err := s.store.RecordWebhookDelivery(ctx, d); err != nil {
			s.log.Warn("webhook delivery not recorded", "requestId", rid, "err", err)
		}
		h.metrics.deliveries.WithLabelValues(outcome, "").Inc()
		s.log.Info("webhook", "requestId", rid, "outcome", outcome, "terminalId", terminal,
			"trackingId", st.TrackingID, "statusCode", st.Status, "note", note)
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(fiber.Map{"outcome": outcome, "requestId": rid})
	}
	switch {
	case terminal == "":
		return answer(session.DeliveryIgnored, "the body names no terminal, so no payment of this server can be found")
	case !st.Status.Known():
		return answer(session.DeliveryIgnored, "statusCode "+string(st.Status)+" is not one Bead documents; not acted on")
	}
	ev := session.WebhookEvent{
		ID:         session.WebhookEventID(terminal, st.TrackingID, string(st.Status)),
		TerminalID: terminal, TrackingID: st.TrackingID, StatusCode: string(st.Status),
		ReceivedAt: s.now().UTC(), RequestID: rid, Body: raw, State: session.WebhookPending,
	}
	stored, first, err := s.store.ClaimWebhookEvent(ctx, ev)
	if err != nil {
		// Not stored, so not acknowledged: Bead retries.
		s.log.Error("webhook not stored", "requestId", rid, "trackingId", st.TrackingID, "err", err)
		return s.writeWebhookProblem(c, storeUnavailable(err), "")
	}
	if !first {
		// A repeat changes nothing; if the first delivery's work never ran (its process died), this
		// delivery is a good moment to do it.
		if stored.State == session.WebhookPending {
			h.enqueueApply(*stored)
		}
		return answer(session.DeliveryDuplicate, "this change was received before ("+stored.RequestID+")")
	}
	h.enqueueApply(ev)
	return answer(session.DeliveryAccepted, "")
}

func (w *webhooks) enqueueApply(ev session.WebhookEvent) {
	if !w.enqueue(func(ctx context.Context) { w.apply(ctx, ev) }) {
		w.metrics.confirmations.WithLabelValues("queue_full").Inc()
		w.s.log.Warn("webhooks: queue full; the change waits for the next sweep", "trackingId", ev.TrackingID)
	}
}

// apply brings an accepted change to its payment: as PendingStatus, then confirmed by one read.
// It is idempotent (a sweep may run it again), and a lock keeps two processes from running it at once.
func (w *webhooks) apply(ctx context.Context, ev session.WebhookEvent) {
	s := w.s
	lock := "webhook:" + ev.ID
	held, err := s.store.Lock(ctx, lock, webhookLockTTL)
	if err != nil || held == "" {
		return // the store is down (the sweep retries) or another process is on it
	}
	defer func() { _ = s.store.Unlock(context.WithoutCancel(ctx), lock, held) }()

	finish := func(state, note string) {
		ev.State, ev.Note, ev.UpdatedAt = state, note, s.now().UTC()
		if err := s.store.UpdateWebhookEvent(ctx, ev); err != nil {
			s.log.Warn("webhooks: event state not recorded", "trackingId", ev.TrackingID, "err", err)
		}
	}
	p, err := s.store.GetPayment(ctx, ev.TerminalID, ev.TrackingID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		finish(session.WebhookIgnored, "not a payment created through this server")
		return
	case err != nil:
		s.log.Warn("webhooks: payment unreadable; the change waits for the next sweep", "trackingId", ev.TrackingID, "err", err)
		return
	}
	announced, current := bead.Status(ev.StatusCode), bead.Status(p.StatusCode)
	switch {
	case announced == current:
		finish(session.WebhookApplied, "already known from Bead")
		return
	case current.Final() && !announced.Final():
		finish(session.WebhookIgnored, "stale: the payment is already "+string(current))
		return
	}
	if pendingMoves(p.PendingStatus, announced) {
		p.PendingStatus, p.UpdatedAt = string(announced), s.now().UTC()
		if err := s.recordPayment(ctx, p); err != nil {
			s.log.Warn("webhooks: payment not updated; the change waits for the next sweep", "trackingId", ev.TrackingID, "err", err)
			return
		}
		w.hub.publish(p)
	}
	// The event stays pending until Bead's answer settles it: if every confirming read fails, or the
	// process stops first, the sweep applies it again instead of the change being forgotten.
	if w.confirmChain(ctx, p.TerminalID, p.TrackingID) {
		finish(session.WebhookApplied, "announced "+string(announced)+"; settled by Bead's answer")
	}
}

// confirmChain starts the confirming reads of a payment unless a chain already runs or is scheduled for
// it, and reports whether Bead's answer settled the payment now (false: a later read, or the sweep, will).
func (w *webhooks) confirmChain(ctx context.Context, terminalID, trackingID string) bool {
	key := terminalID + "\x00" + trackingID
	if _, running := w.chains.LoadOrStore(key, struct{}{}); running {
		return false
	}
	return w.confirmPayment(ctx, terminalID, trackingID, 0)
}

// pendingMoves reports whether a newly announced status should replace the pending one: anything but a
// step back from a final announcement to a non-final one (deliveries can arrive out of order).
func pendingMoves(pending string, announced bead.Status) bool {
	switch p := bead.Status(pending); {
	case pending == "":
		return true
	case p == announced:
		return false
	case p.Final() && !announced.Final():
		return false
	}
	return true
}

// confirming reports whether p shows a webhook's status that Bead has not yet confirmed.
func confirming(p *session.Payment) bool {
	return p.PendingStatus != "" && p.PendingStatus != p.StatusCode && !bead.Status(p.StatusCode).Final()
}

// applyConfirmed lays Bead's answer over p, never moving a final status back to a non-final one, and
// ends the pending status once Bead shows it (or any final status: Bead's word wins).
func applyConfirmed(p *session.Payment, st *bead.PaymentStatus, now time.Time) *session.Payment {
	if st.Status == "" || (bead.Status(p.StatusCode).Final() && !st.Status.Final()) {
		return p
	}
	next := mergeStatus(p, st, now)
	if next.PendingStatus != "" && (next.PendingStatus == next.StatusCode || bead.Status(next.StatusCode).Final()) {
		next.PendingStatus = ""
	}
	return next
}

// confirmPayment makes the confirming read of a payment now (one at a time per payment), and again
// after confirmRetries[attempt] while Bead does not yet show the announced status.
func (w *webhooks) confirmPayment(ctx context.Context, terminalID, trackingID string, attempt int) (settled bool) {
	s := w.s
	key := terminalID + "\x00" + trackingID
	later := false
	defer func() {
		if !later {
			w.chains.Delete(key) // the chain ends here; the next change or viewer may start another
		}
	}()
	v, _, _ := w.confirm.Do(key, func() (any, error) {
		p, err := s.store.GetPayment(ctx, terminalID, trackingID)
		if err != nil || !confirming(p) {
			return err == nil, nil // gone, or someone confirmed it meanwhile
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.BeadTimeout+time.Second)
		st, err := s.unattendedTracking(rctx, p, "tracking (webhook)")
		cancel()
		switch {
		case errors.Is(err, errNoToken):
			w.metrics.confirmations.WithLabelValues("no_token").Inc()
			s.log.Info("webhooks: no token of the payment's terminal to confirm with; pages show confirming until a staff page reads it",
				"terminalId", terminalID, "trackingId", trackingID)
			return false, nil
		case err != nil:
			w.metrics.confirmations.WithLabelValues("failed").Inc()
			s.log.Warn("webhooks: confirming read failed", "trackingId", trackingID, "err", err)
			later = w.confirmLater(terminalID, trackingID, attempt)
			return false, nil
		}
		// Read again: the page or another worker may have moved the payment while Bead answered.
		if cur, err := s.store.GetPayment(ctx, terminalID, trackingID); err == nil {
			p = cur
		}
		next := applyConfirmed(p, st, s.now().UTC())
		if *next != *p {
			if err := s.recordPayment(ctx, next); err != nil {
				s.log.Warn("webhooks: confirmed status not recorded", "trackingId", trackingID, "err", err)
				return false, nil
			}
			w.hub.publish(next)
		}
		if confirming(next) && attempt < len(confirmRetries) {
			w.metrics.confirmations.WithLabelValues("not_yet").Inc()
			later = w.confirmLater(terminalID, trackingID, attempt)
			return false, nil
		}
		if confirming(next) {
			// Bead still does not show what the webhook announced, a minute on: its own answer stands,
			// and the pages stop saying "confirming…". A later webhook or read moves it on.
			w.metrics.confirmations.WithLabelValues("unconfirmed").Inc()
			s.log.Warn("webhooks: Bead did not confirm the announced status; keeping Bead's", "trackingId", trackingID,
				"announced", next.PendingStatus, "statusCode", next.StatusCode)
			next.PendingStatus = ""
			if err := s.recordPayment(ctx, next); err == nil {
				w.hub.publish(next)
			}
			return true, nil
		}
		w.metrics.confirmations.WithLabelValues("confirmed").Inc()
		s.log.Info("webhooks: status confirmed by Bead", "trackingId", trackingID, "statusCode", next.StatusCode)
		return true, nil
	})
	settled, _ = v.(bool)
	return settled
}

// confirmLater schedules the next read of the chain and reports whether it did; after the last one the
// chain ends, and the event, still pending, is the sweep's to apply again.
func (w *webhooks) confirmLater(terminalID, trackingID string, attempt int) bool {
	if attempt >= len(confirmRetries) {
		return false
	}
	time.AfterFunc(confirmRetries[attempt], func() {
		if !w.enqueue(func(ctx context.Context) { w.confirmPayment(ctx, terminalID, trackingID, attempt+1) }) {
			w.chains.Delete(terminalID + "\x00" + trackingID) // queue full or closing: the sweep will retry
		}
	})
	return true
}
