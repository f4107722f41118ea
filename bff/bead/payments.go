package bead

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// createBody is the wire form of POST /payments/crypto. requestedAmount is a json.Number holding the
// decimal's exact digits, so 12.50 goes out as the JSON number 12.50: no float ever touches an amount.
type createBody struct {
	TerminalID      string      `json:"terminalId"`
	MerchantID      string      `json:"merchantId"`
	RequestedAmount json.Number `json:"requestedAmount"`
	PaymentURLType  string      `json:"paymentUrlType"`
	Reference       string      `json:"reference"`
	Description     string      `json:"description"`
	RedirectURL     string      `json:"redirectUrl,omitempty"`
	Customer        *Customer   `json:"customer,omitempty"`
	WebhookURLs     []string    `json:"webhookUrls,omitempty"`
}

// maxIdempotencyKeyLen bounds the Idempotency-Key header.
const maxIdempotencyKeyLen = 255

// CreatePayment asks Bead for a hosted crypto payment page. The terminal and merchant ids, the amount
// (positive, at most two decimals, at most 999,999,999.99) and the idempotency key are checked before anything
// is sent. idempotencyKey goes out as Idempotency-Key; a retry of the same create must pass the same key,
// so that Bead returns the first payment instead of making a second one.
func (c *Client) CreatePayment(ctx context.Context, accessToken string, req CreatePaymentRequest, idempotencyKey string) (*CreatedPayment, error) {
	const op = "create payment"
	switch {
	case !ValidID(req.TerminalID):
		return nil, fmt.Errorf("bead: %s: %w: terminalId", op, ErrInvalidID)
	case !ValidID(req.MerchantID):
		return nil, fmt.Errorf("bead: %s: %w: merchantId", op, ErrInvalidID)
	case idempotencyKey == "" || len(idempotencyKey) > maxIdempotencyKeyLen || !headerSafe(idempotencyKey):
		return nil, fmt.Errorf("bead: %s: %w: the idempotency key must be 1 to %d visible ASCII characters", op, ErrInvalidRequest, maxIdempotencyKeyLen)
	}
	if err := checkAmount(req.RequestedAmount); err != nil {
		return nil, fmt.Errorf("bead: %s: %w", op, err)
	}
	body, err := json.Marshal(createBody{
		TerminalID:      req.TerminalID,
		MerchantID:      req.MerchantID,
		RequestedAmount: json.Number(FormatAmount(req.RequestedAmount)),
		PaymentURLType:  "web",
		Reference:       req.Reference,
		Description:     req.Description,
		RedirectURL:     req.RedirectURL,
		Customer:        req.Customer,
		WebhookURLs:     req.WebhookURLs,
	})
	if err != nil {
		return nil, fmt.Errorf("bead: %s: %w", op, err)
	}
	a, err := c.callAPI(ctx, op, http.MethodPost, "/payments/crypto", accessToken, body,
		http.Header{"Idempotency-Key": {idempotencyKey}})
	if err != nil {
		return nil, err
	}
	var wire struct {
		TrackingID    flexString      `json:"trackingId"`
		PaymentID     flexString      `json:"paymentId"`
		PaymentPageID flexString      `json:"paymentPageId"`
		PaymentURLs   json.RawMessage `json:"paymentUrls"`
	}
	if err := decodeAnswer(a, &wire); err != nil {
		return nil, fmt.Errorf("bead: %s: %w", op, err)
	}
	urls, err := paymentURLs(wire.PaymentURLs)
	if err != nil {
		return nil, fmt.Errorf("bead: %s: %w: paymentUrls: %v", op, ErrUnexpectedAnswer, err)
	}
	if wire.TrackingID == "" && wire.PaymentID == "" {
		return nil, fmt.Errorf("bead: %s: %w: neither trackingId nor paymentId", op, ErrUnexpectedAnswer)
	}
	return &CreatedPayment{
		TrackingID:    string(wire.TrackingID),
		PaymentID:     string(wire.PaymentID),
		PaymentPageID: string(wire.PaymentPageID),
		PaymentURLs:   urls,
	}, nil
}

// paymentURLs reads every shape paymentUrls has had: {type,url} (2023), [{type,url}] (2025) and
// ["url"] (2026), and a bare "url" for good measure. Entries of type web come first, since
// PaymentURLs[0] is the page the shopper is sent to. Only absolute http(s) URLs are kept: the URL ends
// up in a link and a redirect, where a javascript: or relative URL has no business.
func paymentURLs(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return nil, nil
	}
	type typed struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	}
	var entries []typed
	switch raw[0] {
	case '{':
		var one typed
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, err
		}
		entries = []typed{one}
	case '"':
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, err
		}
		entries = []typed{{URL: one}}
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		for _, item := range items {
			var e typed
			if err := json.Unmarshal(item, &e); err != nil {
				if err := json.Unmarshal(item, &e.URL); err != nil {
					return nil, fmt.Errorf("an entry is neither a URL nor {type,url}")
				}
			}
			entries = append(entries, e)
		}
	default:
		return nil, fmt.Errorf("neither an object, an array nor a string")
	}
	slices.SortStableFunc(entries, func(a, b typed) int {
		aWeb, bWeb := strings.EqualFold(a.Type, "web"), strings.EqualFold(b.Type, "web")
		switch {
		case aWeb && !bWeb:
			return -1
		case bWeb && !aWeb:
			return 1
		}
		return 0
	})
	var urls []string
	for _, e := range entries {
		if u, err := url.Parse(strings.TrimSpace(e.URL)); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			urls = append(urls, u.String())
		}
	}
	return urls, nil
}

// Tracking reads a payment's status. With TrackingPath "tracking" (the default) id is the trackingId
// (GET /payments/tracking/{id}); with "payment" it is the paymentId (GET /Payments/{id}/tracking). An
// id that fails ValidID is refused before any request is made.
func (c *Client) Tracking(ctx context.Context, accessToken, trackingID string) (*PaymentStatus, error) {
	const op = "tracking"
	if !ValidID(trackingID) {
		return nil, fmt.Errorf("bead: %s: %w", op, ErrInvalidID)
	}
	path := "/payments/tracking/" + url.PathEscape(trackingID)
	if c.cfg.TrackingPath == TrackingByPay {
		path = "/Payments/" + url.PathEscape(trackingID) + "/tracking"
	}
	a, err := c.callAPI(ctx, op, http.MethodGet, path, accessToken, nil, nil)
	if err != nil {
		return nil, err
	}
	if a.truncated {
		return nil, fmt.Errorf("bead: %s: %w: more than %d bytes", op, ErrUnexpectedAnswer, maxAnswerBody)
	}
	ps, err := DecodePaymentStatus(a.body)
	if err != nil {
		return nil, fmt.Errorf("bead: %s: %w", op, err)
	}
	if ps.TrackingID == "" && c.cfg.TrackingPath == TrackingByID {
		ps.TrackingID = trackingID
	}
	return ps, nil
}

// statusWire is the tracking answer and webhook body as Bead sends it.
type statusWire struct {
	PaymentID    flexString      `json:"paymentId"`
	TrackingID   flexString      `json:"trackingId"`
	PaymentCode  flexString      `json:"paymentCode"`
	StatusCode   json.RawMessage `json:"statusCode"`
	Amounts      *amountsWire    `json:"amounts"`
	Reference    flexString      `json:"reference"`
	Description  flexString      `json:"description"`
	ReceivedTime flexString      `json:"receivedTime"`
	TerminalID   flexString      `json:"terminalId"`
	MerchantID   flexString      `json:"merchantId"`
	ErrorMessage flexString      `json:"errorMessage"`
}

type amountsWire struct {
	Requested *moneyGroup `json:"requested"`
	Paid      *moneyGroup `json:"paid"`
}

// moneyGroup is amounts.requested or amounts.paid: the current shape splits it by currency, the older one
// is the amount itself ({amount, currency: "USD"}). Field names match case-insensitively.
type moneyGroup struct {
	InRequestedCurrency json.RawMessage `json:"inRequestedCurrency"`
	InPaymentCurrency   json.RawMessage `json:"inPaymentCurrency"`
	Amount              json.RawMessage `json:"amount"`
	Currency            json.RawMessage `json:"currency"`
}

// DecodePaymentStatus reads a payment status object: the body of a tracking answer, and of a webhook.
// It accepts every documented variant (see Tracking and bead-api.md §2). A statusCode that is well-formed
// but undocumented is kept as its word (neither Final nor Paid) rather than failing the whole answer;
// a missing or malformed one, or a malformed amount, is an ErrUnexpectedAnswer.
func DecodePaymentStatus(body []byte) (*PaymentStatus, error) {
	var w statusWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("%w: not a payment status object: %v", ErrUnexpectedAnswer, err)
	}
	status, err := parseStatus(w.StatusCode)
	if err != nil && (status == "" || !errors.Is(err, ErrUnknownStatus)) {
		return nil, fmt.Errorf("%w: statusCode: %v", ErrUnexpectedAnswer, err)
	}
	ps := &PaymentStatus{
		PaymentID:    string(w.PaymentID),
		TrackingID:   string(w.TrackingID),
		PaymentCode:  string(w.PaymentCode),
		Status:       status,
		Reference:    string(w.Reference),
		Description:  string(w.Description),
		ReceivedTime: parseTime(string(w.ReceivedTime)),
		TerminalID:   string(w.TerminalID),
		MerchantID:   string(w.MerchantID),
		ErrorMessage: string(w.ErrorMessage),
	}
	if w.Amounts != nil {
		if g := w.Amounts.Requested; g != nil {
			if g.InRequestedCurrency != nil || g.InPaymentCurrency != nil {
				if ps.Requested, err = decodeMoney(g.InRequestedCurrency); err != nil {
					return nil, fmt.Errorf("%w: amounts.requested.inRequestedCurrency: %v", ErrUnexpectedAnswer, err)
				}
				if ps.RequestedPay, err = decodeMoney(g.InPaymentCurrency); err != nil {
					return nil, fmt.Errorf("%w: amounts.requested.inPaymentCurrency: %v", ErrUnexpectedAnswer, err)
				}
			} else if ps.Requested, err = moneyOf(g.Amount, g.Currency); err != nil {
				return nil, fmt.Errorf("%w: amounts.requested: %v", ErrUnexpectedAnswer, err)
			}
		}
		if g := w.Amounts.Paid; g != nil {
			if g.InPaymentCurrency != nil {
				ps.Paid, err = decodeMoney(g.InPaymentCurrency)
			} else {
				ps.Paid, err = moneyOf(g.Amount, g.Currency)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: amounts.paid: %v", ErrUnexpectedAnswer, err)
			}
		}
	}
	return ps, nil
}

// decodeMoney reads {amount, currency}; null or absent is no amount (nil).
func decodeMoney(raw json.RawMessage) (*Money, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m struct {
		Amount   json.RawMessage `json:"amount"`
		Currency json.RawMessage `json:"currency"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not an {amount, currency} object")
	}
	return moneyOf(m.Amount, m.Currency)
}

func moneyOf(amountRaw, currencyRaw json.RawMessage) (*Money, error) {
	amount, ok, err := decodeAmount(amountRaw)
	if err != nil || !ok {
		return nil, err
	}
	currency, err := currencyCode(currencyRaw)
	if err != nil {
		return nil, err
	}
	return &Money{Amount: amount, Currency: currency}, nil
}

// maxAmountText bounds an amount's text: digits beyond any currency's precision are junk, and a huge
// exponent would make formatting it expensive.
const maxAmountText = 40

// decodeAmount reads an amount sent as a JSON number (1.02) or a string ("1.02") into a decimal with the
// same digits. It never goes through float64. ok is false when the amount is null or absent.
func decodeAmount(raw json.RawMessage) (d decimal.Decimal, ok bool, err error) {
	text := string(bytes.TrimSpace(raw))
	if isNull(raw) {
		return decimal.Decimal{}, false, nil
	}
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(raw, &text); err != nil {
			return decimal.Decimal{}, false, fmt.Errorf("amount: %v", err)
		}
		text = strings.TrimSpace(text)
		if text == "" {
			return decimal.Decimal{}, false, nil
		}
	} else if !isJSONNumber(raw) {
		return decimal.Decimal{}, false, fmt.Errorf("amount is neither a number nor a string")
	}
	if len(text) > maxAmountText || (strings.ContainsAny(text, "eE") && !allowedExponent(text)) {
		return decimal.Decimal{}, false, fmt.Errorf("amount %q is not a sane decimal", shorten(text, maxAmountText))
	}
	d, err = decimal.NewFromString(text)
	if err != nil {
		return decimal.Decimal{}, false, fmt.Errorf("amount %q is not a decimal", shorten(text, maxAmountText))
	}
	return d, true, nil
}

// allowedExponent accepts a small exponent (1.5e2), which a JSON encoder may emit, and refuses one that
// would blow a decimal up to thousands of digits.
func allowedExponent(text string) bool {
	i := strings.IndexAny(text, "eE")
	exp := strings.TrimLeft(text[i+1:], "+-")
	return len(exp) > 0 && len(exp) <= 2 && allDigits(exp)
}

// currencyCode reads a currency sent as a code ("USD"), an object ({id, code, name, symbol}), or null
// (no tender chosen yet).
func currencyCode(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var code string
	if json.Unmarshal(raw, &code) == nil {
		return code, nil
	}
	var obj struct {
		Code   flexString `json:"code"`
		Name   flexString `json:"name"`
		Symbol flexString `json:"symbol"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("currency is neither a code nor an object")
	}
	return firstNonEmpty(string(obj.Code), string(obj.Name), string(obj.Symbol)), nil
}

// parseTime reads an ISO 8601 time. ASP.NET sometimes leaves out the zone; Bead's times are UTC, so a
// time without one is read as UTC. An unreadable time is left zero: it is shown, never acted on.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Probe calls GET /currencies, the "simple endpoint" of Bead's 403 checklist: if it is refused too, the
// problem is the token or a firewall, not the payment. Any 2xx is success; the body is not read.
func (c *Client) Probe(ctx context.Context, accessToken string) error {
	_, err := c.callAPI(ctx, "probe", http.MethodGet, "/currencies", accessToken, nil, nil)
	return err
}

// decodeAnswer decodes a 2xx JSON answer into v.
func decodeAnswer(a *answer, v any) error {
	if a.truncated {
		return fmt.Errorf("%w: more than %d bytes", ErrUnexpectedAnswer, maxAnswerBody)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		shape := classifyErrorBody(a.header.Get("Content-Type"), a.body, false).Shape
		return fmt.Errorf("%w: a %d answer that is not the expected JSON (%s body)", ErrUnexpectedAnswer, a.status, shape)
	}
	return nil
}

// flexString is a string field that Bead might also send as a number or null.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		*f = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	if isJSONNumber(b) {
		*f = flexString(bytes.TrimSpace(b))
		return nil
	}
	return fmt.Errorf("want a string, got %s", shorten(string(b), 20))
}
