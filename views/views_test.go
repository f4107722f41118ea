package views

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"beadbff/static"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	testNonce = "n0nce-Xy3"
	testCSRF  = "csrf-token-123"
	// A JWT prefix as Bead support wants it: exactly the first 50 characters of the access token.
	testJWTPrefix = "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIiwia2lkIiA6IC"
	hostile       = `<script>alert(1)</script>`
)

// render renders c and parses the result; it returns the document and the raw HTML.
func render(t *testing.T, c templ.Component) (*goquery.Document, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	html := buf.String()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc, html
}

func byTestID(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

// one returns the single element with the test id, failing the test if there is not exactly one.
func one(t *testing.T, doc *goquery.Document, id string) *goquery.Selection {
	t.Helper()
	s := byTestID(doc, id)
	if s.Length() != 1 {
		t.Fatalf("want 1 element with data-testid=%q, got %d", id, s.Length())
	}
	return s
}

func none(t *testing.T, doc *goquery.Document, id string) {
	t.Helper()
	if n := byTestID(doc, id).Length(); n != 0 {
		t.Errorf("want no element with data-testid=%q, got %d", id, n)
	}
}

func attr(t *testing.T, s *goquery.Selection, name string) string {
	t.Helper()
	v, ok := s.Attr(name)
	if !ok {
		t.Fatalf("element %s has no %s attribute", goquery.NodeName(s), name)
	}
	return v
}

func text(s *goquery.Selection) string { return strings.TrimSpace(s.Text()) }

// Sample models.

func loggedInPage() Page {
	return Page{
		Nonce:     testNonce,
		CSRFToken: testCSRF,
		Staff:     &Staff{TerminalID: "term-a1", MerchantID: "merch-a", Username: "term-a1@beadpay.io"},
	}
}

func samplePayment() PaymentRow {
	return PaymentRow{
		TrackingID:  "trk_7Hq2",
		Amount:      "12.50",
		Currency:    "USD",
		Reference:   "INV-1001",
		Description: "Two coffees",
		Status:      "created",
		StatusLabel: "Waiting for payment",
		CreatedAt:   "2026-12-03 10:41 UTC",
		URL:         "/payments/trk_7Hq2",
	}
}

func sampleLogin() LoginView {
	return LoginView{
		Page: Page{Nonce: testNonce, CSRFToken: testCSRF, Demo: true},
		Demo: []DemoCredential{
			{Label: "Merchant A, terminal 1", Username: "term-a1", Password: "sandbox-a1"},
			{Label: "Merchant B, terminal 1", Username: "term-b1", Password: "sandbox-b1"},
		},
		Next: "/payments/new",
	}
}

func sampleDashboard() DashboardView {
	second := samplePayment()
	second.TrackingID, second.Reference, second.URL = "trk_9Zx1", "INV-1002", "/payments/trk_9Zx1"
	second.Status, second.StatusLabel, second.Final, second.Paid = "completed", "Completed", true, true
	return DashboardView{Page: loggedInPage(), Payments: []PaymentRow{samplePayment(), second}}
}

func sampleNewPayment() NewPaymentView {
	return NewPaymentView{
		Page:      loggedInPage(),
		Amount:    "12,5x",
		Reference: "INV-1003",
		Errors:    map[string]string{"amount": "Enter an amount such as 12.50.", "": "Bead refused the payment."},
		FormKey:   "Zm9ybS1rZXktb2YtdGhpcy1mb3JtLXJlbmRlcmVkLW9uY2U",
	}
}

func samplePaymentView() PaymentView {
	return PaymentView{
		Page:        loggedInPage(),
		Payment:     samplePayment(),
		PaymentURL:  "https://pay.test.devs.beadpay.io/pay/pp_123",
		QRCodeURL:   "/payments/trk_7Hq2/qr.png",
		CheckoutURL: "http://localhost:8080/embed/checkout/chk_55",
		StatusURL:   "/payments/trk_7Hq2/status",
	}
}

func sampleBundle() *SupportBundle {
	return &SupportBundle{
		Timestamp: "2026-12-03T10:41:29Z (UTC)",
		Path:      "POST /payments/crypto",
		RequestID: "req-5f2c9a",
		JWTPrefix: testJWTPrefix,
		Email:     "support@beadpay.io",
		MailtoURL: "mailto:support@beadpay.io?subject=403%20from%20Bead&body=req-5f2c9a",
		Text:      "Time: 2026-12-03T10:41:29Z (UTC)\nRequest: POST /payments/crypto\nx-request-id: req-5f2c9a\nJWT: " + testJWTPrefix,
	}
}

func sampleForbidden() ErrorView {
	return ErrorView{
		Page:      loggedInPage(),
		Status:    403,
		Heading:   "Bead refused the request.",
		Detail:    "The token was refreshed and the request retried once; Bead still refused it.",
		Cause:     "unknown",
		RequestID: "req-5f2c9a",
		HelpURL:   "/help/403#unknown",
		Bundle:    sampleBundle(),
	}
}

func sampleLoginAgain() ErrorView {
	return ErrorView{
		Page:       Page{Nonce: testNonce},
		Status:     401,
		Heading:    "Your session has ended.",
		Detail:     "Log in again to continue.",
		Cause:      "refresh_token_invalid",
		RequestID:  "req-77aa",
		HelpURL:    "/help/403#refresh_token_invalid",
		LoginAgain: true,
	}
}

// everyPage is one sample of each full page, for the checks that hold on all of them.
func everyPage() []struct {
	name string
	c    templ.Component
} {
	return []struct {
		name string
		c    templ.Component
	}{
		{"login", Login(sampleLogin())},
		{"login with error", Login(LoginView{Page: Page{Nonce: testNonce}, Error: "Wrong username or password."})},
		{"dashboard", Dashboard(sampleDashboard())},
		{"empty dashboard", Dashboard(DashboardView{Page: loggedInPage()})},
		{"new payment", NewPayment(sampleNewPayment())},
		{"payment", Payment(samplePaymentView())},
		{"error with bundle", Error(sampleForbidden())},
		{"error log in again", Error(sampleLoginAgain())},
		{"help", Help(sampleHelp())},
		{"incident", Incident(sampleIncident())},
	}
}

func TestLoginShowsDemoCredentialsOnlyInDemoMode(t *testing.T) {
	tests := []struct {
		name      string
		demo      bool
		creds     []DemoCredential
		wantShown int
	}{
		{"demo mode with credentials", true, sampleLogin().Demo, 2},
		{"not demo mode: credentials ignored", false, sampleLogin().Demo, 0},
		{"demo mode without credentials", true, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sampleLogin()
			v.Page.Demo, v.Demo = tt.demo, tt.creds
			doc, _ := render(t, Login(v))
			if tt.wantShown == 0 {
				none(t, doc, "demo-credentials")
				none(t, doc, "demo-credential")
				return
			}
			block := one(t, doc, "demo-credentials")
			if got := block.Find(`[data-testid="demo-credential"]`).Length(); got != tt.wantShown {
				t.Errorf("demo credentials shown: got %d, want %d", got, tt.wantShown)
			}
			if !strings.Contains(block.Text(), "term-b1") || !strings.Contains(block.Text(), "sandbox-b1") {
				t.Errorf("demo block lacks the second login: %q", text(block))
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	doc, _ := render(t, Login(sampleLogin()))
	form := one(t, doc, "login-form")
	if got := attr(t, form, "method"); got != "post" {
		t.Errorf("method = %q, want post", got)
	}
	if got := attr(t, form, "action"); got != "/login" {
		t.Errorf("action = %q, want /login", got)
	}
	for name, want := range map[string]string{"csrf": testCSRF, "next": "/payments/new"} {
		in := form.Find(`input[type="hidden"][name="` + name + `"]`)
		if in.Length() != 1 {
			t.Fatalf("want one hidden input %q, got %d", name, in.Length())
		}
		if got := attr(t, in, "value"); got != want {
			t.Errorf("hidden %s = %q, want %q", name, got, want)
		}
	}
	if form.Find(`input[name="username"]`).Length() != 1 || form.Find(`input[name="password"][type="password"]`).Length() != 1 {
		t.Error("login form lacks the username or the password field")
	}
	none(t, doc, "login-error")
}

func TestLoginError(t *testing.T) {
	v := sampleLogin()
	v.Error, v.Username = "Wrong username or password.", "term-a1"
	doc, _ := render(t, Login(v))
	errEl := one(t, doc, "login-error")
	if got := text(errEl); got != v.Error {
		t.Errorf("login error text = %q, want %q", got, v.Error)
	}
	if got := attr(t, errEl, "role"); got != "alert" {
		t.Errorf("login error role = %q, want alert", got)
	}
	user := doc.Find(`input[name="username"]`)
	if got := attr(t, user, "value"); got != "term-a1" {
		t.Errorf("username not refilled: %q", got)
	}
	if got := attr(t, user, "aria-describedby"); got != attr(t, errEl, "id") {
		t.Errorf("username aria-describedby = %q, want the error's id", got)
	}
	if pw, _ := doc.Find(`input[name="password"]`).Attr("value"); pw != "" {
		t.Errorf("password must never be refilled, got %q", pw)
	}
}

func TestEveryControlHasALabel(t *testing.T) {
	for _, p := range everyPage() {
		t.Run(p.name, func(t *testing.T) {
			doc, _ := render(t, p.c)
			doc.Find("input, textarea, select").Each(func(_ int, s *goquery.Selection) {
				typ, _ := s.Attr("type")
				if typ == "hidden" || typ == "submit" || typ == "button" {
					return
				}
				id, _ := s.Attr("id")
				name, _ := s.Attr("name")
				if id == "" {
					t.Errorf("control %q has no id, so no <label for>", name)
					return
				}
				label := doc.Find(`label[for="` + id + `"]`)
				if label.Length() != 1 || text(label) == "" {
					t.Errorf("control #%s: want one non-empty <label for>, got %d", id, label.Length())
				}
			})
		})
	}
}

func TestDashboardListsPayments(t *testing.T) {
	v := sampleDashboard()
	doc, _ := render(t, Dashboard(v))
	one(t, doc, "payments-table")
	none(t, doc, "payments-empty")
	rows := byTestID(doc, "payment-row")
	if rows.Length() != len(v.Payments) {
		t.Fatalf("rows = %d, want %d", rows.Length(), len(v.Payments))
	}
	rows.Each(func(i int, row *goquery.Selection) {
		p := v.Payments[i]
		link := row.Find(`a[href="` + p.URL + `"]`)
		if link.Length() != 1 || text(link) != p.Reference {
			t.Errorf("row %d: want one link to %s named %q, got %d (%q)", i, p.URL, p.Reference, link.Length(), text(link))
		}
		badge := row.Find(`[data-testid="payment-row-status"]`)
		if got := attr(t, badge, "data-status"); got != p.Status {
			t.Errorf("row %d: badge data-status = %q, want %q", i, got, p.Status)
		}
		if got := text(badge); got != p.StatusLabel {
			t.Errorf("row %d: badge text = %q, want the label %q", i, got, p.StatusLabel)
		}
		if !strings.Contains(row.Text(), "12.50 USD") {
			t.Errorf("row %d lacks its amount: %q", i, text(row))
		}
	})
	if got := attr(t, one(t, doc, "new-payment-link"), "href"); got != "/payments/new" {
		t.Errorf("new payment link = %q", got)
	}
}

func TestDashboardEmptyState(t *testing.T) {
	doc, _ := render(t, Dashboard(DashboardView{Page: loggedInPage()}))
	one(t, doc, "payments-empty")
	none(t, doc, "payments-table")
	none(t, doc, "payment-row")
	one(t, doc, "new-payment-link")
}

func TestPaymentWithoutReferenceIsNamedByTrackingID(t *testing.T) {
	v := sampleDashboard()
	v.Payments[0].Reference = ""
	doc, _ := render(t, Dashboard(v))
	link := byTestID(doc, "payment-row-link").First()
	if got := text(link); got != v.Payments[0].TrackingID {
		t.Errorf("link text = %q, want the tracking id so that the link is never empty", got)
	}
}

func TestNewPaymentForm(t *testing.T) {
	v := sampleNewPayment()
	doc, _ := render(t, NewPayment(v))
	form := one(t, doc, "new-payment-form")
	if attr(t, form, "method") != "post" || attr(t, form, "action") != "/payments" {
		t.Errorf("form posts to %s %s, want post /payments", attr(t, form, "method"), attr(t, form, "action"))
	}
	if got := attr(t, form.Find(`input[type="hidden"][name="csrf"]`), "value"); got != testCSRF {
		t.Errorf("csrf = %q", got)
	}
	amount := form.Find(`input[name="amount"]`)
	if got := attr(t, amount, "inputmode"); got != "decimal" {
		t.Errorf("amount inputmode = %q, want decimal", got)
	}
	if got := attr(t, amount, "value"); got != v.Amount {
		t.Errorf("amount not refilled: %q", got)
	}
	if got := attr(t, form.Find(`input[name="reference"]`), "value"); got != v.Reference {
		t.Errorf("reference not refilled: %q", got)
	}
	if form.Find(`textarea[name="description"]`).Length() != 1 {
		t.Error("no description field")
	}
	if got := text(one(t, doc, "form-error")); got != v.Errors[""] {
		t.Errorf("form-wide error = %q", got)
	}
	// The form's own idempotency key goes back with it, so the same form sent twice is one payment;
	// "sent" only when an attempt's outcome is unknown.
	if got := attr(t, one(t, doc, "form-key"), "name"); got != "formKey" || attr(t, one(t, doc, "form-key"), "value") != v.FormKey {
		t.Errorf("form key field %q = %q, want formKey = %q", got, attr(t, one(t, doc, "form-key"), "value"), v.FormKey)
	}
	none(t, doc, "form-sent")
	v.Sent = "amount=12.50&reference=INV-1003"
	doc, _ = render(t, NewPayment(v))
	if got := attr(t, one(t, doc, "form-sent"), "value"); got != v.Sent {
		t.Errorf("sent = %q, want %q", got, v.Sent)
	}
}

func TestNewPaymentFieldErrors(t *testing.T) {
	for _, field := range []string{"amount", "reference", "description"} {
		t.Run(field, func(t *testing.T) {
			v := NewPaymentView{Page: loggedInPage(), Errors: map[string]string{field: "Problem with " + field + "."}}
			doc, _ := render(t, NewPayment(v))
			errEl := one(t, doc, "field-error-"+field)
			if got := text(errEl); got != v.Errors[field] {
				t.Errorf("error text = %q", got)
			}
			control := doc.Find(`[name="` + field + `"]`)
			describedBy := strings.Fields(attr(t, control, "aria-describedby"))
			if !strings.Contains(" "+strings.Join(describedBy, " ")+" ", " "+attr(t, errEl, "id")+" ") {
				t.Errorf("aria-describedby %v does not name the error %q", describedBy, attr(t, errEl, "id"))
			}
			if got := attr(t, control, "aria-invalid"); got != "true" {
				t.Errorf("aria-invalid = %q", got)
			}
			// The other fields carry no error.
			doc.Find("input[aria-invalid], textarea[aria-invalid]").Each(func(_ int, s *goquery.Selection) {
				if n, _ := s.Attr("name"); n != field {
					t.Errorf("field %s is marked invalid without an error", n)
				}
			})
			none(t, doc, "form-error")
		})
	}
}

// A create Bead refused comes back as the form with what was typed, under a banner that names the cause
// in plain words and leads to the diagnosis; without a stored incident it leads to the cause's help.
func TestNewPaymentCreateFailure(t *testing.T) {
	failure := CreateFailure{
		Heading:     "The payment was not created.",
		CauseTitle:  "Blocked before reaching Bead",
		Summary:     "The 403 came from a firewall or proxy in front of Bead, not from Bead's API: Bead never saw the request.",
		Advice:      "Trying again will most likely fail the same way until the cause is fixed.",
		Cause:       "blocked_before_bead",
		RequestID:   "req-42",
		IncidentURL: "/help/incidents/AbCdEfGhIjKlMnOpQrStUv",
		HelpURL:     "/help/403#blocked_before_bead",
	}
	v := NewPaymentView{Page: loggedInPage(), Amount: "12.34", Reference: "order-55", Description: "Two coffees & a cake",
		Errors: map[string]string{}, Failure: &failure}
	doc, _ := render(t, NewPayment(v))
	banner := one(t, doc, "create-failure")
	if got := attr(t, banner, "role"); got != "alert" {
		t.Errorf("banner role = %q, want alert (read out when the page opens)", got)
	}
	for id, want := range map[string]string{"create-failure-heading": failure.Heading, "create-failure-cause-title": failure.CauseTitle,
		"create-failure-summary": failure.Summary, "create-failure-cause": failure.Cause, "create-failure-request-id": failure.RequestID} {
		if got := text(one(t, doc, id)); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if got := text(one(t, doc, "create-failure-advice")); !strings.HasPrefix(got, failure.Advice) || !strings.Contains(got, "kept") {
		t.Errorf("advice = %q, want the advice and that the input is kept", got)
	}
	if got := attr(t, one(t, doc, "create-failure-incident"), "href"); got != failure.IncidentURL {
		t.Errorf("incident link = %q", got)
	}
	none(t, doc, "create-failure-help")
	form := one(t, doc, "new-payment-form")
	for name, want := range map[string]string{"amount": v.Amount, "reference": v.Reference} {
		if got := attr(t, form.Find(`input[name="`+name+`"]`), "value"); got != want {
			t.Errorf("%s not refilled: %q, want %q", name, got, want)
		}
	}
	if got := form.Find(`textarea[name="description"]`).Text(); got != v.Description {
		t.Errorf("description not refilled: %q", got)
	}
	none(t, doc, "form-error")

	failure.IncidentURL = "" // the incident could not be stored
	doc, _ = render(t, NewPayment(v))
	none(t, doc, "create-failure-incident")
	if got := attr(t, one(t, doc, "create-failure-help"), "href"); got != failure.HelpURL {
		t.Errorf("help link = %q", got)
	}

	doc, _ = render(t, NewPayment(sampleNewPayment()))
	none(t, doc, "create-failure")
}

func TestPaymentPage(t *testing.T) {
	v := samplePaymentView()
	doc, _ := render(t, Payment(v))

	if got := text(one(t, doc, "payment-amount")); got != "12.50 USD" {
		t.Errorf("amount = %q", got)
	}
	if got := text(one(t, doc, "payment-reference")); got != "INV-1001" {
		t.Errorf("reference = %q", got)
	}

	link := one(t, doc, "payment-link")
	if got := attr(t, link, "href"); got != v.PaymentURL {
		t.Errorf("payment link href = %q", got)
	}
	if got := attr(t, link, "target"); got != "_blank" {
		t.Errorf("payment link target = %q", got)
	}
	if rel := strings.Fields(attr(t, link, "rel")); !slices.Contains(rel, "noopener") {
		t.Errorf("payment link rel = %v, want noopener", rel)
	}

	qr := one(t, doc, "payment-qr")
	if got := attr(t, qr, "src"); got != v.QRCodeURL {
		t.Errorf("qr src = %q", got)
	}
	if strings.TrimSpace(attr(t, qr, "alt")) == "" {
		t.Error("qr has an empty alt")
	}

	live := doc.Find("[data-status-url]")
	if live.Length() != 1 {
		t.Fatalf("want one [data-status-url], got %d", live.Length())
	}
	if got := attr(t, live, "data-status-url"); got != v.StatusURL {
		t.Errorf("data-status-url = %q", got)
	}
	if got := attr(t, live, "data-final"); got != "false" {
		t.Errorf("data-final = %q", got)
	}
	status := one(t, doc, "payment-status")
	if status.Closest("[data-status-url]").Length() != 1 {
		t.Error("payment-status is not inside the polled element, so app.js cannot update it")
	}
	if got := attr(t, status, "data-status"); got != "created" {
		t.Errorf("data-status = %q", got)
	}
	if got := text(status); got != "Waiting for payment" {
		t.Errorf("status text = %q", got)
	}
	if status.Closest(`[aria-live="polite"]`).Length() != 1 {
		t.Error("payment-status is not in a polite live region")
	}

	if got := text(one(t, doc, "checkout-url")); got != v.CheckoutURL {
		t.Errorf("checkout url = %q", got)
	}
	copyBtn := one(t, doc, "copy-checkout-url")
	if got := attr(t, copyBtn, "data-copy-target"); got != attr(t, byTestID(doc, "checkout-url"), "id") {
		t.Errorf("copy button targets %q, not the checkout url", got)
	}
}

func TestPaymentStateNotes(t *testing.T) {
	tests := []struct {
		name        string
		final, paid bool
		want        string
	}{
		{"waiting", false, false, "waiting"},
		{"completed", true, true, "paid"},
		{"expired", true, false, "unpaid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := samplePaymentView()
			v.Payment.Final, v.Payment.Paid = tt.final, tt.paid
			doc, _ := render(t, Payment(v))
			live := doc.Find("[data-status-url]")
			if got := attr(t, live, "data-state"); got != tt.want {
				t.Errorf("data-state = %q, want %q", got, tt.want)
			}
			if got := attr(t, live, "data-final"); got != boolAttr(tt.final) {
				t.Errorf("data-final = %q", got)
			}
			if live.Find(`[data-note="`+tt.want+`"]`).Length() != 1 {
				t.Errorf("no note for state %q", tt.want)
			}
		})
	}
}

func TestErrorPageSupportBundle(t *testing.T) {
	t.Run("without bundle", func(t *testing.T) {
		v := sampleForbidden()
		v.Bundle = nil
		doc, _ := render(t, Error(v))
		none(t, doc, "support-bundle")
		none(t, doc, "copy-bundle")
		none(t, doc, "bundle-jwt-prefix")
	})
	t.Run("with bundle", func(t *testing.T) {
		v := sampleForbidden()
		doc, _ := render(t, Error(v))
		one(t, doc, "support-bundle")
		if got := text(one(t, doc, "bundle-jwt-prefix")); got != testJWTPrefix {
			t.Errorf("JWT prefix = %q, want exactly %q", got, testJWTPrefix)
		}
		for id, want := range map[string]string{
			"bundle-timestamp":  v.Bundle.Timestamp,
			"bundle-path":       v.Bundle.Path,
			"bundle-request-id": v.Bundle.RequestID,
		} {
			if got := text(one(t, doc, id)); got != want {
				t.Errorf("%s = %q, want %q", id, got, want)
			}
		}
		target := attr(t, one(t, doc, "copy-bundle"), "data-copy-target")
		copied := doc.Find("#" + target)
		if copied.Length() != 1 || copied.Text() != v.Bundle.Text {
			t.Errorf("copy-bundle copies %q, want the bundle text %q", copied.Text(), v.Bundle.Text)
		}
		if got := attr(t, one(t, doc, "bundle-mailto"), "href"); got != v.Bundle.MailtoURL {
			t.Errorf("mailto href = %q", got)
		}
	})
}

// Regression guard: the support bundle promises at most the first 50 characters of the token, even when a
// caller passes the whole token by mistake.
func TestErrorPageNeverShowsMoreThan50CharactersOfTheToken(t *testing.T) {
	v := sampleForbidden()
	fullToken := testJWTPrefix + "SECRET-REST-OF-THE-TOKEN.payload.signature"
	v.Bundle.JWTPrefix, v.Bundle.Text = fullToken, ""
	doc, html := render(t, Error(v))
	if got := text(one(t, doc, "bundle-jwt-prefix")); got != testJWTPrefix {
		t.Errorf("JWT prefix shown = %q, want its first 50 characters %q", got, testJWTPrefix)
	}
	if strings.Contains(html, "SECRET-REST") {
		t.Error("the page contains more than the first 50 characters of the token")
	}
}

func TestErrorPageFacts(t *testing.T) {
	v := sampleForbidden()
	doc, _ := render(t, Error(v))
	if got := text(one(t, doc, "error-heading")); got != v.Heading {
		t.Errorf("heading = %q", got)
	}
	if got := text(one(t, doc, "error-cause")); got != v.Cause {
		t.Errorf("cause = %q", got)
	}
	if got := text(one(t, doc, "error-request-id")); got != v.RequestID {
		t.Errorf("request id = %q", got)
	}
	if got := attr(t, one(t, doc, "error-help-link"), "href"); got != v.HelpURL {
		t.Errorf("help link = %q", got)
	}
	if got := text(one(t, doc, "error-status")); got != "Error 403" {
		t.Errorf("status = %q", got)
	}
	none(t, doc, "login-again")
}

func TestErrorPageLogInAgain(t *testing.T) {
	tests := []struct {
		name     string
		loginURL string
		wantHref string
	}{
		{"default", "", "/login"},
		{"back to where the session ended", "/login?next=%2Fpayments%2Fnew", "/login?next=%2Fpayments%2Fnew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sampleLoginAgain()
			v.LoginURL = tt.loginURL
			doc, _ := render(t, Error(v))
			if got := attr(t, one(t, doc, "login-again"), "href"); got != tt.wantHref {
				t.Errorf("log in again href = %q, want %q", got, tt.wantHref)
			}
			none(t, doc, "support-bundle")
		})
	}
}

// TestErrorPageGolden pins the whole <main> of two error pages; run `go test ./views -update` after a
// deliberate change and review the diff.
func TestErrorPageGolden(t *testing.T) {
	tests := []struct {
		name string
		v    ErrorView
	}{
		{"error_forbidden_bundle", sampleForbidden()},
		{"error_login_again", sampleLoginAgain()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := render(t, Error(tt.v))
			checkGolden(t, tt.name, doc)
		})
	}
}

// checkGolden compares the page's whole <main> with testdata/NAME.golden.html (rewritten by -update).
func checkGolden(t *testing.T, name string, doc *goquery.Document) {
	t.Helper()
	got, err := goquery.OuterHtml(doc.Find("main"))
	if err != nil {
		t.Fatal(err)
	}
	got += "\n"
	path := filepath.Join("testdata", name+".golden.html")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestLayoutLoggedIn(t *testing.T) {
	doc, _ := render(t, Dashboard(sampleDashboard()))
	logout := one(t, doc, "logout-button")
	form := logout.Closest("form")
	if attr(t, form, "method") != "post" || attr(t, form, "action") != "/logout" {
		t.Errorf("logout form posts to %s %s", attr(t, form, "method"), attr(t, form, "action"))
	}
	if got := attr(t, form.Find(`input[type="hidden"][name="csrf"]`), "value"); got != testCSRF {
		t.Errorf("logout csrf = %q", got)
	}
	if got := text(one(t, doc, "staff-terminal")); !strings.Contains(got, "term-a1") {
		t.Errorf("header does not name the terminal: %q", got)
	}
	if got := attr(t, one(t, doc, "nav-payments"), "aria-current"); got != "page" {
		t.Errorf("current page link aria-current = %q", got)
	}
	if _, ok := one(t, doc, "nav-new-payment").Attr("aria-current"); ok {
		t.Error("a link to another page carries aria-current")
	}
}

func TestLayoutLoggedOut(t *testing.T) {
	doc, _ := render(t, Login(LoginView{Page: Page{Nonce: testNonce}}))
	none(t, doc, "logout-button")
	none(t, doc, "staff-terminal")
	none(t, doc, "demo-ribbon")
	none(t, doc, "flash")
}

func TestLayoutDemoRibbonAndFlash(t *testing.T) {
	p := loggedInPage()
	p.Demo, p.Flash = true, "Payment created."
	doc, _ := render(t, Dashboard(DashboardView{Page: p}))
	if got := text(one(t, doc, "demo-ribbon")); got != "Demo mode: talking to the built-in Bead sandbox" {
		t.Errorf("ribbon = %q", got)
	}
	if got := text(one(t, doc, "flash")); got != p.Flash {
		t.Errorf("flash = %q", got)
	}
}

func TestTitle(t *testing.T) {
	tests := []struct {
		name string
		c    templ.Component
		want string
	}{
		{"default title", Dashboard(DashboardView{Page: loggedInPage()}), "Payments · beadbff"},
		{"handler's title wins", Dashboard(DashboardView{Page: Page{Title: "Today"}}), "Today · beadbff"},
		{"error page uses its heading", Error(sampleForbidden()), "Bead refused the request. · beadbff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := render(t, tt.c)
			if got := doc.Find("title").Text(); got != tt.want {
				t.Errorf("title = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEveryPageIsCSPSafe guards the Content-Security-Policy: scripts only from /static and with the
// nonce, no inline script, no inline style, no inline event handler.
func TestEveryPageIsCSPSafe(t *testing.T) {
	for _, p := range everyPage() {
		t.Run(p.name, func(t *testing.T) {
			doc, _ := render(t, p.c)
			scripts := doc.Find("script")
			if scripts.Length() == 0 {
				t.Error("no script: the page would not load app.js")
			}
			scripts.Each(func(_ int, s *goquery.Selection) {
				if got, _ := s.Attr("nonce"); got != testNonce {
					t.Errorf("script nonce = %q, want %q", got, testNonce)
				}
				if src, _ := s.Attr("src"); !strings.HasPrefix(src, static.Prefix) {
					t.Errorf("script src = %q, want a file under %s", src, static.Prefix)
				}
				if strings.TrimSpace(s.Text()) != "" {
					t.Errorf("inline script: %q", s.Text())
				}
			})
			if n := doc.Find("style, [style]").Length(); n != 0 {
				t.Errorf("%d inline styles (<style> or style=)", n)
			}
			doc.Find("*").Each(func(_ int, s *goquery.Selection) {
				for _, a := range s.Nodes[0].Attr {
					if strings.HasPrefix(strings.ToLower(a.Key), "on") {
						t.Errorf("<%s %s=...>: inline event handler", goquery.NodeName(s), a.Key)
					}
				}
			})
		})
	}
}

func TestEveryPageIsAccessibleByStructure(t *testing.T) {
	for _, p := range everyPage() {
		t.Run(p.name, func(t *testing.T) {
			doc, _ := render(t, p.c)
			if got, _ := doc.Find("html").Attr("lang"); got != "en" {
				t.Errorf(`html lang = %q, want "en"`, got)
			}
			if doc.Find(`meta[name="viewport"]`).Length() != 1 {
				t.Error("no viewport meta")
			}
			if doc.Find("main#main").Length() != 1 {
				t.Error("want one <main id=main>")
			}
			if doc.Find(`a.skip-link[href="#main"]`).Length() != 1 {
				t.Error("no skip link to #main")
			}
			if doc.Find("h1").Length() != 1 {
				t.Errorf("want one h1, got %d", doc.Find("h1").Length())
			}
			ids := map[string]bool{}
			doc.Find("[id]").Each(func(_ int, s *goquery.Selection) {
				id, _ := s.Attr("id")
				if ids[id] {
					t.Errorf("duplicate id %q", id)
				}
				ids[id] = true
			})
			for _, a := range []string{"aria-describedby", "aria-labelledby", "data-copy-target"} {
				doc.Find("[" + a + "]").Each(func(_ int, s *goquery.Selection) {
					v, _ := s.Attr(a)
					for _, id := range strings.Fields(v) {
						if !ids[id] {
							t.Errorf("%s names #%s, which is not on the page", a, id)
						}
					}
				})
			}
			doc.Find("img").Each(func(_ int, s *goquery.Selection) {
				if _, ok := s.Attr("alt"); !ok {
					t.Errorf("img %s has no alt", attr(t, s, "src"))
				}
			})
		})
	}
}

// TestEveryLinkedAssetIsServed catches a typo in a static.URL name, which renders as an unhashed URL.
func TestEveryLinkedAssetIsServed(t *testing.T) {
	for _, p := range everyPage() {
		t.Run(p.name, func(t *testing.T) {
			doc, _ := render(t, p.c)
			doc.Find("[href], [src]").Each(func(_ int, s *goquery.Selection) {
				for _, a := range []string{"href", "src"} {
					u, _ := s.Attr(a)
					if name, ok := strings.CutPrefix(u, static.Prefix); ok {
						if _, _, found := static.Lookup(name); !found {
							t.Errorf("%s=%q is not a served asset", a, u)
						}
					}
				}
			})
		})
	}
}

func TestHostileTextIsEscaped(t *testing.T) {
	hostileRow := samplePayment()
	hostileRow.Reference, hostileRow.Description = hostile, hostile
	pv := samplePaymentView()
	pv.Payment = hostileRow
	ev := sampleForbidden()
	ev.Heading, ev.Bundle.Path = hostile, hostile
	tests := []struct {
		name   string
		c      templ.Component
		testID string
	}{
		{"dashboard", Dashboard(DashboardView{Page: loggedInPage(), Payments: []PaymentRow{hostileRow}}), "payment-row-link"},
		{"payment", Payment(pv), "payment-reference"},
		{"new payment", NewPayment(NewPaymentView{Page: loggedInPage(), Errors: map[string]string{"reference": hostile}}), "field-error-reference"},
		{"error", Error(ev), "error-heading"},
		{"support bundle", Error(ev), "bundle-path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, html := render(t, tt.c)
			if got := text(one(t, doc, tt.testID)); got != hostile {
				t.Errorf("%s text = %q, want the hostile text shown literally", tt.testID, got)
			}
			if strings.Contains(html, hostile) {
				t.Error("the hostile text reached the HTML unescaped")
			}
			if n := doc.Find("script").Not(`[src^="` + static.Prefix + `"]`).Length(); n != 0 {
				t.Errorf("want only our assets' script elements (app.js, live.js), got %d others", n)
			}
		})
	}
	t.Run("value attribute", func(t *testing.T) {
		v := NewPaymentView{Page: loggedInPage(), Reference: `"><script>alert(1)</script>`}
		doc, _ := render(t, NewPayment(v))
		if got := attr(t, doc.Find(`input[name="reference"]`), "value"); got != v.Reference {
			t.Errorf("value = %q", got)
		}
		if n := doc.Find("script").Length(); n != 1 {
			t.Errorf("want only app.js's script element, got %d", n)
		}
	})
}

// A payment URL comes from Bead's answer; a javascript: URL there must not become a clickable script.
func TestHostileURLsAreSanitized(t *testing.T) {
	v := samplePaymentView()
	v.PaymentURL = "javascript:alert(1)"
	v.Payment.URL = "javascript:alert(2)"
	doc, _ := render(t, Payment(v))
	if got := attr(t, one(t, doc, "payment-link"), "href"); strings.HasPrefix(strings.ToLower(got), "javascript:") {
		t.Errorf("payment link href = %q", got)
	}
	dash, _ := render(t, Dashboard(DashboardView{Page: loggedInPage(), Payments: []PaymentRow{v.Payment}}))
	if got := attr(t, one(t, dash, "payment-row-link"), "href"); strings.HasPrefix(strings.ToLower(got), "javascript:") {
		t.Errorf("row link href = %q", got)
	}
}
