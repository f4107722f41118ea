package views

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"beadbff/static"
)

func sampleWebhooks() WebhooksView {
	return WebhooksView{
		Page:              loggedInPage(),
		EndpointURL:       "https://bff.example/webhooks/bead",
		ConfiguredSecrets: 1,
		Deliveries: []WebhookDeliveryRow{
			{At: "2026-12-03 10:41:02 UTC", Outcome: "accepted", TrackingID: "trk_7Hq2", PaymentURL: "/payments/trk_7Hq2",
				StatusCode: "completed", StatusLabel: "Paid", RequestID: "req-1", HTTPStatus: 200},
			{At: "2026-12-03 10:41:04 UTC", Outcome: "duplicate", TrackingID: "trk_7Hq2", StatusCode: "completed",
				StatusLabel: "Paid", Detail: "this change was received before (req-1)", RequestID: "req-2", HTTPStatus: 200},
		},
		Refusals: []WebhookDeliveryRow{
			{At: "2026-12-03 10:40:00 UTC", Outcome: "refused", Check: "timestamp_stale", Detail: hostile, RequestID: "req-0", HTTPStatus: 403},
		},
	}
}

func TestWebhooksPage(t *testing.T) {
	doc, html := render(t, Webhooks(sampleWebhooks()))
	if got := text(one(t, doc, "webhook-url")); got != "https://bff.example/webhooks/bead" {
		t.Errorf("webhook URL %q", got)
	}
	form := one(t, doc, "webhook-register-form")
	if attr(t, form, "method") != "post" || attr(t, form, "action") != "/webhooks/register" {
		t.Errorf("register form posts %s %s", attr(t, form, "method"), attr(t, form, "action"))
	}
	if got := attr(t, form.Find(`input[name="csrf"]`), "value"); got != testCSRF {
		t.Errorf("register form's csrf %q, want the session's token", got)
	}
	rows := byTestID(doc, "webhook-deliveries").Find(`[data-testid="webhook-delivery"]`)
	if rows.Length() != 2 || attr(t, rows.First(), "data-outcome") != "accepted" {
		t.Errorf("%d delivery rows", rows.Length())
	}
	if href := attr(t, rows.First().Find("a"), "href"); href != "/payments/trk_7Hq2" {
		t.Errorf("payment link %q", href)
	}
	if got := text(one(t, doc, "webhook-refusal-check")); got != "timestamp_stale" {
		t.Errorf("refusal check %q", got)
	}
	if got := text(one(t, doc, "webhook-refusal-detail")); got != hostile || strings.Contains(html, hostile) {
		t.Errorf("refusal detail %q must be shown escaped", got)
	}
	none(t, doc, "webhook-no-secret")
	if doc.Find("script").Not(`[src^="`+static.Prefix+`"]`).Length() != 0 {
		t.Error("a script that is not one of our assets")
	}
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if attr(t, s, "nonce") != testNonce {
			t.Error("script without the nonce")
		}
	})
	if doc.Find("h1").Length() != 1 {
		t.Error("want one h1")
	}
}

func TestWebhooksPageWithoutSecretSaysSo(t *testing.T) {
	v := sampleWebhooks()
	v.ConfiguredSecrets, v.Deliveries, v.Refusals = 0, nil, nil
	doc, _ := render(t, Webhooks(v))
	one(t, doc, "webhook-no-secret")
	one(t, doc, "webhook-deliveries-empty")
	one(t, doc, "webhook-refusals-empty")
	if !strings.Contains(text(one(t, doc, "webhook-registration")), "No") {
		t.Error("registration should say none")
	}
	v.Registration = &WebhookRegistration{URL: "https://bff.example/webhooks/bead", RegisteredAt: "2026-12-03 10:00:00 UTC"}
	doc, _ = render(t, Webhooks(v))
	none(t, doc, "webhook-no-secret")
	if got := text(one(t, doc, "webhook-registration")); !strings.Contains(got, "2026-12-03 10:00:00 UTC") || !strings.Contains(got, "encrypted") {
		t.Errorf("registration %q", got)
	}
}

// The three live pages name their event stream and load live.js with the nonce.
func TestLivePagesNameTheirEventStream(t *testing.T) {
	pv := samplePaymentView()
	checkout := sampleCheckout()
	for _, tc := range []struct {
		name, selector, want string
		doc                  *goquery.Document
	}{
		{"payment", `[data-testid="payment-live-status"]`, "/payments/trk_7Hq2/events", mustDoc(t, Payment(pv))},
		{"dashboard", `[data-testid="payments-table"]`, DashboardEventsURL, mustDoc(t, Dashboard(sampleDashboard()))},
		{"checkout", `[data-testid="checkout"]`, checkoutEventsURL(checkout.StatusURL), mustDoc(t, EmbedCheckout(checkout))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := attr(t, tc.doc.Find(tc.selector), "data-events-url"); got != tc.want || got == "" {
				t.Errorf("data-events-url %q, want %q", got, tc.want)
			}
			live := tc.doc.Find(`script[src="` + static.URL("live.js") + `"]`)
			if live.Length() != 1 || attr(t, live, "nonce") != testNonce {
				t.Error("live.js not loaded with the nonce")
			}
		})
	}
	if checkoutEventsURL("/embed/checkout/abc/status") != "/embed/checkout/abc/events" || checkoutEventsURL("/elsewhere") != "" {
		t.Error("checkoutEventsURL")
	}
}

func mustDoc(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	doc, _ := render(t, c)
	return doc
}

// In demo mode the sandbox's callbacks already arrive: the page must not read as if setup were missing.
func TestWebhooksPageInDemoMode(t *testing.T) {
	v := sampleWebhooks()
	v.Registration, v.Demo = nil, true
	doc, _ := render(t, Webhooks(v))
	if got := text(one(t, doc, "webhook-registration")); !strings.Contains(got, "demo mode") || strings.Contains(got, "register to make it") {
		t.Errorf("registration in demo mode says %q, want that none is needed", got)
	}
	if !strings.Contains(doc.Text(), "the embedded sandbox's") || strings.Contains(doc.Text(), "Secrets from BEAD_WEBHOOK_SECRET") {
		t.Error("in demo mode the secret count must say it is the sandbox's, not BEAD_WEBHOOK_SECRET's")
	}
	// Found by a new-user walkthrough: "Not needed in demo mode" sat right above a primary "Register"
	// button. The button stays (registering works against the sandbox) but says it is optional.
	button := one(t, doc, "webhook-register")
	if cls, _ := button.Attr("class"); strings.Contains(cls, "button-primary") || !strings.Contains(text(button), "optional") {
		t.Errorf("demo-mode register button %q (class %q): want a secondary button that says it is optional", text(button), cls)
	}
}
