package sandbox

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Payment statuses, the words Bead answers. The two refund statuses are documented as reserved;
// the sandbox lets the control endpoint set them so a client can be tested against them.
const (
	statusCreated           = "created"
	statusProcessing        = "processing"
	statusCompleted         = "completed"
	statusUnderpaid         = "underpaid"
	statusOverpaid          = "overpaid"
	statusExpired           = "expired"
	statusInvalid           = "invalid"
	statusCancelled         = "cancelled"
	statusFullyRefunded     = "fullyRefunded"
	statusPartiallyRefunded = "partiallyRefunded"
)

// legacyStatusNumbers are the numeric statusCodes Bead used until May 2025. Only 2, 3, 4, 7, 8
// and 9 are documented; 0, 1, 5 and 6 are guesses that fill the gaps.
var legacyStatusNumbers = map[string]int{
	statusCreated:           0,
	statusProcessing:        1,
	statusCompleted:         2,
	statusUnderpaid:         3,
	statusOverpaid:          4,
	statusFullyRefunded:     5,
	statusPartiallyRefunded: 6,
	statusExpired:           7,
	statusInvalid:           8,
	statusCancelled:         9,
}

// canonicalStatus maps a word in any case, or a legacy number, to the status word.
func canonicalStatus(s string) (string, bool) {
	for word, n := range legacyStatusNumbers {
		if strings.EqualFold(s, word) || s == strconv.Itoa(n) {
			return word, true
		}
	}
	return "", false
}

func isFinal(status string) bool { return status != statusCreated && status != statusProcessing }

// canMove says whether Bead lets a payment go from one status to another: forward only, a final
// status is final, and only paid payments can be refunded.
func canMove(from, to string) bool {
	refund := to == statusFullyRefunded || to == statusPartiallyRefunded
	switch from {
	case statusCreated:
		return to != statusCreated && !refund
	case statusProcessing:
		return isFinal(to) && !refund
	case statusCompleted, statusOverpaid:
		return refund
	case statusPartiallyRefunded:
		return to == statusFullyRefunded
	}
	return false
}

// payment is one hosted crypto payment.
type payment struct {
	id, trackingID, pageID, code string
	terminal                     Terminal
	amount                       decimal.Decimal // requested, USD
	reference, description       string
	redirectURL                  string
	webhookURLs                  []string
	created                      time.Time

	status       string
	tenderChosen bool            // the shopper picked a crypto currency on the page
	paid         decimal.Decimal // in the payment currency
	errorMessage string
}

// move sets a new status and the amounts a shopper's behaviour would have produced. The
// payment currency is USDC at par, so amounts are easy to check.
func (p *payment) move(to string) {
	p.status = to
	switch to {
	case statusProcessing, statusExpired, statusCancelled:
		p.tenderChosen = p.tenderChosen || to == statusProcessing
	case statusCompleted:
		p.tenderChosen, p.paid = true, p.amount
	case statusUnderpaid:
		p.tenderChosen, p.paid = true, p.amount.Div(decimal.NewFromInt(2)).RoundDown(2)
	case statusOverpaid:
		p.tenderChosen, p.paid = true, p.amount.Mul(decimal.RequireFromString("1.1")).RoundUp(2)
	case statusInvalid:
		p.tenderChosen, p.paid = true, p.amount
		p.errorMessage = "More than one transaction was received for this payment."
	}
}

// Currencies as Bead describes them: USD is what merchants request, USDC what shoppers pay.
var (
	currencyUSD  = currency{ID: 1, Code: "USD", Name: "US Dollar", Symbol: "$"}
	currencyCAD  = currency{ID: 2, Code: "CAD", Name: "Canadian Dollar", Symbol: "$"}
	currencyBTC  = currency{ID: 3, Code: "BTC", Name: "Bitcoin", Symbol: "₿"}
	currencyUSDC = currency{ID: 4, Code: "USDC", Name: "USDC Ethereum", Symbol: "USDC"}
)

type currency struct {
	ID     int    `json:"id"`
	Code   string `json:"code"`
	Name   string `json:"name"`
	Symbol string `json:"symbol"`
}

// jsonDecimal writes a decimal as a JSON number with two decimals (12.50), never through a float.
type jsonDecimal struct{ decimal.Decimal }

func (d jsonDecimal) MarshalJSON() ([]byte, error) { return []byte(d.StringFixed(2)), nil }

type money struct {
	Amount   jsonDecimal `json:"amount"`
	Currency *currency   `json:"currency"`
}

// statusBody is Bead's payment status object: the tracking answer and the webhook body.
type statusBody struct {
	PaymentID   string `json:"paymentId"`
	TrackingID  string `json:"trackingId"`
	PaymentCode string `json:"paymentCode"`
	StatusCode  any    `json:"statusCode"` // a word, or a legacy number
	Amounts     struct {
		Requested struct {
			InPaymentCurrency   money `json:"inPaymentCurrency"`
			InRequestedCurrency money `json:"inRequestedCurrency"`
		} `json:"requested"`
		Paid struct {
			InPaymentCurrency money `json:"inPaymentCurrency"`
		} `json:"paid"`
	} `json:"amounts"`
	Reference    *string `json:"reference"`
	Description  *string `json:"description"`
	ReceivedTime string  `json:"receivedTime"`
	TerminalID   string  `json:"terminalId"`
	MerchantID   string  `json:"merchantId"`
	ErrorMessage *string `json:"errorMessage"`
}

// statusJSON renders the status object. Before a tender is chosen the payment-currency amounts
// are {"amount": 0, "currency": null}, as in Bead's examples.
func (p *payment) statusJSON(format StatusCodeFormat) []byte {
	var b statusBody
	b.PaymentID, b.TrackingID, b.PaymentCode = p.id, p.trackingID, p.code
	b.StatusCode = p.status
	if format == StatusCodeNumbers {
		b.StatusCode = legacyStatusNumbers[p.status]
	}
	b.Amounts.Requested.InRequestedCurrency = money{jsonDecimal{p.amount}, &currencyUSD}
	b.Amounts.Requested.InPaymentCurrency = money{Amount: jsonDecimal{decimal.Zero}}
	b.Amounts.Paid.InPaymentCurrency = money{Amount: jsonDecimal{decimal.Zero}}
	if p.tenderChosen {
		b.Amounts.Requested.InPaymentCurrency = money{jsonDecimal{p.amount}, &currencyUSDC}
		b.Amounts.Paid.InPaymentCurrency = money{jsonDecimal{p.paid}, &currencyUSDC}
	}
	b.Reference, b.Description = nullable(p.reference), nullable(p.description)
	b.ReceivedTime = p.created.UTC().Format(time.RFC3339)
	b.TerminalID, b.MerchantID = p.terminal.TerminalID, p.terminal.MerchantID
	b.ErrorMessage = nullable(p.errorMessage)
	out, _ := json.Marshal(b) // plain types only
	return out
}

// nullable is how ASP.NET writes an unset string: null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// paymentURLsJSON renders paymentUrls in one of Bead's three historical shapes.
func paymentURLsJSON(shape PaymentURLsShape, url string) any {
	type typed struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	}
	switch shape {
	case PaymentURLsObject:
		return typed{"web", url}
	case PaymentURLsObjects:
		return []typed{{"web", url}}
	default:
		return []string{url}
	}
}
