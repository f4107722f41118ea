package bff

import (
	"encoding/base64"
	"sync"

	"beadbff/config"
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/session"
)

// Issue 6: "one status read per change, shared by every open page, never one per viewer". A change
// Bead's API does not show yet (it lags its callbacks) stays confirming; every staff page that opens on it
// then makes its own confirming read from Bead, and starts its own retry chain (3, 15, 45 s).
func TestBreak3ConfirmingReadPerViewer(t *testing.T) {
	e := newHookEnv(t, nil) // no service account: the staff pages' sessions lend their tokens
	base := e.listen(t)
	e.bead.set(hookTracking, bead.StatusProcessing) // Bead's API lags the webhook
	body := statusBody(hookTracking, hookTerminal, "completed")
	if r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil); r.status != 200 {
		t.Fatalf("delivery: %d %v", r.status, r.body)
	}
	waitFor(t, "pending", 3*time.Second, func() bool { return e.payment(t).PendingStatus == "completed" })
	const viewers = 6
	for i := range viewers {
		s := openStream(t, base+"/payments/"+hookTracking+"/events", e.staffSession(t))
		if s.resp.StatusCode != 200 {
			t.Fatalf("viewer %d: %d", i, s.resp.StatusCode)
		}
		s.next(t, 2*time.Second) // hello
		s.next(t, 2*time.Second) // snapshot
	}
	time.Sleep(700 * time.Millisecond) // well before the first retry (3 s)
	if n := e.bead.readCount(); n > 1 {
		t.Errorf("%d status reads from Bead for one change and %d viewers, want 1 shared read", n, viewers)
	}
}

// webhookTerminal: "A body without terminalId belongs to the terminal whose registered secret signed it".
// When that terminal's registered secret is also in BEAD_WEBHOOK_SECRET (the case VerifiedWebhook.Matched
// documents), the configured entry is matched first and returns the body's empty terminal: the delivery
// is answered 2xx "ignored" and nothing is stored, so Bead never retries it and the change is lost.
func TestBreak3RegisteredAndConfiguredSameSecretLosesDelivery(t *testing.T) {
	e := newHookEnv(t, nil)
	if err := e.store.SaveWebhookSecret(context.Background(), hookTerminal, hookKey, "http://x/webhooks/bead"); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"paymentId":"p1","trackingId":"` + hookTracking + `","statusCode":"completed","merchantId":"` + hookMerchant + `"}`)
	r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	if r.status != 200 || r.body["outcome"] != session.DeliveryAccepted {
		t.Errorf("signed by the terminal's registered secret (also configured): %d %v, want accepted for terminal %s",
			r.status, r.body, hookTerminal)
	}
	// Without the configured copy the very same delivery is accepted: the order of the keys decides.
	e2 := newHookEnv(t, map[string]string{"BEAD_WEBHOOK_SECRET": ""})
	if err := e2.store.SaveWebhookSecret(context.Background(), hookTerminal, hookKey, "http://x/webhooks/bead"); err != nil {
		t.Fatal(err)
	}
	if r := e2.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil); r.body["outcome"] != session.DeliveryAccepted {
		t.Fatalf("control: registered secret only: %v", r.body)
	}
}

// The refusal log the webhooks page and help page rely on ("the failure recorded for the help page") is a
// server-wide list of 50 that anyone on the Internet can write to without any credential: 50 unsigned
// POSTs push Bead's real refusal (here a stale timestamp: the server's clock is off) out of it.
func TestBreak3AnonymousRefusalsEvictBeadsRefusal(t *testing.T) {
	e := newHookEnv(t, nil)
	body := statusBody(hookTracking, hookTerminal, "completed")
	if r := e.post(t, bead.SignWebhook(hookKey, time.Now().Add(-10*time.Minute), body), body, nil); r.body["check"] != "timestamp_stale" {
		t.Fatalf("stale delivery: %v", r.body)
	}
	for i := range session.WebhookLogSize {
		_ = e.post(t, "", []byte(fmt.Sprintf("junk %d", i)), nil)
	}
	list, err := e.store.WebhookDeliveries(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range list {
		found = found || d.Check == "timestamp_stale"
	}
	if !found {
		t.Errorf("after %d anonymous unsigned POSTs the refusal log (%d entries) no longer shows Bead's timestamp_stale refusal",
			session.WebhookLogSize, len(list))
	}
}

// A browser that goes away leaves its stream's goroutines, its subscription (and its topic's store
// watcher polling every 3 s) and its session's place among the confirming-read helpers behind until the
// next heartbeat write fails, 15 s or more later.
func TestBreak3ClosedStreamsLinger(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	staff := e.staffSession(t)
	// warm up: one stream opened and closed, so the listener's own goroutines exist
	w := openStream(t, base+"/payments/"+hookTracking+"/events", staff)
	w.next(t, 2*time.Second)
	w.resp.Body.Close()
	time.Sleep(300 * time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 20
	for range n {
		s := openStream(t, base+"/payments/"+hookTracking+"/events", staff)
		s.next(t, 2*time.Second)
		s.resp.Body.Close()
	}
	// Within 2 s every stream must be gone; goroutines of closed connections may take a little longer to
	// end under a loaded test run, so their count gets up to 3 s more to settle.
	time.Sleep(2 * time.Second)
	subscriptions := func() int {
		e.srv.hooks.hub.mu.Lock()
		defer e.srv.hooks.hub.mu.Unlock()
		n := 0
		for _, tp := range e.srv.hooks.hub.topics {
			n += len(tp.subs)
		}
		return n
	}
	subs := subscriptions()
	settle := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine()-before > 5 && time.Now().Before(settle) {
		time.Sleep(100 * time.Millisecond)
	}
	after := runtime.NumGoroutine()
	if subs > 1 || after-before > 5 {
		t.Errorf("2 s after %d streams were closed by their clients: %d subscriptions still open, goroutines %d -> %d",
			n, subs, before, after)
	}
}

// The embedded checkout's stream carries nothing beyond what the checkout's status endpoint already
// shows (no terminal, merchant, amount or reference).
func TestBreak3EmbedStreamCarriesNoTerminalOrEvidence(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	s := openStream(t, base+"/embed/checkout/"+e.co+"/events", "")
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("embed stream: %d", s.resp.StatusCode)
	}
	_, _ = s.next(t, 2*time.Second)
	_, snap := s.next(t, 2*time.Second)
	for k := range snap {
		switch k {
		case "trackingId", "statusCode", "statusLabel", "final", "paid", "confirming", "pendingLabel":
		default:
			t.Errorf("embed stream carries %q", k)
		}
	}
	if strings.Contains(fmt.Sprint(snap), hookTerminal) || strings.Contains(fmt.Sprint(snap), "order-1") {
		t.Errorf("embed stream leaks: %v", snap)
	}
}

// failingBead fails the first n status reads (Bead's API briefly down), then answers as hookBead.
type failingBead struct {
	*hookBead
	mu    sync.Mutex
	fails int
}

func (f *failingBead) Tracking(ctx context.Context, token, id string) (*bead.PaymentStatus, error) {
	f.mu.Lock()
	fail := f.fails > 0
	f.fails--
	f.mu.Unlock()
	if fail {
		return nil, &bead.APIError{Status: http.StatusServiceUnavailable}
	}
	return f.hookBead.Tracking(ctx, token, id)
}

// apply marks the event applied before its confirming read has succeeded. When every confirming read of
// the retry chain fails (Bead's API down for about a minute, or the process stopping before the read),
// nothing ever confirms the change: the sweep only resumes pending events, so the payment shows
// "confirming…" (and "created" in the store and the API list) until some staff page happens to open it.
func TestBreak3ConfirmationLostWhenReadsFail(t *testing.T) {
	saved := confirmRetries
	confirmRetries = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	t.Cleanup(func() { confirmRetries = saved })
	env := map[string]string{
		"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod",
		"BEAD_WEBHOOK_SECRET":    base64.StdEncoding.EncodeToString(hookKey),
		"BEAD_TERMINAL_USERNAME": hookTerminal, "BEAD_TERMINAL_PASSWORD": "pw",
	}
	cfg := config.Load(func(k string) string { return env[k] })
	store, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fb := &failingBead{hookBead: newHookBead(), fails: 1 + len(confirmRetries)}
	srv, err := New(Deps{Config: cfg, Store: store, Bead: fb, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(5 * time.Second) })
	e := &hookEnv{srv: srv, store: store, bead: fb.hookBead}
	now := time.Now()
	if err := store.PutPayment(context.Background(), session.Payment{TrackingID: hookTracking, CheckoutID: randomToken(), TerminalID: hookTerminal,
		MerchantID: hookMerchant, Amount: "12.50", Currency: "USD", StatusCode: "created", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	fb.set(hookTracking, bead.StatusCompleted)
	body := statusBody(hookTracking, hookTerminal, "completed")
	if r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil); r.body["outcome"] != "accepted" {
		t.Fatalf("delivery: %v", r.body)
	}
	waitFor(t, "every confirming read tried", 3*time.Second, func() bool {
		fb.mu.Lock()
		defer fb.mu.Unlock()
		return fb.fails < 0 || fb.fails == 0
	})
	time.Sleep(300 * time.Millisecond)
	p := e.payment(t)
	if p.StatusCode != "completed" && e.pending(t) == 0 {
		t.Errorf("Bead's reads failed %d times and now answer completed, but the payment is %q (pending %q) and its event is no longer pending: no sweep will ever confirm it",
			1+len(confirmRetries), p.StatusCode, p.PendingStatus)
	}
}
