// Package views holds beadbff's templ components and the screen-shaped view models they take. Views know
// nothing of Fiber, Redis or Bead's types: the handlers in package bff build these models.
package views

// Page is what every full page needs.
type Page struct {
	Title     string // the page's own title; the layout appends " · beadbff"
	Nonce     string // CSP nonce for this response, put on every <script> the page has
	CSRFToken string // the session's form token, for hidden inputs and the logout form ("" when none)
	Staff     *Staff // the logged-in terminal; nil on public pages (login, help, errors without session)
	Demo      bool   // demo mode: the server talks to the embedded sandbox
	Flash     string // a one-line notice at the top of the page ("" for none)
}

// Staff identifies the logged-in terminal in the header.
type Staff struct {
	TerminalID string
	MerchantID string
	Username   string
}

// DemoCredential is a seeded sandbox terminal shown on the login page in demo mode.
type DemoCredential struct {
	Label    string // e.g. "Merchant A, terminal 1"
	Username string
	Password string // sandbox passwords only: never a real one
}

// LoginView is /login.
type LoginView struct {
	Page
	Username string           // what was typed, to refill the form after an error
	Error    string           // "" or a message such as "Wrong username or password."
	Demo     []DemoCredential // shown only when Page.Demo
	Next     string           // a local path to go to after login ("" for the dashboard)
}

// PaymentRow is one payment as listed and shown.
type PaymentRow struct {
	TrackingID  string
	Amount      string // decimal string, e.g. "12.50"
	Currency    string // e.g. "USD"
	Reference   string
	Description string
	Status      string // lower-case word: created, processing, completed, ...
	StatusLabel string // human words: "Waiting for payment", "Completed", ...
	Final       bool   // no further change is expected
	Paid        bool   // completed or overpaid: the order may be fulfilled
	CreatedAt   string // already formatted, with time zone
	URL         string // this server's page of the payment, /payments/{trackingId}
}

// DashboardView is / (recent payments of the terminal).
type DashboardView struct {
	Page
	Payments []PaymentRow
}

// NewPaymentView is /payments/new.
type NewPaymentView struct {
	Page
	Amount      string
	Reference   string
	Description string
	Errors      map[string]string // field name ("amount", "reference", "description") -> message; "" key: form-wide
	Failure     *CreateFailure    // why Bead did not create the payment just submitted; nil for none
	// FormKey is this form's idempotency key (random, made when the form is first shown): the same form
	// sent twice makes one payment. Sent holds the details an attempt with FormKey sent when its outcome
	// is unknown ("" otherwise); both go back as hidden fields.
	FormKey string
	Sent    string
}

// CreateFailure is a submitted payment Bead did not create (a WAF in between, a rate limit, a token it
// refused...): the form is shown again with what was typed, under a banner that says why in plain words
// and links to the diagnosis. It holds no token and no secret: the incident page has the support bundle.
type CreateFailure struct {
	Heading     string // one sentence: what became of the payment, e.g. "The payment was not created."
	CauseTitle  string // the cause in plain words, e.g. "Blocked before reaching Bead"
	Summary     string // what happened, e.g. "The 403 came from a firewall or proxy in front of Bead, ..."
	Advice      string // what to do now, e.g. "Wait 30 seconds, then create it again."
	Cause       string // the stable cause code, e.g. "blocked_before_bead"
	RequestID   string // this request's id
	IncidentURL string // "/help/incidents/{id}", the diagnosis; "" when it could not be stored
	HelpURL     string // "/help/403#cause", the cause explained
}

// PaymentView is /payments/{trackingId}.
type PaymentView struct {
	Page
	Payment     PaymentRow
	PaymentURL  string // Bead's hosted payment page, opened in a new window
	QRCodeURL   string // an image URL of a QR code of PaymentURL (served by this server)
	CheckoutURL string // this server's embeddable checkout page of the payment
	StatusURL   string // JSON endpoint the page polls until Final: GET returns {"statusCode","statusLabel","final","paid"}
}

// SupportBundle is the "still blocked?" block: exactly what Bead's support asks for, and who it is for.
type SupportBundle struct {
	Timestamp string // with time zone, e.g. "2026-12-03T10:41:29Z (UTC)"
	Path      string // the request path with secrets removed, e.g. "POST /payments/crypto"
	RequestID string // the x-request-id sent to Bead
	JWTPrefix string // the first 50 characters of the access token, never more
	Email     string // Bead support's address ("" when there is no one to mail)
	MailtoURL string // mailto: link with subject and body prefilled ("": no mail link)
	Text      string // the whole bundle as plain text, for the copy button
	// Heading, Intro and MailLabel say who the bundle is for: Bead's support, or whoever runs a firewall
	// in front of Bead when that answered. Empty (a bundle stored before they were kept) reads as one for
	// Bead's support.
	Heading   string
	Intro     string
	MailLabel string
	// Note is said where the mail link would be, such as why there is no one to mail in demo mode.
	Note string
}

// ErrorView is every error page: not found, log in again, forbidden by Bead, store unavailable, ...
type ErrorView struct {
	Page
	Status     int
	Heading    string // one sentence: what happened
	Detail     string // what to do
	Cause      string // the stable cause code of CONTRACT.md ("" when none)
	RequestID  string // this request's id, always shown
	HelpURL    string // "/help/403#cause" or ""
	LoginAgain bool   // show a "Log in again" button
	LoginURL   string // where "Log in again" leads, e.g. "/login?next=%2Fpayments%2Fnew"; "" means "/login"
	Bundle     *SupportBundle
}
