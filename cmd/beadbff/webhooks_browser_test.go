package main

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"beadbff/bff/browsertest"
)

// requestsOf sums beadbff_http_requests_total over every method and status of one route.
func (e *env) requestsOf(route string) float64 {
	e.t.Helper()
	r := e.do(http.DefaultClient, "GET", e.url+"/metrics", nil, nil)
	re := regexp.MustCompile(`(?m)^beadbff_http_requests_total\{[^}]*route="` + regexp.QuoteMeta(route) + `"[^}]*\} (\S+)$`)
	var n float64
	for _, m := range re.FindAllSubmatch(r.body, -1) {
		f, _ := strconv.ParseFloat(string(m[1]), 64)
		n += f
	}
	return n
}

// Pushed updates in real headless Chromium. The payment page, the dashboard and the embedded checkout
// are open; the sandbox moves the payments, its signed webhooks reach beadbff, and each page shows the
// new status by itself. It came over the event stream, not the poller: while updates are pushed the
// poller waits a minute, the status arrives in well under that, the server counted no status poll at
// all, and the page counted the events it received (data-live-events).
//
// No BEAD_TERMINAL_USERNAME here: the one confirming read uses the session of the staff page that is
// open, which is what happens in demo mode.
func TestBrowserLiveUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := webhookEnv(t, sandboxWebhookSecret, false, tinyRetry, false)
	term := e.sandbox.Terminals()[0]
	api := e.client() // the same terminal, as a front-end app: it creates the other payments
	e.login(api, 0)
	ctx := browsertest.New(t, browsertest.Options{})
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := browserStep(t, ctx)

	step("log in and create a payment", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/login"),
		chromedp.SendKeys(css(`#username`), term.TerminalID),
		chromedp.SendKeys(css(`#password`), term.Password),
		chromedp.Submit(css(`#password`)),
		chromedp.WaitVisible(css(`[data-testid="new-payment-link"]`)),
		chromedp.Navigate(e.url+"/payments/new"),
		chromedp.SendKeys(css(`#amount`), "7.25"),
		chromedp.SendKeys(css(`#reference`), "live-order-1"),
		chromedp.Submit(css(`#amount`)),
		chromedp.WaitVisible(css(`[data-testid="payment-status"][data-status="created"]`)),
	))
	step("the event stream is open and pushed", chromedp.Do(ctx,
		chromedp.WaitVisible(css(`[data-testid="payment-live-status"][data-live="push"]`)),
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	step("read the location", err)
	id := loc[len(e.url+"/payments/"):]
	browsertest.Screenshot(t, ctx, "1-payment-live")

	const statusRoute = "/api/v1/payments/:trackingId"
	polls := e.requestsOf(statusRoute)
	start := time.Now()
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	step("the page shows completed by itself", chromedp.Do(ctx,
		chromedp.WaitVisible(css(`[data-testid="payment-status"][data-status="completed"]`)),
	))
	took := time.Since(start)
	t.Logf("payment page showed completed %v after the sandbox's status change (poller pace while pushed: 60 s)", took.Round(time.Millisecond))
	browsertest.Screenshot(t, ctx, "2-payment-completed")
	if took > 20*time.Second {
		t.Errorf("took %v: that is the poller's pace, not a push", took)
	}
	if n := e.requestsOf(statusRoute) - polls; n != 0 {
		t.Errorf("the page polled %s %v times; the update must have come over the event stream", statusRoute, n)
	}
	events, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`[data-testid="payment-live-status"]`), "data-live-events"))
	step("read the stream's event count", err)
	live, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`[data-testid="payment-live-status"]`), "data-live"))
	step("read the stream's state", err)
	if n, _ := strconv.Atoi(events.Value); n < 2 || live.Value != "done" {
		t.Errorf("data-live-events %q (want the snapshot and at least the update), data-live %q (want done)", events.Value, live.Value)
	}

	// The dashboard: a second payment, listed, turns expired in its row.
	second := e.api(api, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "2.00", "reference": "live-order-2"}).json(t)
	id2 := second["trackingId"].(string)
	step("open the dashboard", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(css(`[data-testid="payments-table"][data-live="push"]`)),
		chromedp.WaitVisible(css(`tr[data-tracking-id="`+id2+`"] [data-testid="payment-row-status"][data-status="created"]`)),
	))
	e.sb("POST", "/_sandbox/payments/"+id2+"/status", map[string]string{"statusCode": "expired"})
	step("the row turns expired by itself", chromedp.Do(ctx,
		chromedp.WaitVisible(css(`tr[data-tracking-id="`+id2+`"] [data-testid="payment-row-status"][data-status="expired"]`)),
	))
	browsertest.Screenshot(t, ctx, "3-dashboard-expired")

	// The embedded checkout, in a second tab (opened directly; framing is embed_browser_test's subject).
	// The dashboard stays open in the first: with no service account, its staff session is what lends
	// the token for the confirming read, as when a merchant watches while a shopper pays.
	third := e.api(api, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "5.00", "reference": "live-order-3"}).json(t)
	shopper, closeTab := chromedp.NewContext(ctx)
	defer closeTab()
	step("open the checkout", chromedp.Do(shopper,
		chromedp.Navigate(third["checkoutUrl"].(string)),
		chromedp.WaitVisible(css(`[data-testid="checkout"][data-live="push"]`)),
	))
	checkoutPolls := e.requestsOf("/embed/checkout/:checkoutId/status")
	e.sb("POST", "/_sandbox/payments/"+third["trackingId"].(string)+"/status", map[string]string{"statusCode": "completed"})
	step("the checkout shows paid by itself", chromedp.Do(shopper,
		chromedp.WaitVisible(css(`[data-testid="checkout-status"][data-status="completed"]`)),
		chromedp.WaitVisible(css(`[data-testid="checkout"][data-state="paid"]`)),
	))
	browsertest.Screenshot(t, shopper, "4-checkout-paid")
	if n := e.requestsOf("/embed/checkout/:checkoutId/status") - checkoutPolls; n != 0 {
		t.Errorf("the checkout polled its status %v times; the update must have come over the event stream", n)
	}

	// The webhooks page lists the three accepted deliveries.
	step("the webhooks page", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/webhooks"),
		chromedp.WaitVisible(css(`[data-testid="webhook-deliveries"]`)),
	))
	rows, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="webhook-deliveries"]`)))
	step("read the deliveries", err)
	for _, want := range []string{id, id2, third["trackingId"].(string), "Accepted"} {
		if !strings.Contains(rows, want) {
			t.Errorf("deliveries table lacks %s", want)
		}
	}
	browsertest.Screenshot(t, ctx, "5-webhooks-page")
}

// A shopper who has paid is not asked to pay again while Bead's confirming read cannot happen yet. Here
// nobody of the terminal is logged in and there is no service account, so the verified webhook's
// "completed" stays an announcement; the open checkout then says the payment was received, and its
// "Pay now" button and waiting note are gone (before this, both stayed).
func TestBrowserCheckoutStopsOfferingPayOnceAWebhookSaysPaid(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := webhookEnv(t, sandboxWebhookSecret, false, tinyRetry, true)
	p := e.createAndLogOut(0, "3.10", "paid-elsewhere")
	ctx := browsertest.New(t, browsertest.Options{})
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := browserStep(t, ctx)
	step("open the checkout", chromedp.Do(ctx,
		chromedp.Navigate(p["checkoutUrl"].(string)),
		chromedp.WaitVisible(css(`[data-testid="checkout"][data-live="push"]`)),
		chromedp.WaitVisible(css(`[data-testid="checkout-pay"]`)),
	))
	e.sb("POST", "/_sandbox/payments/"+p["trackingId"].(string)+"/status", map[string]string{"statusCode": "completed"})
	step("the checkout says it was received and stops offering to pay", chromedp.Do(ctx,
		chromedp.WaitVisible(css(`[data-testid="checkout-confirming-paid"]`)),
		chromedp.WaitNotVisible(css(`[data-testid="checkout-pay"]`)),
		chromedp.WaitNotVisible(css(`[data-testid="checkout"] [data-note="waiting"]`)),
		// Found by a walkthrough: the badge beside the message still said "Waiting for payment".
		chromedp.WaitNotVisible(css(`[data-testid="checkout-status"]`)),
	))
	browsertest.Screenshot(t, ctx, "checkout-confirming-paid")
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="checkout-confirming"]').hidden`))
	step("read the generic confirming hint", err)
	if !hidden {
		t.Error(`both "confirming" hints are shown`)
	}
	if s := e.checkoutStatus(p["checkoutUrl"].(string)); s["statusCode"] != "created" {
		t.Errorf("checkout status %v, want the stored created: with no token nothing confirmed it, so the page's words came from the announcement", s)
	}
}

// Found by a break-it review: without the event stream (no EventSource, or a proxy that buffers event
// streams, where the page polls instead) "Pay now" stayed after a verified webhook said "completed",
// because only the stream carried the announcement. The poll answer carries pendingPaid now, and the
// page is drawn with it from the first paint.
func TestBrowserCheckoutWithoutTheStreamStopsOfferingPay(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := webhookEnv(t, sandboxWebhookSecret, false, tinyRetry, true)
	p := e.createAndLogOut(0, "3.20", "paid-no-stream")
	ctx := browsertest.New(t, browsertest.Options{})
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := browserStep(t, ctx)
	step("no EventSource", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `delete window.EventSource;`})
		return err
	})))
	step("open the checkout", chromedp.Do(ctx,
		chromedp.Navigate(p["checkoutUrl"].(string)),
		chromedp.WaitVisible(css(`[data-testid="checkout-pay"]`)),
	))
	e.sb("POST", "/_sandbox/payments/"+p["trackingId"].(string)+"/status", map[string]string{"statusCode": "completed"})
	step("the polling page says it was received and stops offering to pay", chromedp.Do(ctx,
		chromedp.WaitVisible(css(`[data-testid="checkout-confirming-paid"]`)),
		chromedp.WaitNotVisible(css(`[data-testid="checkout-pay"]`)),
	))
	step("reload: drawn so from the first paint, before any poll", chromedp.Do(ctx, chromedp.Reload()))
	state, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const b = document.querySelector('[data-testid="checkout-pay"]');
		return {pendingPaid: document.querySelector('[data-testid="checkout"]').getAttribute("data-pending-paid"),
			payShown: !!b && b.offsetParent !== null,
			hint: !document.querySelector('[data-testid="checkout-confirming-paid"]').hidden};
	})()`))
	step("read the first paint", err)
	if state["pendingPaid"] != "true" || state["payShown"] != false || state["hint"] != true {
		t.Errorf("first paint after a paid webhook: %v; want data-pending-paid true, no pay button, the hint shown", state)
	}
}
