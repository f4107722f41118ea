package bff

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"beadbff/bff/bead"
	"beadbff/session"
)

// Live updates: server-sent events to the staff payment page (/payments/{id}/events), the dashboard
// (/payments/events) and the embedded checkout (/embed/checkout/{id}/events).
//
// A process-local hub fans every change out to the streams open in this process: a status that a webhook
// announced or Bead confirmed is read from Bead once and pushed to every page, never read per viewer.
// Across processes the store is the source of truth: for every payment (and dashboard) with an open
// stream, the hub re-reads the store every liveStoreEvery, once per process, and pushes what changed
// (a webhook that another replica received, a status a staff page read). Redis pub/sub would save that
// read, at the price of a second channel that can drop messages; the store read cannot.
//
// The first event of a stream is "hello" {"push": bool}: push is true when this server can verify Bead's
// webhooks for the terminal, so the page can stop its own polling and keep only a slow safety-net poll;
// without it, the page polls as before and the stream only adds what other viewers' reads found.

const (
	liveStoreEvery  = 3 * time.Second  // store re-read per watched payment or dashboard, per process
	liveHeartbeat   = 15 * time.Second // a comment line, so proxies and browsers keep the stream open
	liveMaxLife     = 30 * time.Minute // then the browser reconnects (and gets a fresh snapshot)
	liveRetryMillis = 3000             // the browser's wait before reconnecting
	liveSubBuffer   = 32               // events queued for a slow reader before it is disconnected
)

// liveStatus is one payment's state as the pages show it: no amount, reference or anything else the
// embedded checkout does not already show.
type liveStatus struct {
	TrackingID   string `json:"trackingId"`
	StatusCode   string `json:"statusCode"`
	StatusLabel  string `json:"statusLabel"`
	Final        bool   `json:"final"`
	Paid         bool   `json:"paid"`
	Confirming   bool   `json:"confirming"`             // a webhook announced PendingStatus; Bead has not confirmed it yet
	PendingLabel string `json:"pendingLabel,omitempty"` // what the webhook announced, in words
	// PendingPaid: what the webhook announced is a paid status. The checkout then stops offering "Pay now"
	// (a verified webhook is Bead's word that the money came), so a shopper is not led to pay twice while
	// Bead's confirming read waits (for a token of the terminal, say).
	PendingPaid bool `json:"pendingPaid,omitempty"`
}

func liveStatusOf(p *session.Payment) liveStatus {
	st := bead.Status(p.StatusCode)
	l := liveStatus{TrackingID: p.TrackingID, StatusCode: p.StatusCode, StatusLabel: st.Label(), Final: st.Final(), Paid: st.Paid()}
	if confirming(p) {
		l.Confirming, l.PendingLabel, l.PendingPaid = true, bead.Status(p.PendingStatus).Label(), bead.Status(p.PendingStatus).Paid()
	}
	return l
}

// settled: nothing more will change, so a payment's stream can end.
func (l liveStatus) settled() bool { return l.Final && !l.Confirming }

func (l liveStatus) fingerprint() string {
	return l.StatusCode + "\x00" + l.PendingLabel
}

// topicKey names what a stream watches: one payment, or (trackingID "") all of a terminal's.
type topicKey struct{ terminalID, trackingID string }

type liveSub struct {
	key topicKey
	ch  chan liveStatus
}

type liveTopic struct {
	subs map[*liveSub]struct{}
	last map[string]string // trackingID -> fingerprint of the last state sent on this topic
	stop context.CancelFunc
}

// liveHub fans changes out to this process's streams.
type liveHub struct {
	load  func(ctx context.Context, key topicKey) ([]session.Payment, error)
	every time.Duration

	mu     sync.Mutex
	topics map[topicKey]*liveTopic
	closed bool
	done   chan struct{} // closed by close: every stream ends
	wg     sync.WaitGroup
}

func newLiveHub(load func(context.Context, topicKey) ([]session.Payment, error), every time.Duration) *liveHub {
	return &liveHub{load: load, every: every, topics: map[topicKey]*liveTopic{}, done: make(chan struct{})}
}

var errHubClosed = errors.New("bff: live updates closed")

// subscribe opens a subscription; the first one of a topic starts its store watcher.
func (h *liveHub) subscribe(key topicKey) (*liveSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	t := h.topics[key]
	if t == nil {
		ctx, cancel := context.WithCancel(context.Background())
		t = &liveTopic{subs: map[*liveSub]struct{}{}, last: map[string]string{}, stop: cancel}
		h.topics[key] = t
		h.wg.Add(1)
		go h.watch(ctx, key)
	}
	sub := &liveSub{key: key, ch: make(chan liveStatus, liveSubBuffer)}
	t.subs[sub] = struct{}{}
	return sub, nil
}

// unsubscribe ends a subscription; the last one of a topic stops its watcher.
func (h *liveHub) unsubscribe(sub *liveSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[sub.key]
	if t == nil {
		return
	}
	if _, ok := t.subs[sub]; ok {
		delete(t.subs, sub)
		close(sub.ch)
	}
	if len(t.subs) == 0 {
		t.stop()
		delete(h.topics, sub.key)
	}
}

// prime records states a stream is about to send as its snapshot, so the watcher does not send them
// again.
func (h *liveHub) prime(key topicKey, states []liveStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[key]; t != nil {
		for _, st := range states {
			t.last[st.TrackingID] = st.fingerprint()
		}
	}
}

// publish sends p's state to the streams watching it or its terminal, if it differs from what they were
// last sent. A stream too slow to take it is disconnected; its browser reconnects to a fresh snapshot.
func (h *liveHub) publish(p *session.Payment) {
	st := liveStatusOf(p)
	fp := st.fingerprint()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, key := range []topicKey{{p.TerminalID, p.TrackingID}, {p.TerminalID, ""}} {
		t := h.topics[key]
		if t == nil || t.last[p.TrackingID] == fp {
			continue
		}
		t.last[p.TrackingID] = fp
		for sub := range t.subs {
			select {
			case sub.ch <- st:
			default:
				delete(t.subs, sub)
				close(sub.ch)
			}
		}
	}
}

// watch re-reads a topic's payments from the store while it has subscribers.
func (h *liveHub) watch(ctx context.Context, key topicKey) {
	defer h.wg.Done()
	tick := time.NewTicker(h.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-tick.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ps, err := h.load(lctx, key)
		cancel()
		if err != nil {
			continue // the next tick tries again; the streams keep their last state
		}
		for i := range ps {
			h.publish(&ps[i])
		}
	}
}

// close ends every stream and watcher.
func (h *liveHub) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// loadLive is the hub's store read: one payment, or the dashboard's list.
func (s *Server) loadLive(ctx context.Context, key topicKey) ([]session.Payment, error) {
	if key.trackingID == "" {
		return s.store.ListPayments(ctx, key.terminalID, listLimit)
	}
	p, err := s.storedPayment(ctx, key.terminalID, key.trackingID) // and the copy kept fresh with it
	if err != nil {
		return nil, err
	}
	return []session.Payment{*p}, nil
}

// requireStreamSession: an event stream without a session gets a bare 401 (an EventSource cannot
// follow the login redirect a page gets); the page's poller then shows that the session ended.
func (s *Server) requireStreamSession(c *fiber.Ctx) error {
	if sessionOf(c) == nil {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.SendStatus(http.StatusUnauthorized)
	}
	return c.Next()
}

// paymentEvents is GET /payments/{trackingId}/events.
func (s *Server) paymentEvents(c *fiber.Ctx) error {
	sess := sessionOf(c)
	id := c.Params("trackingId")
	if !bead.ValidID(id) {
		return c.SendStatus(http.StatusNotFound)
	}
	key := topicKey{sess.TerminalID, utils.CopyString(id)}
	return s.streamLive(c, "payment", key, sess.ID, true)
}

// dashboardEvents is GET /payments/events: every payment of the terminal.
func (s *Server) dashboardEvents(c *fiber.Ctx) error {
	sess := sessionOf(c)
	return s.streamLive(c, "dashboard", topicKey{terminalID: sess.TerminalID}, sess.ID, false)
}

// embedCheckoutEvents is GET /embed/checkout/{checkoutId}/events: the checkout id is the only key, as
// for the page itself.
func (s *Server) embedCheckoutEvents(c *fiber.Ctx) error {
	p, err := s.checkoutPayment(c)
	if err != nil {
		status, _ := s.embedFailureStatus(c, err)
		return c.SendStatus(status)
	}
	return s.streamLive(c, "checkout", topicKey{p.TerminalID, p.TrackingID}, "", true)
}

// streamLive answers with an event stream of key's payments: hello, a snapshot, then every change. A
// payment's stream (endWhenSettled) ends once it is final and confirmed, and a payment already settled
// gets 204, which tells the browser's EventSource not to reconnect.
func (s *Server) streamLive(c *fiber.Ctx, page string, key topicKey, sessionID string, endWhenSettled bool) error {
	h := s.hooks
	sub, err := h.hub.subscribe(key)
	if err != nil {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.SendStatus(http.StatusServiceUnavailable)
	}
	// The snapshot is read after subscribing, so that no change falls between the two.
	ps, err := s.loadLive(c.UserContext(), key)
	if err != nil {
		h.hub.unsubscribe(sub)
		if errors.Is(err, session.ErrNotFound) {
			return c.SendStatus(http.StatusNotFound)
		}
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.SendStatus(http.StatusServiceUnavailable)
	}
	snapshot := make([]liveStatus, len(ps))
	for i := range ps {
		snapshot[i] = liveStatusOf(&ps[i])
	}
	if endWhenSettled && len(snapshot) == 1 && snapshot[0].settled() {
		h.hub.unsubscribe(sub)
		return c.SendStatus(http.StatusNoContent)
	}
	h.hub.prime(key, snapshot)
	if sessionID != "" {
		// A staff page has opened on a payment still waiting for its confirming read (no token was at
		// hand when the webhook came): its session can lend one now.
		for _, p := range ps {
			if confirming(&p) {
				h.enqueue(func(ctx context.Context) { h.confirmChain(ctx, p.TerminalID, p.TrackingID) })
			}
		}
	}
	hello, _ := json.Marshal(map[string]bool{"push": h.pushes(c.UserContext(), key.terminalID)})

	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Accel-Buffering", "no") // nginx and friends: pass each event on at once
	fctx := c.Context()
	// One write deadline for the whole stream: the server's WriteTimeout would cut it after 30 s. It is
	// set here, in the handler, because the stream's goroutine must not touch the request context (it is
	// reused once the response is done).
	_ = fctx.SetWriteDeadline(time.Now().Add(liveMaxLife + time.Minute))
	// A browser that leaves is seen at once: the connection closes after the stream (so nothing that
	// follows on it matters), and a reader on it learns of the client's close long before a heartbeat
	// write would fail.
	fctx.SetConnectionClose()
	gone := watchClose(fctx.Conn())
	gauge := h.metrics.streams.WithLabelValues(page)
	done := h.hub.done
	fctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.hub.unsubscribe(sub)
		gauge.Inc()
		defer gauge.Dec()
		send := func(frame []byte) bool {
			if _, err := w.Write(frame); err != nil {
				return false
			}
			return w.Flush() == nil // fails once the browser has gone
		}
		if !send(sseFrame("hello", hello, liveRetryMillis)) {
			return
		}
		for _, st := range snapshot {
			if !send(sseStatus(st)) {
				return
			}
		}
		heartbeat := time.NewTicker(liveHeartbeat)
		defer heartbeat.Stop()
		life := time.NewTimer(liveMaxLife)
		defer life.Stop()
		for {
			select {
			case st, ok := <-sub.ch:
				if !ok || !send(sseStatus(st)) {
					return
				}
				if endWhenSettled && st.settled() {
					return
				}
			case <-heartbeat.C:
				if !send([]byte(": keep-alive\n\n")) {
					return
				}
			case <-life.C:
				return
			case <-done:
				return
			case <-gone:
				return
			}
		}
	})
	return nil
}

// watchClose returns a channel closed when the peer closes conn (or it fails). An event-stream client
// sends nothing after its request, so any read ending means it has gone; the stream's connection is
// closed after the stream, so a byte read here is never a next request's.
func watchClose(conn net.Conn) <-chan struct{} {
	gone := make(chan struct{})
	if conn == nil {
		return gone
	}
	_ = conn.SetReadDeadline(time.Time{}) // the server's read timeout would end the watch early
	go func() {
		defer close(gone)
		var b [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	return gone
}

func sseStatus(st liveStatus) []byte {
	data, _ := json.Marshal(st) // plain strings and bools
	return sseFrame("status", data, 0)
}

// sseFrame is one event. data is JSON, which has no raw newlines, so it is one data: line.
func sseFrame(event string, data []byte, retryMillis int) []byte {
	var b []byte
	if retryMillis > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, int64(retryMillis), 10)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}
