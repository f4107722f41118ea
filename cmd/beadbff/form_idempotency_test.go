package main

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// newPaymentForm opens /payments/new and returns the hidden fields a browser would send with it.
func (e *env) newPaymentForm(c *http.Client) url.Values {
	e.t.Helper()
	r := e.do(c, "GET", e.url+"/payments/new", nil, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET /payments/new: %d", r.status)
	}
	return hiddenFields(e.t, r.body)
}

// hiddenFields are the hidden inputs of the new-payment form on a page.
func hiddenFields(t testing.TB, page []byte) url.Values {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	out := url.Values{}
	doc.Find(`[data-testid="new-payment-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		out.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	if out.Get("csrf") == "" {
		t.Fatalf("no new-payment form with its hidden fields on the page:\n%.1500s", page)
	}
	return out
}

func withDetails(hidden url.Values, amount, reference string) string {
	v := url.Values{}
	for k, vs := range hidden {
		v[k] = vs
	}
	v.Set("amount", amount)
	v.Set("reference", reference)
	v.Set("description", "Form key test")
	return v.Encode()
}

func (e *env) paymentCount(c *http.Client) int {
	e.t.Helper()
	ps, _ := e.api(c, "GET", "/api/v1/payments", nil).json(e.t)["payments"].([]any)
	return len(ps)
}

// Regression: the new-payment form got a fresh Idempotency-Key on every submit, so a double click, a
// browser's resend or a retry after a timeout made two payments at Bead. Now the form carries a key of
// its own: the same form sent twice (one after the other, or both at once) makes one payment, and the
// second submit lands on the first one's page. A refusal that proves no payment was made gives the form
// a new key; a key that is not one of ours is refused before Bead is asked.
func TestFormSentTwiceMakesOnePayment(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	staff := e.client()
	e.login(staff, 0)
	created := func() float64 { return e.stat("paymentsCreated") }

	t.Run("the same form sent twice", func(t *testing.T) {
		hidden := e.newPaymentForm(staff)
		if len(hidden.Get("formKey")) != 43 {
			t.Fatalf("form key %q, want a random 43-character key", hidden.Get("formKey"))
		}
		if other := e.newPaymentForm(staff).Get("formKey"); other == hidden.Get("formKey") {
			t.Fatal("two renderings of the form share a key")
		}
		before, listed := created(), e.paymentCount(staff)
		body := withDetails(hidden, "8.40", "double-submit")
		first := e.form(staff, "/payments", body)
		second := e.form(staff, "/payments", body)
		for i, r := range []reply{first, second} {
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/payments/") {
				t.Fatalf("submit %d: %d %q, want a redirect to the payment", i+1, r.status, r.header.Get("Location"))
			}
		}
		if first.header.Get("Location") != second.header.Get("Location") {
			t.Errorf("the second submit went to %s, want the first one's page %s", second.header.Get("Location"), first.header.Get("Location"))
		}
		if n := created() - before; n != 1 {
			t.Errorf("Bead made %v payments for one form sent twice, want 1", n)
		}
		if n := e.paymentCount(staff) - listed; n != 1 {
			t.Errorf("%d payments listed for one form sent twice, want 1", n)
		}
		dash := e.do(staff, "GET", e.url+"/", nil, nil)
		doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(dash.body))
		rows := doc.Find(`[data-testid="payment-row"]`).FilterFunction(func(_ int, s *goquery.Selection) bool {
			return strings.Contains(s.Text(), "double-submit")
		})
		if rows.Length() != 1 || "/payments/"+rows.AttrOr("data-tracking-id", "") != first.header.Get("Location") {
			t.Errorf("dashboard rows of double-submit: %d, want the one payment", rows.Length())
		}
		page := e.do(staff, "GET", e.url+second.header.Get("Location"), nil, nil)
		if page.status != http.StatusOK || !bytes.Contains(page.body, []byte("double-submit")) {
			t.Errorf("the page the second submit landed on: %d, want the payment double-submit", page.status)
		}

		// The key, sent again after an edit (no "sent" field to catch it): the form names the payment
		// the key made, creates nothing, and comes back with a new key.
		edited := e.form(staff, "/payments", withDetails(hidden, "9.99", "double-submit"))
		if edited.status != http.StatusConflict || !bytes.Contains(edited.body, []byte(`data-testid="form-error"`)) ||
			!bytes.Contains(edited.body, []byte("already created a payment of 8.40 USD")) {
			t.Errorf("the same key with another amount: %d, want 409 naming the payment it made:\n%.2000s", edited.status, edited.body)
		}
		if got := hiddenFields(t, edited.body).Get("formKey"); got == hidden.Get("formKey") || len(got) != 43 {
			t.Errorf("form key after the conflict %q, want a new one", got)
		}
		if n := created() - before; n != 1 {
			t.Errorf("Bead made %v payments, want still 1", n)
		}
	})

	t.Run("a double click: both at once", func(t *testing.T) {
		before := created()
		body := withDetails(e.newPaymentForm(staff), "3.10", "double-click")
		var wg sync.WaitGroup
		replies := make([]reply, 2)
		for i := range replies {
			wg.Go(func() { replies[i] = e.form(staff, "/payments", body) })
		}
		wg.Wait()
		if replies[0].status != http.StatusSeeOther || replies[0].header.Get("Location") != replies[1].header.Get("Location") {
			t.Errorf("two submits at once: %d %q and %d %q, want both on one payment's page",
				replies[0].status, replies[0].header.Get("Location"), replies[1].status, replies[1].header.Get("Location"))
		}
		if n := created() - before; n != 1 {
			t.Errorf("Bead made %v payments for a double click, want 1", n)
		}
	})

	t.Run("a refusal that proves no payment was made gives a new key", func(t *testing.T) {
		hidden := e.newPaymentForm(staff)
		e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "waf_block", "count": 2})
		r := e.form(staff, "/payments", withDetails(hidden, "5.00", "blocked"))
		if r.status != http.StatusBadGateway {
			t.Fatalf("create into a WAF: %d, want 502", r.status)
		}
		again := hiddenFields(t, r.body)
		if again.Get("formKey") == hidden.Get("formKey") || len(again.Get("formKey")) != 43 || again.Has("sent") {
			t.Errorf("after a WAF refusal: key %q (was %q), sent %q; want a new key and no sent details",
				again.Get("formKey"), hidden.Get("formKey"), again.Get("sent"))
		}
		// So the staff member may correct the amount and send it: a new payment, no conflict.
		before := created()
		if r := e.form(staff, "/payments", withDetails(again, "5.50", "blocked")); r.status != http.StatusSeeOther {
			t.Errorf("corrected form after the refusal: %d, want the payment made", r.status)
		}
		if n := created() - before; n != 1 {
			t.Errorf("Bead made %v payments, want 1", n)
		}
	})

	t.Run("a malformed key is refused before Bead is asked", func(t *testing.T) {
		hidden := e.newPaymentForm(staff)
		hidden.Set("formKey", "not-a-key\x7f")
		before := e.apiRequests()
		r := e.form(staff, "/payments", withDetails(hidden, "2.00", "bad-key"))
		if r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("nothing was sent to Bead")) {
			t.Errorf("malformed key: %d, want 400 with a form error saying nothing was sent", r.status)
		}
		if n := e.apiRequests() - before; n != 0 {
			t.Errorf("%v calls reached Bead for a malformed key, want none", n)
		}
		if got := hiddenFields(t, r.body).Get("formKey"); len(got) != 43 {
			t.Errorf("form key after the refusal %q, want a fresh one", got)
		}
	})

	t.Run("a form without a key (rendered before keys) still creates", func(t *testing.T) {
		hidden := e.newPaymentForm(staff)
		hidden.Del("formKey")
		if r := e.form(staff, "/payments", withDetails(hidden, "1.00", "no-key")); r.status != http.StatusSeeOther {
			t.Errorf("form without a key: %d, want the payment made", r.status)
		}
	})
}
