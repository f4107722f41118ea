package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"beadbff/bff/browsertest"
)

// The staff flow in real headless Chromium: log in, create a payment, and watch the status turn completed
// by itself (the page's script polls) after the shopper pays on the hosted page.
func TestBrowserStaffFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := startEnv(t, envOptions{})
	term := e.sandbox.Terminals()[0]
	ctx := browsertest.New(t, browsertest.Options{})

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := browserStep(t, ctx)
	step("open the dashboard", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(css(`[data-testid="login-form"]`)),
	))
	browsertest.Screenshot(t, ctx, "1-login")
	step("log in", chromedp.Do(ctx,
		chromedp.SendKeys(css(`#username`), term.TerminalID),
		chromedp.SendKeys(css(`#password`), term.Password),
		chromedp.Submit(css(`#password`)),
		chromedp.WaitVisible(css(`[data-testid="new-payment-link"]`)),
	))
	step("open the new-payment form", chromedp.Do(ctx,
		chromedp.Click(css(`[data-testid="new-payment-link"]`)),
		chromedp.WaitVisible(css(`[data-testid="new-payment-form"]`)),
		chromedp.SendKeys(css(`#amount`), "19.99"),
		chromedp.SendKeys(css(`#reference`), "browser-order-1"),
		chromedp.SendKeys(css(`#description`), "A test in Chromium"),
	))
	browsertest.Screenshot(t, ctx, "2-new-payment")
	step("create the payment", chromedp.Do(ctx,
		chromedp.Submit(css(`#amount`)),
		chromedp.WaitVisible(css(`[data-testid="payment-status"][data-status="created"]`)),
		chromedp.WaitVisible(css(`[data-testid="payment-link"]`)),
		chromedp.WaitNotVisible(css(`[data-testid="payment-final-note"]`)),
	))
	amount, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="payment-amount"]`)))
	step("read the amount", err)
	if amount == "" || !strings.Contains(amount, "19.99") {
		t.Errorf("payment amount on the page = %q, want 19.99", amount)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	step("read the location", err)
	id := loc[len(e.url+"/payments/"):]
	browsertest.Screenshot(t, ctx, "3-payment-created")

	// The shopper pays; the open page notices by itself, without a reload.
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	start := time.Now()
	step("see the status turn completed", chromedp.Do(ctx,
		chromedp.WaitVisible(css(`[data-testid="payment-status"][data-status="completed"]`)),
	))
	t.Logf("the page showed completed %s after the payment", time.Since(start).Round(100*time.Millisecond))
	// Found by a new-user walkthrough: a paid payment's page still offered its QR code and "Open payment
	// page" for the shopper. Now the page says there is nothing left to pay.
	step("the shopper is offered nothing more to pay", chromedp.Do(ctx,
		chromedp.WaitNotVisible(css(`[data-testid="payment-qr"]`)),
		chromedp.WaitNotVisible(css(`[data-testid="payment-link"]`)),
		chromedp.WaitVisible(css(`[data-testid="payment-final-note"]`)),
	))
	browsertest.Screenshot(t, ctx, "4-payment-completed")

	// Back on the dashboard the payment is listed as completed.
	step("dashboard", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(css(`[data-testid="payment-row-status"][data-status="completed"]`)),
	))
	rows, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="payments-table"]`)))
	step("read the table", err)
	if !strings.Contains(rows, "browser-order-1") || !strings.Contains(rows, "Paid") {
		t.Errorf("dashboard table = %q, want browser-order-1 shown as paid", rows)
	}
	browsertest.Screenshot(t, ctx, "5-dashboard")

	// Regression: after logging out the login page said nothing. Now it says so, in a status region
	// that screen readers announce.
	step("log out", chromedp.Do(ctx,
		chromedp.Click(css(`[data-testid="logout-button"]`)),
		chromedp.WaitVisible(css(`[data-testid="login-form"]`)),
		chromedp.WaitVisible(css(`[data-testid="flash"][role="status"]`)),
	))
	notice, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="flash"]`)))
	step("read the notice", err)
	if notice != "You are logged out." {
		t.Errorf("notice after logout = %q, want \"You are logged out.\"", notice)
	}
	// Found by a new-user walkthrough: the notice was a bar across the page above a narrow card.
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`[".flash", ".auth"].map(s => document.querySelector(s).getBoundingClientRect().width)`))
	step("measure the notice", err)
	if len(widths) != 2 || widths[0] > widths[1]+1 {
		t.Errorf("notice %v px wide, login card %v px: want the notice no wider than the card", widths[0], widths[1])
	}
	browsertest.Screenshot(t, ctx, "6-logged-out")
}

// A refusal in the browser: the form comes back with what was typed and the cause; its link leads to the
// diagnosis (cause, evidence, checklist, support bundle), and /help/403 explains the cause.
func TestBrowserIncidentPage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := startEnv(t, envOptions{noRedis: true})
	term := e.sandbox.Terminals()[0]
	ctx := browsertest.New(t, browsertest.Options{})
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step := browserStep(t, ctx)
	step("log in", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/login"),
		chromedp.SendKeys(css(`#username`), term.TerminalID),
		chromedp.SendKeys(css(`#password`), term.Password),
		chromedp.Submit(css(`#password`)),
		chromedp.WaitVisible(css(`[data-testid="new-payment-link"]`)),
		chromedp.Navigate(e.url+"/payments/new"),
		chromedp.WaitVisible(css(`#amount`)),
	))
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "waf_block", "count": 2})
	step("create into a WAF", chromedp.Do(ctx,
		chromedp.SendKeys(css(`#amount`), "5.00"),
		chromedp.SendKeys(css(`#reference`), "blocked-order"),
		chromedp.Submit(css(`#amount`)),
		chromedp.WaitVisible(css(`[data-testid="create-failure"]`)),
	))
	browsertest.Screenshot(t, ctx, "0-form-shown-again")
	for sel, want := range map[string]string{`#amount`: "5.00", `#reference`: "blocked-order"} {
		got, err := chromedp.Run(ctx, chromedp.Value(css(sel)))
		step("read "+sel, err)
		if got != want {
			t.Errorf("%s after the refusal = %q, want %q as typed", sel, got, want)
		}
	}
	step("open the diagnosis", chromedp.Do(ctx,
		chromedp.Click(css(`[data-testid="create-failure-incident"]`)),
		chromedp.WaitVisible(css(`[data-testid="incident"]`)),
	))
	cause, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="incident-cause"]`)))
	step("read the cause", err)
	if cause != "blocked_before_bead" {
		t.Errorf("incident cause on the page = %q, want blocked_before_bead", cause)
	}
	prefix, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="bundle-jwt-prefix"]`)))
	step("read the JWT prefix", err)
	if len(prefix) != 50 || !strings.HasPrefix(prefix, "eyJ") {
		t.Errorf("support bundle JWT prefix %q: want the first 50 characters", prefix)
	}
	browsertest.Screenshot(t, ctx, "1-incident")
	link, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`[data-testid="incident-link"]`), "href"))
	step("read the incident link", err)
	step("open the stored incident", chromedp.Do(ctx,
		chromedp.Navigate(e.url+link.Value),
		chromedp.WaitVisible(css(`[data-testid="incident-evidence"]`)),
	))
	step("open the guide at the cause", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/help/403#blocked_before_bead"),
		chromedp.WaitVisible(css(`section#blocked_before_bead`)),
	))
	browsertest.Screenshot(t, ctx, "2-help-403")
}
