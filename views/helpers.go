package views

import (
	"cmp"
	"strings"
	"unicode/utf8"
)

// productName is the name in the header and at the end of every <title>.
const productName = "beadbff"

// navItem names the header link of the page being shown, so that it gets aria-current="page".
type navItem string

const (
	navNone       navItem = ""
	navPayments   navItem = "payments"
	navNewPayment navItem = "new-payment"
	navWebhooks   navItem = "webhooks"
)

// jwtPrefixMax is how much of an access token the support bundle may show: Bead support asks for the
// first 50 characters, which identify the token's header and issuer without being usable as a token.
const jwtPrefixMax = 50

// withTitle gives p a default title unless the handler set one.
func withTitle(p Page, title string) Page {
	if p.Title == "" {
		p.Title = title
	}
	return p
}

func pageTitle(p Page) string {
	if p.Title == "" {
		return productName
	}
	return p.Title + " · " + productName
}

// amountText is "12.50 USD", or just "12.50" when the currency is unknown.
func amountText(p PaymentRow) string {
	return strings.TrimSpace(p.Amount + " " + p.Currency)
}

// referenceText names a payment in links and headings; a payment without a reference falls back to its
// tracking id so that its link is never empty.
func referenceText(p PaymentRow) string {
	if p.Reference != "" {
		return p.Reference
	}
	return p.TrackingID
}

// statusText is the badge text: the label the handler chose, else the status word itself.
func statusText(status, label string) string {
	if label != "" {
		return label
	}
	if status == "" {
		return "Unknown"
	}
	return status
}

// paymentState is which of the payment page's explanatory notes applies: "waiting" while the status can
// still change, "paid" once the order may be fulfilled, "unpaid" when it is final without being paid.
// app.js chooses among the same three words when the status changes.
func paymentState(p PaymentRow) string {
	switch {
	case p.Paid:
		return "paid"
	case p.Final:
		return "unpaid"
	default:
		return "waiting"
	}
}

func boolAttr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// fieldErrorID and fieldHintID are the ids that a form control's aria-describedby points at.
func fieldErrorID(name string) string { return name + "-error" }
func fieldHintID(name string) string  { return name + "-hint" }

// describedBy lists the hint and, when the field has an error, the error message of a control.
func describedBy(name string, hasHint bool, errs map[string]string) string {
	var ids []string
	if errs[name] != "" {
		ids = append(ids, fieldErrorID(name))
	}
	if hasHint {
		ids = append(ids, fieldHintID(name))
	}
	return strings.Join(ids, " ")
}

// loginURL is where "Log in again" leads.
func loginURL(v ErrorView) string {
	if v.LoginURL != "" {
		return v.LoginURL
	}
	return "/login"
}

// jwtPrefix enforces the support bundle's promise of never showing more than the first 50 characters of a
// token, even if a caller passed the whole token by mistake.
func jwtPrefix(s string) string {
	if utf8.RuneCountInString(s) <= jwtPrefixMax {
		return s
	}
	return string([]rune(s)[:jwtPrefixMax])
}

// bundleHeading, bundleIntro and bundleMailLabel are the handler's words for who the bundle is for, or
// those of a bundle for Bead's support.
func bundleHeading(b SupportBundle) string {
	return cmp.Or(b.Heading, "Still blocked? Send this to Bead support")
}

func bundleIntro(b SupportBundle) string {
	return cmp.Or(b.Intro, "Refreshing the token and trying again did not help. With these details Bead's support can find "+
		"your request in their logs. They include no password, and only the start of the token, which is not enough to use it.")
}

func bundleMailLabel(b SupportBundle) string {
	return cmp.Or(b.MailLabel, "Email Bead support")
}

// bundleText is what the support bundle's copy button copies: the handler's text, or, when it left Text
// empty, the same fields as lines.
func bundleText(b SupportBundle) string {
	if b.Text != "" {
		return b.Text
	}
	lines := []string{
		"Time: " + b.Timestamp,
		"Request: " + b.Path,
		"x-request-id: " + b.RequestID,
		"JWT (first 50 characters): " + jwtPrefix(b.JWTPrefix),
	}
	return strings.Join(lines, "\n")
}

// firstInvalid names the first field of the new-payment form that has an error, in the form's order, so
// that focus lands on it after a refused submit (not on <body>).
func firstInvalid(errs map[string]string) string {
	for _, f := range []string{"amount", "reference", "description"} {
		if errs[f] != "" {
			return f
		}
	}
	return ""
}

// checkLabel is a checklist status in words (the status word stays in data-status for styling).
func checkLabel(status string) string {
	switch status {
	case "passed":
		return "Passed"
	case "failed":
		return "Failed"
	case "not_applicable":
		return "Not applicable"
	}
	return status
}
