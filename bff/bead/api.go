// Package bead is the typed client of Bead's identity realm and payments API. It is the only package that
// knows Bead's wire format: token grants (through golang.org/x/oauth2), payment creation, tracking status,
// and the tolerant parsing of every documented variant of Bead's answers (see ../shared/bead-api.md).
//
// Every call carries an `x-request-id` (taken from the context, see WithRequestID) and runs under a
// timeout. Failures come back as *APIError (Bead answered with a non-2xx status), *TokenError (the token
// endpoint refused a grant) or *TransportError (no answer: connection refused, timeout), so that callers
// and the diagnosis package can tell them apart with errors.As.
package bead

import (
	"net/http"
	"time"

	"github.com/shopspring/decimal"
)

// Config says where Bead is and how to talk to it.
type Config struct {
	APIURL         string        // payments API base, e.g. https://api.test.devs.beadpay.io (no trailing slash needed)
	IdentityURL    string        // Keycloak realm base, e.g. https://identity.beadpay.io/realms/nonprod
	ClientID       string        // OAuth client, "bead-terminal"
	ClientSecret   string        // optional; empty for Bead's public terminal client
	Scopes         []string      // e.g. {"openid", "profile", "email"}
	UsernameSuffix string        // appended to a login name without "@", e.g. "@beadpay.io"
	APIKey         string        // when set, payments calls send X-Api-Key instead of Authorization: Bearer
	TrackingPath   string        // "tracking" (default): GET /payments/tracking/{trackingId}; "payment": GET /Payments/{id}/tracking
	Timeout        time.Duration // per call; default 10 s
	HTTPClient     *http.Client  // optional; its Timeout is not relied on (Timeout above is)
	Now            func() time.Time
}

// Token is one token response of the realm.
type Token struct {
	AccessToken   string
	RefreshToken  string
	IDToken       string
	TokenType     string // as sent; the client always sends "Bearer"
	Scope         string // space-separated, as granted
	Expiry        time.Time
	RefreshExpiry time.Time // zero when the realm did not say
	ObtainedAt    time.Time
}

// Claims are the decoded (not verified) claims of an access token. The client reads them to learn the
// terminal a token belongs to and for diagnosis; it does not verify the signature, because the token came
// to it straight from the realm over the connection it opened.
type Claims struct {
	Issuer            string
	Subject           string
	Audience          []string // "aud" as a string or an array
	AuthorizedParty   string   // azp
	ClientID          string   // client_id, falling back to azp when absent
	Scope             string
	PreferredUsername string
	Email             string
	TerminalID        string // the terminalId claim, else derived from preferred_username / email before the "@"
	MerchantID        string // the merchantId claim, when present
	SessionID         string // sid
	TokenID           string // jti
	Type              string // typ
	KeyID             string // kid of the header
	Algorithm         string // alg of the header
	IssuedAt          time.Time
	ExpiresAt         time.Time
	NotBefore         time.Time
}

// Status is a payment status as a lower-case word, whatever form Bead sent it in.
type Status string

// The statuses Bead documents. Legacy numbers map: 2 completed, 3 underpaid, 4 overpaid, 7 expired,
// 8 invalid, 9 cancelled (0 created and 1 processing are assumed).
const (
	StatusCreated           Status = "created"
	StatusProcessing        Status = "processing"
	StatusCompleted         Status = "completed"
	StatusUnderpaid         Status = "underpaid"
	StatusOverpaid          Status = "overpaid"
	StatusExpired           Status = "expired"
	StatusInvalid           Status = "invalid"
	StatusCancelled         Status = "cancelled"
	StatusFullyRefunded     Status = "fullyrefunded"
	StatusPartiallyRefunded Status = "partiallyrefunded"
)

// Customer is the optional shopper block of a payment.
type Customer struct {
	Email       string `json:"email,omitempty"`
	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	Address     string `json:"address,omitempty"`
	Address2    string `json:"address2,omitempty"`
	City        string `json:"city,omitempty"`
	State       string `json:"state,omitempty"`
	CountryCode string `json:"countryCode,omitempty"`
	PostalCode  string `json:"postalCode,omitempty"`
}

// CreatePaymentRequest is what POST /payments/crypto takes. RequestedAmount is in major units and is sent
// as a JSON number with its exact decimal digits.
type CreatePaymentRequest struct {
	TerminalID      string
	MerchantID      string
	RequestedAmount decimal.Decimal
	Reference       string
	Description     string
	RedirectURL     string
	Customer        *Customer
	WebhookURLs     []string
}

// CreatedPayment is Bead's answer to a create.
type CreatedPayment struct {
	TrackingID    string
	PaymentID     string
	PaymentPageID string
	PaymentURLs   []string // every shape normalised to a list of URLs; PaymentURLs[0] is the hosted page
}

// PaymentURL is the hosted payment page to send the shopper to ("" when Bead sent none).
func (p *CreatedPayment) PaymentURL() string {
	if len(p.PaymentURLs) == 0 {
		return ""
	}
	return p.PaymentURLs[0]
}

// Money is an amount with its currency code ("" when Bead sent none, e.g. before a tender is chosen).
type Money struct {
	Amount   decimal.Decimal
	Currency string
}

// PaymentStatus is the tracking answer (and the webhook body).
type PaymentStatus struct {
	PaymentID    string
	TrackingID   string
	PaymentCode  string
	Status       Status
	Requested    *Money // amounts.requested.inRequestedCurrency (or the older amounts.requested)
	RequestedPay *Money // amounts.requested.inPaymentCurrency
	Paid         *Money // amounts.paid.inPaymentCurrency
	Reference    string
	Description  string
	ReceivedTime time.Time
	TerminalID   string
	MerchantID   string
	ErrorMessage string
}
