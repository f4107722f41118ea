package bff

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"beadbff/bff/bead"
	"beadbff/session"
)

// keyedBead is Bead's create as the sandbox and bead-api.md have it: a repeated Idempotency-Key gets the
// first payment back, whatever the body. Its next answers can be scripted: a timeout after the payment
// was made (the answer lost on the way back), a 2xx after the payment was made whose body this client
// cannot read, or a 429 before anything is made. It remembers the amount it made each payment with (what
// the shopper is asked to pay).
type keyedBead struct {
	fakeBead
	byKey   map[string]*bead.CreatedPayment
	amounts map[string]string // trackingId -> the amount Bead made the payment with
	made    int
	calls   int
	answers []string // "timeout", "unreadable" or "429", taken one per call before the normal answer
}

func (f *keyedBead) CreatePayment(_ context.Context, _ string, req bead.CreatePaymentRequest, key string) (*bead.CreatedPayment, error) {
	f.calls++
	var next string
	if len(f.answers) > 0 {
		next, f.answers = f.answers[0], f.answers[1:]
	}
	if next == "429" {
		return nil, &bead.APIError{Op: "create payment", Status: http.StatusTooManyRequests, RetryAfter: time.Second}
	}
	p, ok := f.byKey[key]
	if !ok {
		f.made++
		p = &bead.CreatedPayment{TrackingID: fmt.Sprintf("%032x", f.made), PaymentURLs: []string{"https://pay.example/p"}}
		f.byKey[key] = p
		if f.amounts == nil {
			f.amounts = map[string]string{}
		}
		f.amounts[p.TrackingID] = bead.FormatAmount(req.RequestedAmount)
	}
	switch next {
	case "timeout":
		return nil, &bead.TransportError{Op: "create payment", Timeout: true, Err: context.DeadlineExceeded}
	case "unreadable":
		return nil, fmt.Errorf("bead: create payment: %w: paymentUrls: json: cannot unmarshal number", bead.ErrUnexpectedAnswer)
	}
	return p, nil
}

type formFixture struct {
	srv    *Server
	bead   *keyedBead
	cookie string
}

func newFormFixture(t *testing.T) *formFixture {
	t.Helper()
	return newFormFixtureOn(t, nil)
}

// newFormFixtureOn is newFormFixture with the server's store wrapped by wrap (nil: the memory store itself).
func newFormFixtureOn(t *testing.T, wrap func(session.Store) session.Store) *formFixture {
	t.Helper()
	return newFormFixtureWith(t, wrap, nil)
}

// newFormFixtureWith is newFormFixtureOn whose server's Bead is realm (nil: f.bead).
func newFormFixtureWith(t *testing.T, wrap func(session.Store) session.Store, realm beadAPI) *formFixture {
	t.Helper()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var st session.Store = mem
	if wrap != nil {
		st = wrap(mem)
	}
	f := &formFixture{bead: &keyedBead{byKey: map[string]*bead.CreatedPayment{}}}
	if realm == nil {
		realm = f.bead
	}
	f.srv = terminalServer(t, st, realm, nil)
	now := time.Now()
	f.cookie = seedSession(t, st, "5eadbeef00000000000a0001", "5eadbeef0000000000000a01", session.Token{
		AccessToken: jwtFor("5eadbeef00000000000a0001", now.Add(time.Hour)), RefreshToken: "r", Expiry: now.Add(time.Hour), ObtainedAt: now}).ID
	return f
}

type formReply struct {
	status   int
	location string
	doc      *goquery.Document
}

func (f *formFixture) do(t *testing.T, method, path string, form url.Values) formReply {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Cookie", "beadbff_session="+f.cookie)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := f.srv.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(raw))
	return formReply{status: resp.StatusCode, location: resp.Header.Get("Location"), doc: doc}
}

// fields is what a browser sends back of the new-payment form on the page: hidden fields and values.
func (r formReply) fields(t *testing.T) url.Values {
	t.Helper()
	form := r.doc.Find(`[data-testid="new-payment-form"]`)
	if form.Length() != 1 {
		t.Fatalf("no new-payment form on the page (%d)", r.status)
	}
	v := url.Values{}
	form.Find("input").Each(func(_ int, s *goquery.Selection) { v.Set(s.AttrOr("name", ""), s.AttrOr("value", "")) })
	v.Set("description", form.Find("textarea").Text())
	return v
}

// newForm opens /payments/new and fills in an amount and a reference, as a staff member would.
func (f *formFixture) newForm(t *testing.T, amount, reference string) url.Values {
	t.Helper()
	form := f.do(t, "GET", "/payments/new", nil).fields(t)
	form.Set("amount", amount)
	form.Set("reference", reference)
	return form
}

// wantRefusedBeforeBead sends form and checks that it is refused with 409 and a form error saying want,
// with no call to Bead.
func (f *formFixture) wantRefusedBeforeBead(t *testing.T, what string, form url.Values, want string) formReply {
	t.Helper()
	calls := f.bead.calls
	r := f.do(t, "POST", "/payments", form)
	if r.status != http.StatusConflict || !strings.Contains(r.text("form-error"), want) {
		t.Errorf("%s: %d %q, want 409 and a form error saying %q", what, r.status, r.text("form-error"), want)
	}
	if f.bead.calls != calls {
		t.Errorf("%s: %d calls to Bead, want none", what, f.bead.calls-calls)
	}
	return r
}

func (r formReply) text(testID string) string {
	return strings.TrimSpace(r.doc.Find(`[data-testid="` + testID + `"]`).Text())
}

// Regression (with TestFormSentTwiceMakesOnePayment end to end): when Bead's answer to a create is lost
// (a timeout), the form comes back with the same key and the details it sent, so sending it again gets
// the payment Bead made instead of a second one; it cannot be sent with other details under that key
// (Bead would answer with the first payment and this server would record it with the new details), and
// a later clear refusal does not make the key safe to drop, since the first attempt may still have made
// the payment.
func TestFormKeyKeptWhileTheOutcomeIsUnknown(t *testing.T) {
	t.Run("sent again unchanged after a timeout: the payment Bead made, not a second", func(t *testing.T) {
		f := newFormFixture(t)
		form := f.do(t, "GET", "/payments/new", nil).fields(t)
		key := form.Get("formKey")
		form.Set("amount", "12.50")
		form.Set("reference", "order-77")
		f.bead.answers = []string{"timeout"}
		lost := f.do(t, "POST", "/payments", form)
		if lost.status != http.StatusGatewayTimeout {
			t.Fatalf("create whose answer was lost: %d, want 504", lost.status)
		}
		again := lost.fields(t)
		if again.Get("formKey") != key || again.Get("sent") == "" {
			t.Errorf("after the timeout: key %q (was %q), sent %q; want the same key and the details sent", again.Get("formKey"), key, again.Get("sent"))
		}
		if got := lost.text("create-failure-advice"); !strings.Contains(got, "Send this form again as it is") {
			t.Errorf("advice %q, want it to say sending again is safe", got)
		}
		done := f.do(t, "POST", "/payments", again)
		if done.status != http.StatusSeeOther || done.location != "/payments/"+fmt.Sprintf("%032x", 1) {
			t.Errorf("sent again: %d %q, want the payment the first attempt made", done.status, done.location)
		}
		if f.bead.made != 1 {
			t.Errorf("Bead made %d payments, want 1", f.bead.made)
		}
	})

	t.Run("edited after a timeout: refused here, the details sent shown again", func(t *testing.T) {
		f := newFormFixture(t)
		form := f.do(t, "GET", "/payments/new", nil).fields(t)
		form.Set("amount", "12.50")
		form.Set("reference", "order-78")
		form.Set("description", "Two coffees")
		f.bead.answers = []string{"timeout"}
		again := f.do(t, "POST", "/payments", form).fields(t)
		again.Set("amount", "13.00") // the staff member changes the amount before sending it again
		refused := f.wantRefusedBeforeBead(t, "edited after a timeout", again, "cannot tell whether Bead created that payment")
		restored := refused.fields(t)
		if restored.Get("amount") != "12.50" || restored.Get("reference") != "order-78" || restored.Get("description") != "Two coffees" ||
			restored.Get("formKey") != form.Get("formKey") {
			t.Errorf("form after the refusal %v, want the details sent and the same key", restored)
		}
		if done := f.do(t, "POST", "/payments", restored); done.status != http.StatusSeeOther || f.bead.made != 1 {
			t.Errorf("sent as restored: %d, %d payments made; want the first payment and no second", done.status, f.bead.made)
		}
	})

	t.Run("a clear refusal after a timeout keeps the key", func(t *testing.T) {
		f := newFormFixture(t)
		form := f.do(t, "GET", "/payments/new", nil).fields(t)
		form.Set("amount", "4.00")
		form.Set("reference", "order-79")
		f.bead.answers = []string{"timeout", "429"}
		again := f.do(t, "POST", "/payments", form).fields(t)
		limited := f.do(t, "POST", "/payments", again)
		if limited.status != http.StatusTooManyRequests {
			t.Fatalf("second attempt: %d, want 429", limited.status)
		}
		if got := limited.fields(t); got.Get("formKey") != form.Get("formKey") || got.Get("sent") == "" {
			t.Errorf("after timeout then 429: key %q (was %q), sent %q; the first attempt may have made the payment, so the key must stay",
				got.Get("formKey"), form.Get("formKey"), got.Get("sent"))
		}
		if got := limited.text("create-failure-heading"); got != "This server cannot tell whether Bead created the payment." {
			t.Errorf("heading %q, want it to say the outcome is unknown", got)
		}
	})

	t.Run("a clear refusal of a fresh form gives a new key", func(t *testing.T) {
		f := newFormFixture(t)
		form := f.do(t, "GET", "/payments/new", nil).fields(t)
		form.Set("amount", "4.00")
		form.Set("reference", "order-80")
		f.bead.answers = []string{"429"}
		got := f.do(t, "POST", "/payments", form).fields(t)
		if got.Get("formKey") == form.Get("formKey") || got.Has("sent") {
			t.Errorf("after a 429: key %q (was %q), sent %q; want a new key", got.Get("formKey"), form.Get("formKey"), got.Get("sent"))
		}
	})
}

// Found by a new-user walkthrough: a refused form is answered at /payments, where it posts; reloading or
// revisiting that address gave 404. It leads to the payments now.
func TestPaymentsAddressLeadsToThePayments(t *testing.T) {
	f := newFormFixture(t)
	if r := f.do(t, "GET", "/payments", nil); r.status != http.StatusFound || r.location != "/" {
		t.Errorf("GET /payments: %d to %q, want 302 to /", r.status, r.location)
	}
}
