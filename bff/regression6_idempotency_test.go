package bff

// Regressions of the sixth break-it review (round 2 of the form-key change): idempotency keys. Each test
// names the defect it guards against.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"beadbff/session"
)

const idemTerminal = "5eadbeef00000000000a0001"

// apiReply is an answer of the JSON API, its body decoded.
type apiReply struct {
	status int
	header http.Header
	body   map[string]any
}

// api creates a payment through the JSON API with the fixture's session, under Idempotency-Key key
// ("" for none).
func (f *formFixture) api(t *testing.T, key, body string) apiReply {
	t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/payments", strings.NewReader(body))
	req.Header.Set("Cookie", "beadbff_session="+f.cookie)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF", "1")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := f.srv.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiReply{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// wantProblem checks that r is a problem+json answer of status and cause.
func (r apiReply) wantProblem(t *testing.T, what string, status int, cause string) {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" || r.body["cause"] != cause {
		t.Errorf("%s: %d %s cause %v, want %d problem+json cause %s (%v)", what, r.status, r.header.Get("Content-Type"), r.body["cause"], status, cause, r.body)
	}
}

// Regression (defect 1, API): a create under key K whose answer was lost after Bead made the payment
// (12.50), then K with another body, got Bead's first payment recorded as 99.00: the check against the
// record only worked once the first create was recorded. Now K is bound to its details before Bead is
// asked: another body is a 409 that never reaches Bead, the first body gets the payment Bead made, and
// after that the 409 still stands.
func TestBreak6APIKeyReusedWithOtherDetailsAfterALostAnswerIsRefusedBeforeBead(t *testing.T) {
	f := newFormFixture(t)
	f.bead.answers = []string{"timeout"}
	if r := f.api(t, "order-1001-try", `{"requestedAmount":"12.50","reference":"order-1001"}`); r.status != http.StatusGatewayTimeout {
		t.Fatalf("first create: %d, want 504 (answer lost)", r.status)
	}
	for _, when := range []string{"after the lost answer", "after the payment was recorded"} {
		calls := f.bead.calls
		r := f.api(t, "order-1001-try", `{"requestedAmount":"99.00","reference":"order-1001"}`)
		r.wantProblem(t, "same key, other amount, "+when, http.StatusConflict, CauseInvalidRequest)
		if r.body["title"] != "Idempotency-Key already used" {
			t.Errorf("%s: title %v, want the Idempotency-Key 409's", when, r.body["title"])
		}
		if f.bead.calls != calls {
			t.Errorf("%s: Bead was asked %d times for the other body, want never", when, f.bead.calls-calls)
		}
		if when == "after the lost answer" {
			// The first body again: the payment Bead made, recorded as Bead made it.
			ok := f.api(t, "order-1001-try", `{"requestedAmount":"12.5","reference":"order-1001"}`)
			tid, _ := ok.body["trackingId"].(string)
			amount, _ := ok.body["requestedAmount"].(string)
			if ok.status != http.StatusCreated || !decimalEqual(amount, decimal.RequireFromString(f.bead.amounts[tid])) || f.bead.made != 1 {
				t.Fatalf("the first body again: %d %v (Bead made %s, %d payments), want 201 with Bead's payment", ok.status, ok.body, f.bead.amounts[tid], f.bead.made)
			}
		}
	}
}

// Regression (defect 1): the claim is given up only when Bead's refusal proves no payment was made, and
// only by the attempt that made it: a key refused with a 429 may then carry corrected details, but after
// a lost answer a later 429 does not free it (the first attempt may have made the payment).
func TestBreak6KeyFreedOnlyByARefusalThatProvesNoPayment(t *testing.T) {
	f := newFormFixture(t)
	f.bead.answers = []string{"429"}
	if r := f.api(t, "k-refused", `{"requestedAmount":"12.50","reference":"r-1"}`); r.status != http.StatusTooManyRequests {
		t.Fatalf("create: %d, want 429", r.status)
	}
	r := f.api(t, "k-refused", `{"requestedAmount":"13.00","reference":"r-1"}`)
	if tid, _ := r.body["trackingId"].(string); r.status != http.StatusCreated || r.body["requestedAmount"] != "13.00" || f.bead.amounts[tid] != "13.00" {
		t.Errorf("corrected after a 429: %d %v, want 201 for 13.00", r.status, r.body)
	}

	f.bead.answers = []string{"timeout", "429"}
	f.api(t, "k-unknown", `{"requestedAmount":"4.00","reference":"r-2"}`)
	if r := f.api(t, "k-unknown", `{"requestedAmount":"4.00","reference":"r-2"}`); r.status != http.StatusTooManyRequests {
		t.Fatalf("retry: %d, want 429", r.status)
	}
	calls := f.bead.calls
	f.api(t, "k-unknown", `{"requestedAmount":"5.00","reference":"r-2"}`).wantProblem(t, "other details after timeout then 429", http.StatusConflict, CauseInvalidRequest)
	if f.bead.calls != calls {
		t.Error("Bead was asked for the other details")
	}
}

// Regression (defect 1, form): the page first sent with key K has no "sent" field (only the page that
// answered the POST has it); sent again after a lost answer with another amount (after Back, or a
// restored form), it got Bead's 12.50 payment recorded as 13.00. Now it is refused before Bead is asked
// and the form comes back with a new key, with which the new amount is a payment of its own; once the key
// has a recorded payment, the refusal names it.
func TestBreak6FormKeyWithoutSentAfterALostAnswerIsRefusedBeforeBead(t *testing.T) {
	f := newFormFixture(t)
	original := f.newForm(t, "12.50", "order-90")
	f.bead.answers = []string{"timeout"}
	if r := f.do(t, "POST", "/payments", original); r.status != http.StatusGatewayTimeout {
		t.Fatalf("first submit: %d, want 504", r.status)
	}
	original.Set("amount", "13.00") // the page first sent (key K, no "sent"), corrected after Back
	refused := f.wantRefusedBeforeBead(t, "earlier page, edited, after a lost answer", original, "already sent with other details")
	again := refused.fields(t)
	if again.Get("formKey") == original.Get("formKey") || again.Get("sent") != "" || again.Get("amount") != "13.00" {
		t.Errorf("form after the refusal: key %q (was %q), sent %q, amount %q; want a new key, no sent, the amount typed",
			again.Get("formKey"), original.Get("formKey"), again.Get("sent"), again.Get("amount"))
	}
	done := f.do(t, "POST", "/payments", again)
	tid := strings.TrimPrefix(done.location, "/payments/")
	if p, err := f.srv.store.GetPayment(context.Background(), idemTerminal, tid); done.status != http.StatusSeeOther || err != nil ||
		p.Amount != "13.00" || f.bead.amounts[tid] != "13.00" {
		t.Errorf("sent with the new key: %d %q, want a payment of 13.00 recorded as Bead made it", done.status, done.location)
	}

	// The first page unchanged gets the 12.50 payment; edited once more, it is refused naming it.
	original.Set("amount", "12.50")
	if r := f.do(t, "POST", "/payments", original); r.status != http.StatusSeeOther {
		t.Fatalf("the first page unchanged: %d, want the payment Bead made", r.status)
	}
	original.Set("amount", "14.00")
	f.wantRefusedBeforeBead(t, "the first page edited after its payment was recorded", original, "already created a payment of 12.50 USD (reference order-90)")
}

// claimFailingStore is a store whose idempotency claims fail as a store that is down does.
type claimFailingStore struct{ session.Store }

func (claimFailingStore) ClaimIdempotencyKey(context.Context, string, string, string, time.Duration) (session.IdempotencyClaim, bool, error) {
	return session.IdempotencyClaim{}, false, fmt.Errorf("session: claim idempotency key: %w: i/o timeout", session.ErrUnavailable)
}

// Regression (defect 1): a key cannot be bound while the store is down, so the create is refused with a
// 503 before Bead is asked (nothing made); a create without a key needs no claim and goes ahead.
func TestBreak6StoreDownRefusesAKeyedCreateBeforeBead(t *testing.T) {
	f := newFormFixtureOn(t, func(st session.Store) session.Store { return claimFailingStore{st} })
	f.api(t, "k-1", `{"requestedAmount":"1.00","reference":"r"}`).wantProblem(t, "keyed create, store down", http.StatusServiceUnavailable, CauseSessionStoreUnavailable)
	if f.bead.calls != 0 {
		t.Errorf("Bead was asked %d times while the key could not be bound, want never", f.bead.calls)
	}
	if r := f.api(t, "", `{"requestedAmount":"1.00","reference":"r"}`); r.status != http.StatusCreated {
		t.Errorf("create without a key: %d, want 201", r.status)
	}
}

// Regression (defect 1): what binds a key is a SHA-256 of the canonical details, never the details: the
// store holds a 64-hex fingerprint in which the reference does not appear.
func TestBreak6KeyIsBoundToAHashOfTheDetails(t *testing.T) {
	f := newFormFixture(t)
	if r := f.api(t, "k-hash", `{"requestedAmount":"12.50","reference":"order-secret-ref","description":"Two coffees"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d", r.status)
	}
	stored, first, err := f.srv.store.ClaimIdempotencyKey(context.Background(), idemTerminal, idempotencyKey(idemTerminal, "k-hash"), "probe", time.Hour)
	if err != nil || first {
		t.Fatalf("the key is not bound: %+v, %v, %v", stored, first, err)
	}
	if _, err := hex.DecodeString(stored.Fingerprint); err != nil || len(stored.Fingerprint) != 64 || stored.TrackingID == "" {
		t.Errorf("stored claim %+v, want a SHA-256 in hex and the payment it made", stored)
	}
}

// Regression (defect 2): a 2xx create answer this client cannot read (bead.ErrUnexpectedAnswer, e.g. a
// paymentUrls shape it does not know) was a 500 page without the form, although Bead had made the
// payment; the staff member's next form had a new key, and made a second payment. Now it is a 502 whose
// outcome is unknown: the form keeps its key and "sent", and sent again it lands on the payment Bead
// made; the API says the payment may exist and to retry under the same Idempotency-Key.
func TestBreak6UnreadableCreateAnswerKeepsTheFormAndItsKey(t *testing.T) {
	t.Run("form", func(t *testing.T) {
		f := newFormFixture(t)
		form := f.newForm(t, "5.00", "order-91")
		f.bead.answers = []string{"unreadable"}
		r := f.do(t, "POST", "/payments", form)
		if r.status != http.StatusBadGateway || r.doc.Find(`[data-testid="new-payment-form"]`).Length() != 1 {
			t.Fatalf("unreadable answer: %d, want 502 and the form again", r.status)
		}
		again := r.fields(t)
		if again.Get("formKey") != form.Get("formKey") || again.Get("sent") == "" {
			t.Errorf("key %q (was %q), sent %q; want the same key and sent", again.Get("formKey"), form.Get("formKey"), again.Get("sent"))
		}
		if got := r.text("create-failure-heading"); got != "This server cannot tell whether Bead created the payment." {
			t.Errorf("heading %q, want it to say the outcome is unknown", got)
		}
		if done := f.do(t, "POST", "/payments", again); done.status != http.StatusSeeOther || done.location != fmt.Sprintf("/payments/%032x", 1) || f.bead.made != 1 {
			t.Errorf("sent again: %d %q, %d payments made; want the payment Bead made and no second", done.status, done.location, f.bead.made)
		}
	})
	t.Run("api", func(t *testing.T) {
		f := newFormFixture(t)
		f.bead.answers = []string{"unreadable"}
		r := f.api(t, "k-unreadable", `{"requestedAmount":"5.00","reference":"order-92"}`)
		r.wantProblem(t, "unreadable answer", http.StatusBadGateway, CauseUnknown)
		if d, _ := r.body["detail"].(string); !strings.Contains(d, "may have been made") || !strings.Contains(d, "same Idempotency-Key") {
			t.Errorf("detail %q, want it to say the payment may exist and to retry with the same Idempotency-Key", d)
		}
		if ok := f.api(t, "k-unreadable", `{"requestedAmount":"5.00","reference":"order-92"}`); ok.status != http.StatusCreated || f.bead.made != 1 {
			t.Errorf("retry: %d, %d payments made; want 201 with the payment Bead made", ok.status, f.bead.made)
		}
	})
}

// Regression (defect 3): an Idempotency-Key of 201 to 255 characters was silently replaced by a fresh
// one, so each retry made a payment while the caller believed it protected. Now any printable key up to
// 255 characters is honoured, and a longer or non-printable one is a 400 that never reaches Bead.
func TestBreak6APIIdempotencyKeyIsHonouredUpTo255AndOtherwiseRefused(t *testing.T) {
	f := newFormFixture(t)
	for _, n := range []int{201, 255} {
		key := strings.Repeat("k", n-1) + fmt.Sprint(n%10)
		made := f.bead.made
		a := f.api(t, key, `{"requestedAmount":"7.00","reference":"order-93"}`)
		b := f.api(t, key, `{"requestedAmount":"7.00","reference":"order-93"}`)
		if a.status != http.StatusCreated || b.body["trackingId"] != a.body["trackingId"] || f.bead.made != made+1 {
			t.Errorf("%d-character key twice: %d %v, %d %v; Bead made %d; want one payment", n, a.status, a.body["trackingId"], b.status, b.body["trackingId"], f.bead.made-made)
		}
	}
	calls := f.bead.calls
	for name, key := range map[string]string{
		"256 characters": strings.Repeat("k", 256),
		"a tab":          "order\t94",
		"non-ASCII":      "commande-é",
	} {
		f.api(t, key, `{"requestedAmount":"7.00","reference":"order-94"}`).wantProblem(t, "key of "+name, http.StatusBadRequest, CauseInvalidRequest)
	}
	if f.bead.calls != calls {
		t.Errorf("Bead was asked %d times for refused keys, want never", f.bead.calls-calls)
	}
	if validIdempotencyKey("") || !validIdempotencyKey("order 95 / try 2") {
		t.Error("validIdempotencyKey: the empty key must be none, and a key with spaces and punctuation valid")
	}
}

// Checked by a break-it review: a forged "sent" field carrying markup is refused (409), shown escaped,
// never a 500, and nothing reaches Bead.
func TestBreak6ForgedSentIsEscapedAndRefused(t *testing.T) {
	f := newFormFixture(t)
	form := f.do(t, "GET", "/payments/new", nil).fields(t)
	form.Set("amount", "1.00")
	form.Set("reference", "x")
	form.Set("sent", `amount=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&reference=%3Cimg+src%3Dx%3E`)
	r := f.do(t, "POST", "/payments", form)
	html, _ := r.doc.Html()
	if r.status != http.StatusConflict || strings.Contains(html, "<script>alert(1)") || strings.Contains(html, "<img src=x>") || f.bead.calls != 0 {
		t.Errorf("forged sent: %d, Bead calls %d, markup unescaped: %v", r.status, f.bead.calls, strings.Contains(html, "<script>alert"))
	}
}
