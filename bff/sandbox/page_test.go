package sandbox

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
)

// noRedirects is a client that shows the page's redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f *fixture) page(t *testing.T, pageID string) (int, *goquery.Document) {
	t.Helper()
	resp, raw := f.call(t, http.MethodGet, "/pay/"+pageID, nil, nil)
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("page HTML: %v", err)
	}
	return resp.StatusCode, doc
}

func (f *fixture) choose(t *testing.T, pageID, outcome string) *http.Response {
	t.Helper()
	resp, err := noRedirects.PostForm(f.base+"/pay/"+pageID, url.Values{"outcome": {outcome}})
	if err != nil {
		t.Fatalf("POST page: %v", err)
	}
	resp.Body.Close()
	return resp
}

func text(doc *goquery.Document, testID string) string {
	return strings.TrimSpace(doc.Find(`[data-testid="` + testID + `"]`).Text())
}

func TestHostedPageShowsThePayment(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(0)
	c := f.createPayment(t, f.token(t, 0), paymentBody(term, "12.50"))
	status, doc := f.page(t, c.PaymentPageID)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	var outcomes []string
	doc.Find(`form button[name="outcome"]`).Each(func(_ int, b *goquery.Selection) {
		outcomes = append(outcomes, b.AttrOr("value", ""))
	})
	got := []any{text(doc, "merchant"), text(doc, "amount"), text(doc, "reference"), text(doc, "status"), outcomes,
		doc.Find(`link, script, img`).Length()}
	want := []any{term.MerchantName, "$12.50 USD", "ORDER-1", "created",
		[]string{"completed", "underpaid", "overpaid", "expired", "cancelled"}, 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("[merchant, amount, reference, status, buttons, external assets] (-want +got):\n%s", diff)
	}
	if status, _ := f.page(t, strings.Repeat("0", 24)); status != http.StatusNotFound {
		t.Errorf("unknown page: %d, want 404", status)
	}
}

func TestHostedPageButtonsMoveThePayment(t *testing.T) {
	for _, outcome := range []string{"completed", "underpaid", "overpaid", "expired", "cancelled"} {
		t.Run(outcome, func(t *testing.T) {
			f := newFixture(t, Options{})
			token := f.token(t, 0)
			body := paymentBody(f.terminal(0), "20.00")
			body["redirectUrl"] = "https://shop.example/thanks?order=7"
			c := f.createPayment(t, token, body)

			resp := f.choose(t, c.PaymentPageID, outcome)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST: %d, want 303", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			gotRedirect := []string{loc.Host + loc.Path, loc.Query().Get("order"), loc.Query().Get("paymentId"), loc.Query().Get("paymentPageId"), loc.Query().Get("statusCode")}
			if diff := cmp.Diff([]string{"shop.example/thanks", "7", c.PaymentID, c.PaymentPageID, outcome}, gotRedirect); diff != "" {
				t.Errorf("redirect (-want +got):\n%s", diff)
			}
			if got := f.tracking(t, token, c.TrackingID)["statusCode"]; got != outcome {
				t.Errorf("API status %v, want %s", got, outcome)
			}
		})
	}
}

func TestHostedPageFinalPaymentCannotChange(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	c := f.createPayment(t, token, paymentBody(f.terminal(0), "4.00")) // no redirectUrl

	resp := f.choose(t, c.PaymentPageID, "completed")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/pay/"+c.PaymentPageID {
		t.Errorf("POST: %d to %q, want 303 back to the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, doc := f.page(t, c.PaymentPageID)
	if got := []any{text(doc, "status"), doc.Find("button").Length()}; !cmp.Equal([]any{"completed", 0}, got) {
		t.Errorf("[status, buttons] = %v, want completed and no buttons", got)
	}

	if resp := f.choose(t, c.PaymentPageID, "cancelled"); resp.StatusCode != http.StatusConflict {
		t.Errorf("second POST: %d, want 409", resp.StatusCode)
	}
	if resp := f.choose(t, c.PaymentPageID, "free"); resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown outcome: %d", resp.StatusCode)
	}
	if got := f.tracking(t, token, c.TrackingID)["statusCode"]; got != "completed" {
		t.Errorf("status after a refused change: %v, want completed", got)
	}
}
