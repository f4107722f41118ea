package bff

// Regressions of the sixth break-it review (round 2 of the form-key change): idempotency keys. Each test
// names the defect it guards against.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
