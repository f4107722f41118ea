package bff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	qrcode "github.com/skip2/go-qrcode"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
	"beadbff/session"
	"beadbff/views"
)

// paymentInput is a payment to create, as the API and the form give it, before validation.
type paymentInput struct {
	RequestedAmount json.RawMessage `json:"requestedAmount"` // a decimal string or a JSON number
	Reference       string          `json:"reference"`
	Description     string          `json:"description"`
	RedirectURL     string          `json:"redirectUrl"`
	Customer        *bead.Customer  `json:"customer"`
	TerminalID      string          `json:"terminalId"` // optional; must be the session's own
	MerchantID      string          `json:"merchantId"` // optional; must be the session's own
}

const (
	maxReference   = 100
	maxDescription = 500
	maxURL         = 2048
)

// validatePayment checks what the merchant sent and builds Bead's request. Nothing reaches Bead unless it
// passes. A body naming another terminal or merchant is refused here: Bead would refuse it too, with a
// bare 403 that explains nothing.
func validatePayment(in paymentInput, sess *session.Session) (bead.CreatePaymentRequest, error) {
	// Another terminal's request is refused whatever else is wrong with it: that is the more serious news.
	if (in.TerminalID != "" && in.TerminalID != sess.TerminalID) || (in.MerchantID != "" && in.MerchantID != sess.MerchantID) {
		return bead.CreatePaymentRequest{}, &Problem{Status: http.StatusForbidden, Cause: CauseTerminalMismatch,
			Title:  "Another terminal or merchant",
			Detail: "The request names a terminal or merchant other than the logged-in terminal's. Bead ties each token to one terminal; nothing was sent to Bead."}
	}
	fields := map[string]string{}
	amount, msg := parseAmountJSON(in.RequestedAmount)
	if msg != "" {
		fields["requestedAmount"] = msg
	}
	ref := strings.TrimSpace(in.Reference)
	switch {
	case ref == "":
		fields["reference"] = "Enter a reference (your order or invoice number)."
	case utf8.RuneCountInString(ref) > maxReference:
		fields["reference"] = "At most 100 characters."
	case !printable(ref):
		fields["reference"] = "Letters, digits, spaces and punctuation only."
	}
	desc := strings.TrimSpace(in.Description)
	if utf8.RuneCountInString(desc) > maxDescription {
		fields["description"] = "At most 500 characters."
	} else if !printable(desc) {
		fields["description"] = "Letters, digits, spaces and punctuation only."
	}
	if in.RedirectURL != "" {
		u, err := url.Parse(in.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(in.RedirectURL) > maxURL {
			fields["redirectUrl"] = "An absolute http(s) URL."
		}
	}
	if len(fields) > 0 {
		return bead.CreatePaymentRequest{}, invalidFields(fields)
	}
	return bead.CreatePaymentRequest{
		TerminalID:      sess.TerminalID,
		MerchantID:      sess.MerchantID,
		RequestedAmount: amount,
		Reference:       ref,
		Description:     desc,
		RedirectURL:     in.RedirectURL,
		Customer:        in.Customer,
	}, nil
}

// parseAmountJSON reads a decimal string or a JSON number; a non-empty message says what is wrong.
func parseAmountJSON(raw json.RawMessage) (decimal.Decimal, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return decimal.Decimal{}, "Enter an amount, e.g. 12.50."
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return decimal.Decimal{}, "Not an amount."
		}
	}
	text = strings.TrimSpace(text)
	switch {
	case strings.HasPrefix(text, "-"):
		return decimal.Decimal{}, "The amount must be more than zero."
	case !plainAmount.MatchString(text):
		return decimal.Decimal{}, "Enter the amount as a number with a dot before the cents, e.g. 12.50."
	case tooManyDecimals.MatchString(text):
		return decimal.Decimal{}, "Use at most two decimals (cents), e.g. 12.50."
	}
	d, err := bead.ParseAmount(text)
	switch {
	case err == nil:
		return d, ""
	case d.IsZero() && strings.Trim(text, "0.") == "":
		return decimal.Decimal{}, "The amount must be more than zero."
	}
	msg := strings.TrimPrefix(err.Error(), bead.ErrInvalidAmount.Error()+": ")
	if most, ok := strings.CutPrefix(msg, "more than "); ok {
		return decimal.Decimal{}, "The amount may be at most " + most + "."
	}
	return decimal.Decimal{}, sentence(msg)
}

var (
	plainAmount     = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	tooManyDecimals = regexp.MustCompile(`\.[0-9]{3,}$`)
)

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// sentence makes an error text presentable as a field message.
func sentence(s string) string {
	s = strings.TrimPrefix(s, "bead: ")
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// createPayment validates, asks Bead for the payment (refresh-and-retry included, with one
// Idempotency-Key for both tries) and records it for the dashboard and the checkout page. callerKey is
// the caller's own idempotency key (the API's Idempotency-Key header, the form's formKey; "" for none):
// the same key from the same terminal gets the same payment back, and only for the same details.
func (s *Server) createPayment(c *fiber.Ctx, sess *session.Session, in paymentInput, callerKey string) (*session.Payment, error) {
	req, err := validatePayment(in, sess)
	if p, ok := asProblem(err); ok && p.Cause == CauseTerminalMismatch {
		return nil, s.localIncident(c, sess, diagnose.OpCreatePayment, diagnose.LocalTerminalMismatch, p.Detail,
			diagnose.Resource{TerminalID: in.TerminalID, MerchantID: in.MerchantID})
	}
	if err != nil {
		return nil, err
	}
	key := idempotencyKey(sess.TerminalID, callerKey)
	var claim *keyClaim
	if callerKey != "" {
		// Without a caller's key the key is fresh and random: no one can send it again, so there is
		// nothing to bind, and the create costs no store writes for it.
		if claim, err = s.claimKey(c, sess.TerminalID, key, req); err != nil {
			return nil, err
		}
	}
	var created *bead.CreatedPayment
	err = s.withBead(c, sess, "create payment", func(ctx context.Context, token string) error {
		var err error
		created, err = s.bead.CreatePayment(ctx, token, req, key)
		return err
	})
	if err != nil {
		if pr, ok := asProblem(err); ok && claim != nil && paymentSurelyNotMade(pr) {
			if claim.first {
				s.releaseKey(c, claim)
			} else {
				// Refused, but under a claim an earlier attempt made: that one (still in flight, or with a
				// lost answer) may have made the payment. Said, so that the form keeps its key.
				pr.Err = fmt.Errorf("%w: %w", errKeyUsedByAnotherAttempt, pr.Err)
			}
		}
		if errors.Is(err, bead.ErrUnexpectedAnswer) {
			return nil, unreadableCreateAnswer(err)
		}
		return nil, err
	}
	now := s.now()
	p := session.Payment{
		TrackingID:  created.TrackingID,
		PaymentID:   created.PaymentID,
		CheckoutID:  randomToken(),
		TerminalID:  sess.TerminalID,
		MerchantID:  sess.MerchantID,
		PaymentURL:  created.PaymentURL(),
		Amount:      bead.FormatAmount(req.RequestedAmount),
		Currency:    paymentCurrency,
		Reference:   req.Reference,
		Description: req.Description,
		StatusCode:  string(bead.StatusCreated),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	stored, added, err := s.store.AddPayment(c.UserContext(), p)
	if err != nil && !errors.Is(err, session.ErrUnavailable) {
		// The store is up and refuses the record: Bead's 2xx lacks what one needs (a paymentId without a
		// trackingId, which bead-api.md has in every revision of the answer, and which the payment's page,
		// its status reads and webhooks all go by). The payment may exist, as after any answer this
		// server cannot use.
		return nil, unreadableCreateAnswer(fmt.Errorf("bff: create payment: the answer cannot be recorded: %w", err))
	}
	if err != nil {
		// The payment exists at Bead; say so rather than pretend it failed.
		s.log.Error("payment created at Bead but not recorded", "requestId", requestIDOf(c), "trackingId", p.TrackingID, "err", err)
		return nil, unrecordedPayment(p.TrackingID, err)
	}
	s.payments.put(stored)
	// A retry with the caller's key: Bead answered with the first payment, and so do we, unless the retry
	// asked for something else under the same key. The claim refuses that before Bead is asked; this
	// catches it once the claim has expired, for as long as the record is kept.
	if !added && (!decimalEqual(stored.Amount, req.RequestedAmount) || stored.Reference != req.Reference || stored.Description != req.Description) {
		return nil, keyUsedProblem(stored)
	}
	if claim != nil && claim.trackingID == "" {
		s.settleKey(c, claim, stored.TrackingID)
	}
	if added {
		s.log.Info("payment created", "requestId", requestIDOf(c), "terminalId", p.TerminalID, "trackingId", p.TrackingID, "amount", p.Amount)
	}
	return stored, nil
}

// paymentCurrency is the currency of every payment: Bead takes none in the create (the terminal's
// settlement currency is implied, USD; see bead-api.md).
const paymentCurrency = "USD"

// keyUsedError is a create whose idempotency key was first sent with other details; first is the payment
// it made, for the form to name, or nil when that is not known (the first answer was lost, or is still
// on its way).
type keyUsedError struct{ first *session.Payment }

func (e *keyUsedError) Error() string {
	if e.first == nil {
		return "bff: idempotency key already sent with other details"
	}
	return "bff: idempotency key already used by payment " + e.first.TrackingID
}

// keyUsedProblem is the 409 of an idempotency key sent again with other details; first is what the key
// made, if known.
func keyUsedProblem(first *session.Payment) *Problem {
	return &Problem{Status: http.StatusConflict, Cause: CauseInvalidRequest, Title: "Idempotency-Key already used",
		Detail: "This Idempotency-Key was used for a different payment (another amount, reference, description, redirect URL or customer). Use a new key for a new payment.",
		Err:    &keyUsedError{first: first}}
}

func decimalEqual(stored string, d decimal.Decimal) bool {
	got, err := decimal.NewFromString(stored)
	return err == nil && got.Equal(d)
}

// idempotencyKey is the key sent to Bead: a fresh one per create, or, when the caller sent its own
// Idempotency-Key, one derived from it and the terminal, so a front-end's retry cannot create twice.
func idempotencyKey(terminalID, callerKey string) string {
	if callerKey == "" {
		return uuid.NewString()
	}
	sum := sha256.Sum256([]byte(terminalID + "\x00" + callerKey))
	u, _ := uuid.FromBytes(sum[:16])
	return u.String()
}

// maxIdempotencyKeyLen is the longest Idempotency-Key an API caller may send: the bound the Bead client
// keeps for the key it sends and Bead's sandbox enforces, so any key that would do for Bead does here.
const maxIdempotencyKeyLen = 255

// validIdempotencyKey: 1 to maxIdempotencyKeyLen printable ASCII characters. A key outside that is
// refused, never replaced: the caller would believe its retries protected while each made a payment.
func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > maxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return false
		}
	}
	return true
}

// Binding a caller's idempotency key to its request. Bead answers a key it has seen with the payment it
// made first, whatever the body; after a lost answer nothing is recorded here, so a key sent again with
// other details (another body under the same Idempotency-Key, a form page from before the lost answer)
// would get that payment recorded with the new details, while the shopper is asked for the old amount.
// So the key is claimed for the request's fingerprint before Bead is asked, and another fingerprint is
// refused (409) without asking. The claim is released when Bead's refusal proves that no payment was
// made (so the key may be sent again with corrected details), and only by the attempt that claimed it:
// a retry under a claim that an earlier attempt with an unknown outcome made must not free it. Nor may
// the claimer free it once another attempt has joined it (the same request sent again while the first was
// in flight): Bead may have made the payment for that one while refusing the claimer. The store holds
// the last joiner's mark, and the release deletes only the claimer's own. So a key whose concurrent
// attempts were all refused stays bound to their details for the claim's time: other details under it
// get the 409 that says to use a new key. That costs a new key; the other way could cost a payment
// recorded with the wrong details.

// idempotencyClaimTTL is how long a key stays bound. bead-api.md documents no window for Bead's memory
// of a key (the sandbox keeps every key for its lifetime); a day outlasts any retry of a lost answer,
// and after it a key reused for a recorded payment is still caught by createPayment's comparison with
// the record (kept for PaymentTTL).
const idempotencyClaimTTL = 24 * time.Hour

// keyClaim is a caller's key bound to one request's details.
type keyClaim struct {
	terminalID, key, fingerprint string
	first                        bool   // this request bound the key
	attempt                      string // this request's mark in the claim, which its release names
	trackingID                   string // the payment the key made, if known
}

// requestFingerprint is what a key is bound to: a SHA-256 over everything the create asks Bead for, in
// one canonical form (the amount with two decimals, so 12.5 and 12.50 are one request). Only the hash
// is stored: references and descriptions are the merchant's business.
func requestFingerprint(req bead.CreatePaymentRequest) string {
	canonical, _ := json.Marshal(struct {
		Amount, Currency, Reference, Description, RedirectURL string
		Customer                                              *bead.Customer
		WebhookURLs                                           []string
	}{req.RequestedAmount.StringFixed(2), paymentCurrency, req.Reference, req.Description, req.RedirectURL, req.Customer, req.WebhookURLs})
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// claimKey binds key to req's details, or refuses the create: 409 when the key was first sent with other
// details, 503 when the store cannot say (nothing has been sent to Bead either way).
func (s *Server) claimKey(c *fiber.Ctx, terminalID, key string, req bead.CreatePaymentRequest) (*keyClaim, error) {
	fp := requestFingerprint(req)
	stored, first, err := s.store.ClaimIdempotencyKey(c.UserContext(), terminalID, key, fp, idempotencyClaimTTL)
	if err != nil {
		return nil, storeUnavailable(err)
	}
	if stored.Fingerprint != fp {
		var made *session.Payment
		if stored.TrackingID != "" {
			made, _ = s.store.GetPayment(c.UserContext(), terminalID, stored.TrackingID) // nil if gone: still refused
		}
		s.log.Info("idempotency key sent again with other details; refused before Bead", "requestId", requestIDOf(c),
			"terminalId", terminalID, "trackingId", stored.TrackingID)
		return nil, keyUsedProblem(made)
	}
	return &keyClaim{terminalID: terminalID, key: key, fingerprint: fp, first: first, attempt: stored.Attempt, trackingID: stored.TrackingID}, nil
}

// errKeyUsedByAnotherAttempt marks a refusal of an attempt that joined an earlier attempt's claim: this
// attempt made nothing, but the earlier one may have.
var errKeyUsedByAnotherAttempt = errors.New("an earlier attempt under this idempotency key may have made the payment")

// releaseKey frees a claim whose create Bead surely refused, unless another attempt has joined it since.
// If the claim stays (joined, or the release failed), the key stays bound to these details until the claim
// expires: a caller that corrects them must use a new key, and nothing is made twice.
func (s *Server) releaseKey(c *fiber.Ctx, claim *keyClaim) {
	if err := s.store.ReleaseIdempotencyKey(c.UserContext(), claim.terminalID, claim.key, claim.fingerprint, claim.attempt); err != nil {
		s.log.Warn("idempotency key not released", "requestId", requestIDOf(c), "err", err)
	}
}

// settleKey records the payment a claimed key made. If that fails, the key stays bound to its details all
// the same; a later conflict only cannot name the payment.
func (s *Server) settleKey(c *fiber.Ctx, claim *keyClaim, trackingID string) {
	if err := s.store.SettleIdempotencyKey(c.UserContext(), claim.terminalID, claim.key, claim.fingerprint, trackingID, idempotencyClaimTTL); err != nil {
		s.log.Warn("idempotency key not settled", "requestId", requestIDOf(c), "trackingId", trackingID, "err", err)
	}
}

// unrecordedPaymentError is a payment Bead made (its answer read) that the session store could not
// record.
type unrecordedPaymentError struct {
	trackingID string
	err        error
}

func (e *unrecordedPaymentError) Error() string {
	return "bff: payment " + e.trackingID + " created at Bead but not recorded: " + e.err.Error()
}

func (e *unrecordedPaymentError) Unwrap() error { return e.err }

// unrecordedPayment is the answer to a create whose payment Bead made while the session store could not
// record it. It must not read like a claim the store could not take (the same cause and status, but
// nothing sent): a caller told "try again" without "the payment exists" may change the details or the key
// and make a second payment. The key's claim stays, so the same request sent again gets this payment from
// Bead and records it. The cause is still the store's: that is what failed.
func unrecordedPayment(trackingID string, err error) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Cause: CauseSessionStoreUnavailable,
		Title: "Payment made but not recorded", RetryAfter: time.Second,
		Detail: "Bead made the payment (trackingId " + trackingID + "), but this server could not record it: its session store did not answer. " +
			"Send the same request again with the same Idempotency-Key in a moment: you get that payment, never a second. " +
			"Do not change the details or the key.",
		Err: &unrecordedPaymentError{trackingID: trackingID, err: err}}
}

// unreadableCreateAnswer is a create that Bead answered with success in a form this client cannot read,
// or cannot record (see createPayment): the payment may well exist. Its outcome is unknown (no refusal of Bead's behind it, so the form keeps its
// key and "sent", and the claim stays), and the caller is told to send the same request again. 502: the
// answer came and cannot be used. The cause is unknown, as the diagnosis and the webhook registration
// name an unreadable answer; bead_unavailable would say Bead was unreachable or failing, which it was not.
func unreadableCreateAnswer(err error) *Problem {
	return &Problem{Status: http.StatusBadGateway, Cause: CauseUnknown, Title: "Bead's answer could not be read",
		Detail: "Bead answered the create with success, but in a form this server cannot read, so the payment may have been made. " +
			"Sending the same request again with the same Idempotency-Key is safe: if Bead made the payment you get that one, never a second.",
		Err: err}
}

// paymentStatus reads a payment's status from Bead (unless it is already final here) and records it.
// stored may be nil for a payment this server did not create. The record comes from this process's copy
// when it has one (paymentCache), so a status read in steady state reads only the session from the store;
// a read that changes the record starts again from the store's, which another server may have moved on.
func (s *Server) paymentStatus(c *fiber.Ctx, sess *session.Session, trackingID string) (*session.Payment, error) {
	if !bead.ValidID(trackingID) {
		return nil, invalidRequest("That is not a tracking id.")
	}
	trackingID = utils.CopyString(trackingID)
	ctx := c.UserContext()
	stored, copied, err := s.paymentRecord(ctx, sess.TerminalID, trackingID)
	switch {
	case err == nil:
		if bead.Status(stored.StatusCode).Final() {
			return stored, nil
		}
	case errors.Is(err, session.ErrNotFound):
		stored = nil
	default:
		return nil, storeUnavailable(err)
	}
	var st *bead.PaymentStatus
	err = s.withBead(c, sess, "tracking", func(ctx context.Context, token string) error {
		var err error
		st, err = s.bead.Tracking(ctx, token, trackingID)
		return err
	})
	if err != nil {
		// A copy may be older than a final status another server recorded; that one answers even while
		// Bead cannot (as it did before there were copies).
		if copied {
			if fresh, ferr := s.storedPayment(ctx, sess.TerminalID, trackingID); ferr == nil && bead.Status(fresh.StatusCode).Final() {
				return fresh, nil
			}
		}
		return nil, err
	}
	p := mergeStatus(stored, st, s.now())
	if stored == nil || !statusMoved(stored, p) {
		return p, nil
	}
	fresh, err := s.storedPayment(ctx, sess.TerminalID, trackingID)
	if err != nil {
		s.payments.drop(sess.TerminalID, trackingID)
		s.log.Warn("payment status not recorded", "requestId", requestIDOf(c), "trackingId", trackingID, "err", err)
		return p, nil
	}
	if bead.Status(fresh.StatusCode).Final() {
		// Another server recorded a final status since this copy was taken. A final status never goes
		// back, whatever a lagging read of Bead says (as before the copy, when the store's final record
		// answered without asking Bead).
		return fresh, nil
	}
	if p = mergeStatus(fresh, st, s.now()); statusMoved(fresh, p) {
		if err := s.recordPayment(ctx, p); err != nil {
			s.log.Warn("payment status not recorded", "requestId", requestIDOf(c), "trackingId", p.TrackingID, "err", err)
		}
	}
	return p, nil
}

// statusMoved says whether Bead's answer, merged into next, changes what the record shows.
func statusMoved(prev, next *session.Payment) bool {
	return prev.StatusCode != next.StatusCode || prev.Amount != next.Amount || prev.PaidAmount != next.PaidAmount
}

// mergeStatus lays Bead's answer over what this server recorded at creation.
func mergeStatus(stored *session.Payment, st *bead.PaymentStatus, now time.Time) *session.Payment {
	var p session.Payment
	if stored != nil {
		p = *stored
	} else {
		p = session.Payment{TrackingID: st.TrackingID, TerminalID: st.TerminalID, MerchantID: st.MerchantID,
			Reference: st.Reference, Description: st.Description}
	}
	if st.Status != "" && st.Status != bead.Status(p.StatusCode) {
		p.StatusCode = string(st.Status)
		p.UpdatedAt = now
	}
	if st.PaymentID != "" {
		p.PaymentID = st.PaymentID
	}
	if st.Requested != nil {
		p.Amount = bead.FormatAmount(st.Requested.Amount)
		if st.Requested.Currency != "" {
			p.Currency = st.Requested.Currency
		}
	}
	if st.Paid != nil && st.Paid.Amount.IsPositive() {
		p.PaidAmount, p.PaidCurrency = bead.FormatAmount(st.Paid.Amount), st.Paid.Currency
	}
	return &p
}

// paymentJSON is a payment as the API shows it.
type paymentJSON struct {
	TrackingID      string    `json:"trackingId"`
	PaymentID       string    `json:"paymentId,omitempty"`
	PaymentURL      string    `json:"paymentUrl,omitempty"`
	CheckoutURL     string    `json:"checkoutUrl,omitempty"`
	StatusCode      string    `json:"statusCode"`
	StatusLabel     string    `json:"statusLabel"`
	Final           bool      `json:"final"`
	Paid            bool      `json:"paid"`
	RequestedAmount string    `json:"requestedAmount"`
	Currency        string    `json:"currency,omitempty"`
	PaidAmount      string    `json:"paidAmount,omitempty"`
	PaidCurrency    string    `json:"paidCurrency,omitempty"`
	Reference       string    `json:"reference"`
	Description     string    `json:"description,omitempty"`
	TerminalID      string    `json:"terminalId"`
	MerchantID      string    `json:"merchantId"`
	CreatedAt       time.Time `json:"createdAt,omitzero"`
	UpdatedAt       time.Time `json:"updatedAt,omitzero"`
}

func (s *Server) paymentJSON(p *session.Payment) paymentJSON {
	st := bead.Status(p.StatusCode)
	j := paymentJSON{
		TrackingID: p.TrackingID, PaymentID: p.PaymentID, PaymentURL: p.PaymentURL,
		StatusCode: p.StatusCode, StatusLabel: st.Label(), Final: st.Final(), Paid: st.Paid(),
		RequestedAmount: p.Amount, Currency: p.Currency, PaidAmount: p.PaidAmount, PaidCurrency: p.PaidCurrency,
		Reference: p.Reference, Description: p.Description,
		TerminalID: p.TerminalID, MerchantID: p.MerchantID, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	if p.CheckoutID != "" {
		j.CheckoutURL = s.cfg.Origin() + "/embed/checkout/" + p.CheckoutID
	}
	return j
}

// API handlers.

func (s *Server) apiCreatePayment(c *fiber.Ctx) error {
	// c.Get cannot tell a header that is there but empty (or only spaces, which header parsing trims away)
	// from no header, and such a key, ignored, would leave a caller whose key generator returned "" believing
	// its retries protected while each made a payment. PeekAll has an entry per header sent, empty or not.
	sent := len(c.Request().Header.PeekAll("Idempotency-Key")) > 0
	key := c.Get("Idempotency-Key")
	if sent && !validIdempotencyKey(key) {
		return &Problem{Status: http.StatusBadRequest, Cause: CauseInvalidRequest, Title: "Invalid Idempotency-Key",
			Detail: "An Idempotency-Key must be 1 to " + strconv.Itoa(maxIdempotencyKeyLen) + " printable ASCII characters. Nothing was sent to Bead."}
	}
	var in paymentInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.createPayment(c, sessionOf(c), in, key)
	if err != nil {
		return err
	}
	c.Location("/api/v1/payments/" + p.TrackingID)
	return c.Status(http.StatusCreated).JSON(s.paymentJSON(p))
}

func (s *Server) apiGetPayment(c *fiber.Ctx) error {
	p, err := s.paymentStatus(c, sessionOf(c), c.Params("trackingId"))
	if err != nil {
		return err
	}
	return c.JSON(s.paymentJSON(p))
}

const listLimit = 50

func (s *Server) apiListPayments(c *fiber.Ctx) error {
	ps, err := s.store.ListPayments(c.UserContext(), sessionOf(c).TerminalID, listLimit)
	if err != nil {
		return storeUnavailable(err)
	}
	out := struct {
		Payments []paymentJSON `json:"payments"`
	}{Payments: make([]paymentJSON, 0, len(ps))}
	for i := range ps {
		out.Payments = append(out.Payments, s.paymentJSON(&ps[i]))
	}
	return c.JSON(out)
}

// Pages.

func (s *Server) paymentRow(p *session.Payment) views.PaymentRow {
	st := bead.Status(p.StatusCode)
	return views.PaymentRow{
		TrackingID: p.TrackingID, Amount: p.Amount, Currency: p.Currency, Reference: p.Reference,
		Description: p.Description, Status: p.StatusCode, StatusLabel: st.Label(), Final: st.Final(), Paid: st.Paid(),
		CreatedAt: p.CreatedAt.UTC().Format("2006-01-02 15:04 MST"), URL: "/payments/" + url.PathEscape(p.TrackingID),
	}
}

func (s *Server) dashboardPage(c *fiber.Ctx) error {
	ps, err := s.store.ListPayments(c.UserContext(), sessionOf(c).TerminalID, listLimit)
	if err != nil {
		return storeUnavailable(err)
	}
	v := views.DashboardView{Page: s.page(c, "Payments")}
	for i := range ps {
		v.Payments = append(v.Payments, s.paymentRow(&ps[i]))
	}
	c.Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.Dashboard(v))
}

// paymentsAddress is GET /payments. A refused form is answered at /payments (where it posts), so a
// browser can land there by a reload or its history: the address shows the payments, not a 404.
func (s *Server) paymentsAddress(c *fiber.Ctx) error {
	return c.Redirect("/", http.StatusFound)
}

func (s *Server) newPaymentPage(c *fiber.Ctx) error {
	c.Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.NewPayment(views.NewPaymentView{Page: s.page(c, "New payment"), FormKey: randomToken()}))
}

// The new-payment form's idempotency key. Every rendered form carries a random key of its own (formKey),
// which createPaymentSubmit passes to Bead the way the API passes an Idempotency-Key header (derived with
// the terminal), so the same form sent twice (a double click, a browser's resend, a retry after a
// timeout) makes one payment, and the second submit lands on the first one's page.
//
// When the form comes back after an error:
//   - the failure proves no payment was made (refused here before Bead was asked, or Bead or a proxy in
//     front of it answered the last attempt with a 4xx): a new key, so that the staff member may correct
//     the form and send it as a new payment;
//   - the outcome is unknown (a timeout, a connection lost, a 5xx, an answer it cannot read or record), or
//     Bead made the payment and the store could not record it: the same key, and "sent" holds the details
//     sent with it. Sending it again unchanged returns the payment if Bead made
//     it and makes it if not; sending it with other details is refused here, before Bead is asked (Bead
//     would answer with the first payment under the old key and this server would record it with the
//     new details), and the form shows the details sent, which are the only ones this key may carry.
//     Once an attempt's outcome was unknown, the key stays for that form whatever later attempts say.
//   - the key was already sent with other details, and the page had no "sent" to catch it (a form sent
//     again after an edit, or an earlier copy of the page, after Back or a restored session, which has
//     the key but not "sent"): the key's claim refuses it before Bead is asked (claimKey), and the form
//     names the payment the key made, when that is known, and gets a new key.
//
// A formKey that is not one of ours (not randomToken's 43 characters) is refused with a form error and a
// new key, rather than replaced silently: the form's protection would be off without anyone knowing, and
// a refusal costs one click, with nothing sent to Bead. A missing key (a form rendered before this change,
// a client that never had one) gets a fresh key, as before. "sent" is no security measure (the form is
// CSRF-protected; a staff member who edits it only confuses their own records).
type paymentForm struct {
	amount, reference, description string
	key                            string // "" when the form carried none
	sent                           string // the details sent with key, url-encoded; "" when none are known
}

func readPaymentForm(c *fiber.Ctx) paymentForm {
	return paymentForm{
		amount:      utils.CopyString(c.FormValue("amount")),
		reference:   utils.CopyString(c.FormValue("reference")),
		description: utils.CopyString(c.FormValue("description")),
		key:         utils.CopyString(c.FormValue("formKey")),
		sent:        utils.CopyString(c.FormValue("sent")),
	}
}

// details is what a form asks Bead for, in the form of "sent". It is compared after a round trip through
// the page, so it holds what survives one: the values trimmed (as createPayment trims them), without the
// line breaks a text input drops and with a textarea's CRLF as LF (browsers send CRLF, and the HTML
// parser drops a textarea's leading newline).
func (f paymentForm) details() string {
	line := strings.NewReplacer("\r", "", "\n", "")
	return url.Values{
		"amount":      {strings.TrimSpace(line.Replace(f.amount))},
		"reference":   {strings.TrimSpace(line.Replace(f.reference))},
		"description": {strings.TrimSpace(strings.ReplaceAll(f.description, "\r\n", "\n"))},
	}.Encode()
}

// wellFormed reports whether the key and "sent" are as this server renders them.
func (f paymentForm) wellFormed() bool {
	if f.key != "" && !validFormKey(f.key) {
		return false
	}
	if f.sent != "" {
		if f.key == "" || len(f.sent) > 16<<10 {
			return false
		}
		if _, err := url.ParseQuery(f.sent); err != nil {
			return false
		}
	}
	return true
}

func validFormKey(key string) bool { return validCheckoutID(key) } // both are randomToken's

// paymentSurelyNotMade reports whether a create's failure proves that Bead made no payment: this server
// refused it before asking Bead (no Bead error behind it), or the last attempt got a 4xx from Bead or
// from a proxy in front of it. A 409 proves nothing (Bead may be telling of the key's first payment);
// timeouts, lost connections, 5xx and answers this server could not read leave the outcome unknown.
func paymentSurelyNotMade(pr *Problem) bool {
	var ae *bead.APIError
	var te *bead.TransportError
	switch {
	case errors.As(pr.Err, &ae):
		return ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusConflict
	case errors.As(pr.Err, &te):
		return false
	case pr.Err == nil:
		return pr.Status >= 400 && pr.Status < 500
	}
	return false
}

// createPaymentSubmit creates the payment of the new-payment form. Whenever the payment was not made and
// the session still stands, the form comes back with what the staff member typed: under each field its
// error, or, when Bead (or something in front of it) refused the create, a banner naming the cause in plain
// words with a link to the incident page and its diagnosis, answered with the problem's status. So does a
// payment Bead made that the store could not record, with its key and "sent" kept: sent again, the form
// gets that payment and records it. A session that ended, a session store that is down before Bead was
// asked (nothing sent) and a bug here keep the error page.
func (s *Server) createPaymentSubmit(c *fiber.Ctx) error {
	form := readPaymentForm(c)
	v := views.NewPaymentView{Page: s.page(c, "New payment"), Amount: form.amount, Reference: form.reference,
		Description: form.description, Errors: map[string]string{}}
	c.Set("Cache-Control", "no-store")
	if !form.wellFormed() {
		v.FormKey = randomToken()
		v.Errors[""] = "This form is damaged or was changed outside this page, so nothing was sent to Bead. Check the details and create the payment again."
		return render(c, http.StatusBadRequest, views.NewPayment(v))
	}
	if form.key == "" {
		form.key = randomToken() // a form rendered before forms had keys: this one protects its retries from now on
	}
	if form.sent != "" && form.sent != form.details() {
		sent, _ := url.ParseQuery(form.sent)
		v.Amount, v.Reference, v.Description = sent.Get("amount"), sent.Get("reference"), sent.Get("description")
		v.FormKey, v.Sent = form.key, form.sent
		v.Errors[""] = "This form was already sent with the details shown below, and this server cannot tell whether Bead created that payment, " +
			"so the form cannot be sent with other details. Nothing was sent this time. Send it again as it is now to find out: if the payment " +
			"was made you get it, never a second one. For a payment with other details, start a new payment."
		return render(c, http.StatusConflict, views.NewPayment(v))
	}
	in := paymentInput{
		RequestedAmount: json.RawMessage(strings.TrimSpace(mustJSON(form.amount))),
		Reference:       form.reference,
		Description:     form.description,
	}
	p, err := s.createPayment(c, sessionOf(c), in, form.key)
	if err == nil {
		return c.Redirect("/payments/"+url.PathEscape(p.TrackingID), http.StatusSeeOther)
	}
	pr, ok := asProblem(err)
	var unrecorded *unrecordedPaymentError
	made := ok && errors.As(pr.Err, &unrecorded)
	if !ok || pr.Status == http.StatusUnauthorized || sessionOf(c) == nil ||
		(pr.Cause == CauseSessionStoreUnavailable && pr.Incident == nil && !made) {
		return err
	}
	if made || form.sent != "" || !paymentSurelyNotMade(pr) || errors.Is(pr.Err, errKeyUsedByAnotherAttempt) {
		v.FormKey, v.Sent = form.key, form.details()
	} else {
		v.FormKey = randomToken()
	}
	var used *keyUsedError
	if errors.As(pr.Err, &used) {
		v.FormKey, v.Sent = randomToken(), ""
		if used.first != nil {
			v.Errors[""] = "This form already created a payment of " + used.first.Amount + " " + used.first.Currency +
				" (reference " + used.first.Reference + "), listed under Payments; nothing new was created. " +
				"To create another payment with the details below, send the form again."
		} else {
			v.Errors[""] = "This form was already sent with other details (perhaps from an earlier copy of this page, before going Back), " +
				"and this server cannot tell whether Bead created that payment, so it was not sent with these: Bead would answer with " +
				"that payment. Nothing was sent this time. To create a payment with the details below, send the form again."
		}
		return render(c, http.StatusConflict, views.NewPayment(v))
	}
	if pr.Cause == CauseInvalidRequest && pr.Incident == nil {
		// Ours or Bead's: per field where the form has the field, else above the form.
		var other []string
		for field, msg := range pr.Fields {
			switch field {
			case "requestedAmount", "amount":
				v.Errors["amount"] = msg
			case "reference", "description":
				v.Errors[field] = msg
			default:
				other = append(other, msg)
			}
		}
		if len(pr.Fields) == 0 {
			other = append(other, pr.Title+". "+pr.Detail)
		}
		slices.Sort(other)
		v.Errors[""] = strings.Join(other, " ")
		return render(c, http.StatusBadRequest, views.NewPayment(v))
	}
	v.Failure = s.createFailure(c, pr, v.Sent != "")
	attrs := []any{"requestId", requestIDOf(c), "cause", pr.Cause, "status", pr.Status, "incidentId", pr.IncidentID}
	if pr.Err != nil {
		attrs = append(attrs, "err", pr.Err.Error()) // as errorHandler logs it for the API
	}
	msg := "payment not created; form shown again"
	if made {
		msg = "payment created at Bead but not recorded; form shown again with its key"
	}
	s.log.Log(c.UserContext(), slogLevelFor(pr.Status), msg, attrs...)
	setRetryAfter(c, pr.RetryAfter)
	return render(c, pr.Status, views.NewPayment(v))
}

// createFailure is the banner of a create Bead refused (or could not be asked): plain words first, the
// cause code and the request id for whoever helps, and the incident page for the whole diagnosis.
// unknown says that the payment may exist (this or an earlier attempt of the form had no clear answer):
// the form then keeps its key, so sending it again is safe, and the banner says so.
func (s *Server) createFailure(c *fiber.Ctx, pr *Problem, unknown bool) *views.CreateFailure {
	info, _ := diagnose.LookupCause(pr.Cause)
	f := &views.CreateFailure{
		Heading:    "The payment was not created.",
		CauseTitle: firstNonEmpty(pr.Title, info.Title),
		Summary:    firstNonEmpty(pr.Detail, info.Meaning),
		Cause:      pr.Cause,
		RequestID:  requestIDOf(c),
		HelpURL:    "/help/403#" + pr.Cause,
	}
	if pr.IncidentID != "" {
		f.IncidentURL = "/help/incidents/" + pr.IncidentID
	}
	var te *bead.TransportError
	var unrecorded *unrecordedPaymentError
	switch {
	case errors.As(pr.Err, &unrecorded):
		f.Heading = "Bead created the payment, but this server could not record it."
		f.Summary = "The payment exists at Bead (tracking id " + unrecorded.trackingID + "), but this server's session store did not answer when it tried to record it, so it is not listed yet."
		f.Advice = "Wait " + waitText(pr.RetryAfter) + ", then send this form again as it is: you get that payment, never a second. Do not start a new payment for it."
	case errors.As(pr.Err, &te) && te.Timeout:
		// The call may have reached Bead; the form keeps its key, so sending it again cannot make a second.
		f.Heading = "Bead did not answer in time, so this server cannot tell whether the payment was created."
		f.Advice = "Send this form again as it is: if Bead did create the payment you get that one, never a second."
	case unknown:
		f.Heading = "This server cannot tell whether Bead created the payment."
		f.Advice = "Send this form again as it is: if Bead did create the payment you get that one, never a second."
		if pr.RetryAfter > 0 {
			f.Advice = "Wait " + waitText(pr.RetryAfter) + ", then send this form again as it is: if Bead did create the payment you get that one, never a second."
		}
	case pr.RetryAfter > 0:
		f.Advice = "Wait " + waitText(pr.RetryAfter) + ", then create it again."
	case info.AutoRecoverable:
		f.Advice = "Try again in a moment."
	default:
		f.Advice = "Trying again will most likely fail the same way until the cause is fixed."
	}
	return f
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Server) paymentPage(c *fiber.Ctx) error {
	sess := sessionOf(c)
	p, err := s.paymentStatus(c, sess, c.Params("trackingId"))
	if err != nil {
		return err
	}
	row := s.paymentRow(p)
	v := views.PaymentView{
		Page:       s.page(c, "Payment "+p.Reference),
		Payment:    row,
		PaymentURL: p.PaymentURL,
		StatusURL:  "/api/v1/payments/" + url.PathEscape(p.TrackingID),
	}
	if p.PaymentURL != "" {
		v.QRCodeURL = row.URL + "/qr.png"
	}
	if p.CheckoutID != "" {
		v.CheckoutURL = s.paymentJSON(p).CheckoutURL
	}
	c.Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.Payment(v))
}

// paymentQR draws the hosted payment page's URL as a QR code. It takes the URL from the stored payment,
// never from the request, so it cannot be used to draw anyone's link.
func (s *Server) paymentQR(c *fiber.Ctx) error {
	id := c.Params("trackingId")
	if !bead.ValidID(id) {
		return invalidRequest("That is not a tracking id.")
	}
	p, err := s.store.GetPayment(c.UserContext(), sessionOf(c).TerminalID, id)
	if errors.Is(err, session.ErrNotFound) || (err == nil && p.PaymentURL == "") {
		return notFound("The payment")
	} else if err != nil {
		return storeUnavailable(err)
	}
	return sendQRCode(c, p.PaymentURL)
}

// sendQRCode answers with a PNG QR code of url (the staff page's and the checkout's). The URL drawn for
// a payment never changes, so the image may be cached privately for an hour.
func sendQRCode(c *fiber.Ctx, url string) error {
	png, err := qrcode.Encode(url, qrcode.Medium, 320)
	if err != nil {
		return err
	}
	c.Set("Cache-Control", "private, max-age=3600")
	c.Set(fiber.HeaderContentType, "image/png")
	return c.Send(png)
}
