package bff

// Regressions of the seventh break-it review (idempotency claims deddd45..795afa1). Each test names the
// defect it guards against.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/session"
)

// gatedBead makes payments per idempotency key, as Bead does, and lets the test decide when each call
// answers and whether it answers 429 (a rate limit or a WAF hitting one of two concurrent requests).
type gatedBead struct {
	fakeBead
	mu      sync.Mutex
	byKey   map[string]*bead.CreatedPayment
	amounts map[string]string
	made    int
	script  chan beadStep // one per call, in call order
}

type beadStep struct {
	entered chan struct{} // closed when the call has reached Bead (and made the payment, unless refuse)
	answer  chan struct{} // closed by the test to let the answer go back
	refuse  bool          // answer 429, make nothing
}

func (g *gatedBead) CreatePayment(_ context.Context, _ string, req bead.CreatePaymentRequest, key string) (*bead.CreatedPayment, error) {
	step := <-g.script
	var p *bead.CreatedPayment
	if !step.refuse {
		g.mu.Lock()
		if p = g.byKey[key]; p == nil {
			g.made++
			p = &bead.CreatedPayment{TrackingID: fmt.Sprintf("%032x", g.made), PaymentURLs: []string{"https://pay.example/p"}}
			g.byKey[key] = p
			g.amounts[p.TrackingID] = bead.FormatAmount(req.RequestedAmount)
		}
		g.mu.Unlock()
	}
	close(step.entered)
	<-step.answer
	if step.refuse {
		return nil, &bead.APIError{Op: "create payment", Status: http.StatusTooManyRequests, RetryAfter: time.Second}
	}
	return p, nil
}

// newGatedFixture is a form fixture (form_key_test.go) whose server's Bead is a gatedBead; f.bead is not
// the server's Bead.
func newGatedFixture(t *testing.T) (*formFixture, *gatedBead) {
	t.Helper()
	g := &gatedBead{byKey: map[string]*bead.CreatedPayment{}, amounts: map[string]string{}, script: make(chan beadStep, 3)}
	return newFormFixtureWith(t, nil, g), g
}

// step scripts the gatedBead's next call (refuse: it answers 429 and makes nothing) and returns its step.
func (g *gatedBead) step(refuse bool) beadStep {
	s := beadStep{entered: make(chan struct{}), answer: make(chan struct{}), refuse: refuse}
	g.script <- s
	return s
}

// Regression (A1): two concurrent sends of one request under key K (a front-end's retry while the first
// is still in flight). The one that claimed K got a 429 and released the claim, although the other
// attempt, which had joined that claim, had made the payment and its answer was on its way. K was then
// free: a reuse of K with another amount claimed it afresh, reached Bead, got the 12.50 payment back and
// recorded it as 99.00 (201); the attempt that made the payment then got a 409. Now a claim another
// attempt has joined is not freed by the claimer's refusal: the reuse is a 409 before Bead, and the
// attempt that made the payment gets it.
func TestBreak7OneAttemptsRefusalFreedAKeyAConcurrentAttemptUsed(t *testing.T) {
	f, g := newGatedFixture(t)

	send := func(body string) <-chan apiReply {
		ch := make(chan apiReply, 1)
		go func() { ch <- f.api(t, "K", body) }()
		return ch
	}
	first := g.step(true) // the attempt that claims K: refused with 429
	r1 := send(`{"requestedAmount":"12.50","reference":"order-1"}`)
	<-first.entered
	second := g.step(false) // the same request again: joins the claim, Bead makes the payment
	r2 := send(`{"requestedAmount":"12.50","reference":"order-1"}`)
	<-second.entered
	close(first.answer)
	if r := <-r1; r.status != http.StatusTooManyRequests {
		t.Fatalf("first attempt: %d, want 429", r.status)
	}

	third := g.step(false)
	close(third.answer)
	r3 := f.api(t, "K", `{"requestedAmount":"99.00","reference":"order-1"}`)
	close(second.answer)
	r2r := <-r2

	tid, _ := r3.body["trackingId"].(string)
	if r3.status != http.StatusConflict {
		t.Errorf("K reused with 99.00 after Bead made a 12.50 payment under K: %d, trackingId %s recorded as %v while Bead made it for %s; "+
			"want 409 before Bead", r3.status, tid, r3.body["requestedAmount"], g.amounts[tid])
	}
	if r2r.status != http.StatusCreated || r2r.body["requestedAmount"] != "12.50" {
		t.Errorf("the attempt that made the payment: %d %v, want 201 with it", r2r.status, r2r.body["title"])
	}
	if g.made != 1 {
		t.Errorf("Bead made %d payments, want 1", g.made)
	}
}

// paymentIDOnlyBead answers a create as the bead client accepts it (bead/payments.go: "neither trackingId
// nor paymentId" is the only unreadable case): a paymentId and no trackingId.
type paymentIDOnlyBead struct {
	fakeBead
	made int
}

func (f *paymentIDOnlyBead) CreatePayment(context.Context, string, bead.CreatePaymentRequest, string) (*bead.CreatedPayment, error) {
	f.made++
	return &bead.CreatedPayment{PaymentID: "0123456789abcdef01234567", PaymentURLs: []string{"https://pay.example/p"}}, nil
}

// Regression (A3): a 2xx create answer the client accepts (paymentId, no trackingId) cannot be recorded
// (AddPayment requires a tracking id), and that was reported as 503 session_store_unavailable "try again
// in a moment" while the store was fine, and the form was lost (bare 503 page). bead-api.md has a
// trackingId in every revision of the answer, and everything here goes by it, so such an answer is one
// this server cannot use: 502 unknown (the payment may exist), the form keeps its key and "sent".
func TestBreak7PaymentIDOnlyAnswerWasReportedAsStoreOutage(t *testing.T) {
	fixture := func(t *testing.T) (*formFixture, *paymentIDOnlyBead) {
		mem, err := session.NewMemory(session.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fb := &paymentIDOnlyBead{}
		f := &formFixture{srv: terminalServer(t, mem, fb, nil)}
		now := time.Now()
		f.cookie = seedSession(t, mem, idemTerminal, "5eadbeef0000000000000a01", session.Token{
			AccessToken: jwtFor(idemTerminal, now.Add(time.Hour)), RefreshToken: "r", Expiry: now.Add(time.Hour), ObtainedAt: now}).ID
		return f, fb
	}
	t.Run("api", func(t *testing.T) {
		f, fb := fixture(t)
		r := f.api(t, "k-pid", `{"requestedAmount":"3.00","reference":"order-3"}`)
		if fb.made != 1 {
			t.Fatalf("Bead made %d", fb.made)
		}
		r.wantProblem(t, "paymentId-only answer", http.StatusBadGateway, CauseUnknown)
		if d, _ := r.body["detail"].(string); !strings.Contains(d, "may have been made") || !strings.Contains(d, "same Idempotency-Key") {
			t.Errorf("detail %q, want it to say the payment may exist and to retry with the same Idempotency-Key", d)
		}
	})
	t.Run("form", func(t *testing.T) {
		f, _ := fixture(t)
		form := f.newForm(t, "3.00", "order-3")
		r := f.do(t, "POST", "/payments", form)
		if r.status != http.StatusBadGateway || r.doc.Find(`[data-testid="new-payment-form"]`).Length() != 1 {
			t.Fatalf("paymentId-only answer: %d, want 502 and the form again", r.status)
		}
		if again := r.fields(t); again.Get("formKey") != form.Get("formKey") || again.Get("sent") == "" {
			t.Errorf("key %q (was %q), sent %q; want the same key and sent", again.Get("formKey"), form.Get("formKey"), again.Get("sent"))
		}
	})
}

// addFailingStore is a store whose payment records cannot be written, as a store that is down, for its
// first failures adds.
type addFailingStore struct {
	session.Store
	failures int
}

func (s *addFailingStore) AddPayment(ctx context.Context, p session.Payment) (*session.Payment, bool, error) {
	if s.failures > 0 {
		s.failures--
		return nil, false, fmt.Errorf("session: add payment: %w: i/o timeout", session.ErrUnavailable)
	}
	return s.Store.AddPayment(ctx, p)
}

// Regression (A2): a keyed create whose payment Bead made but whose record could not be written answered
// word for word what a create refused before Bead is asked answers (503 session_store_unavailable, "try
// again in a moment"), which README says means nothing was sent; a caller that trusts it may change the
// details or the key and make a second payment. The form showed the bare 503 page without the form and
// its key, and the staff member's next form made a second payment. Now the answer says the payment was
// made, names its trackingId and says to resend the same request with the same key (503, Retry-After);
// the form comes back with its key and "sent" and a banner saying so; sent again, either gets the payment
// and records it, and Bead makes no second.
func TestBreak7PaymentMadeButUnrecordedLookedLikeNothingSent(t *testing.T) {
	const body = `{"requestedAmount":"12.50","reference":"order-1"}`
	down := newFormFixtureOn(t, func(st session.Store) session.Store { return claimFailingStore{st} })
	notSent := down.api(t, "k-1", body)
	tid := fmt.Sprintf("%032x", 1) // keyedBead's first payment

	t.Run("api", func(t *testing.T) {
		st := &addFailingStore{failures: 1}
		f := newFormFixtureOn(t, func(inner session.Store) session.Store { st.Store = inner; return st })
		r := f.api(t, "k-1", body)
		if f.bead.made != 1 {
			t.Fatalf("Bead made %d payments, want 1", f.bead.made)
		}
		r.wantProblem(t, "payment made, not recorded", http.StatusServiceUnavailable, CauseSessionStoreUnavailable)
		d, _ := r.body["detail"].(string)
		if r.body["title"] == notSent.body["title"] || d == notSent.body["detail"] {
			t.Errorf("title %v, detail %q: the words of a create refused before Bead (%v, %v)", r.body["title"], d, notSent.body["title"], notSent.body["detail"])
		}
		for _, want := range []string{"Bead made the payment", tid, "same Idempotency-Key"} {
			if !strings.Contains(d, want) {
				t.Errorf("detail %q, want it to say %q", d, want)
			}
		}
		if r.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		again := f.api(t, "k-1", body)
		if again.status != http.StatusCreated || again.body["trackingId"] != tid || f.bead.made != 1 {
			t.Errorf("sent again: %d %v, Bead made %d; want 201 with %s and no second payment", again.status, again.body["trackingId"], f.bead.made, tid)
		}
	})
	t.Run("form", func(t *testing.T) {
		st := &addFailingStore{failures: 1}
		f := newFormFixtureOn(t, func(inner session.Store) session.Store { st.Store = inner; return st })
		form := f.newForm(t, "12.50", "order-2")
		r := f.do(t, "POST", "/payments", form)
		if r.status != http.StatusServiceUnavailable || r.doc.Find(`[data-testid="new-payment-form"]`).Length() != 1 {
			t.Fatalf("form: %d, want 503 and the form again; page says %q", r.status, strings.Join(strings.Fields(r.doc.Find("main").Text()), " "))
		}
		again := r.fields(t)
		if again.Get("formKey") != form.Get("formKey") || again.Get("sent") == "" {
			t.Errorf("key %q (was %q), sent %q; want the same key and sent", again.Get("formKey"), form.Get("formKey"), again.Get("sent"))
		}
		if got := r.text("create-failure-heading"); got != "Bead created the payment, but this server could not record it." {
			t.Errorf("heading %q, want it to say the payment was made", got)
		}
		if got := r.text("create-failure-summary"); !strings.Contains(got, tid) {
			t.Errorf("summary %q, want the tracking id %s", got, tid)
		}
		done := f.do(t, "POST", "/payments", again)
		if done.status != http.StatusSeeOther || done.location != "/payments/"+tid || f.bead.made != 1 {
			t.Errorf("sent again: %d %q, Bead made %d; want the payment Bead made and no second", done.status, done.location, f.bead.made)
		}
	})
}

// Regression (A4): README says an Idempotency-Key "of 1 to 255 printable ASCII characters; any other is
// refused with 400 invalid_request, never ignored", but a header that was present and empty (or only
// spaces, which HTTP parsing trims away: a client whose key generator returned "") was taken for no
// header: each retry made a payment. Now it is a 400 that never reaches Bead; no header at all is still a
// create without a key.
func TestBreak7EmptyIdempotencyKeyHeaderWasIgnored(t *testing.T) {
	f := newFormFixture(t)
	send := func(key []string) apiReply {
		t.Helper()
		req := httptest.NewRequest("POST", "/api/v1/payments", strings.NewReader(`{"requestedAmount":"2.00","reference":"order-e"}`))
		req.Header.Set("Cookie", "beadbff_session="+f.cookie)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF", "1")
		if key != nil {
			req.Header["Idempotency-Key"] = key
		}
		res, err := f.srv.App().Test(req, 5000)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		r := apiReply{status: res.StatusCode, header: res.Header}
		_ = json.NewDecoder(res.Body).Decode(&r.body)
		return r
	}
	for _, key := range []string{"", "   "} {
		for range 2 {
			send([]string{key}).wantProblem(t, fmt.Sprintf("Idempotency-Key %q", key), http.StatusBadRequest, CauseInvalidRequest)
		}
	}
	if f.bead.calls != 0 {
		t.Errorf("Bead was asked %d times for blank keys, want never", f.bead.calls)
	}
	if r := send(nil); r.status != http.StatusCreated {
		t.Errorf("no Idempotency-Key header: %d, want 201", r.status)
	}
}

// Regression (noticed while fixing A1): a form sent twice, the first send still at Bead (which makes the
// payment) while the second, joining its claim, is refused (429). The page the browser shows is the
// second's, and it came back with a new key, so sending it again could make a second payment. It keeps
// its key now: sent again, it gets the first send's payment.
func TestBreak7FormRefusedWhileAnEarlierSendIsInFlightKeepsItsKey(t *testing.T) {
	f, g := newGatedFixture(t)
	form := f.do(t, "GET", "/payments/new", nil).fields(t)
	form.Set("amount", "12.50")
	form.Set("reference", "order-twice")
	first := g.step(false) // makes the payment; its answer is held
	firstReply := make(chan formReply, 1)
	go func() { firstReply <- f.do(t, "POST", "/payments", form) }()
	<-first.entered
	second := g.step(true)
	close(second.answer)
	r := f.do(t, "POST", "/payments", form)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second send: %d, want 429", r.status)
	}
	if got := r.fields(t).Get("formKey"); got != form.Get("formKey") {
		t.Errorf("the refused second send came back with key %q, want the form's own %q: the first send may have made the payment", got, form.Get("formKey"))
	}
	close(first.answer)
	if fr := <-firstReply; fr.status != http.StatusSeeOther {
		t.Errorf("first send: %d, want 303 to the payment", fr.status)
	}
	again := g.step(false)
	close(again.answer)
	resend := f.do(t, "POST", "/payments", r.fields(t))
	if resend.status != http.StatusSeeOther || g.made != 1 {
		t.Errorf("the page sent again: %d with Bead at %d payments, want 303 to the one payment", resend.status, g.made)
	}
}
