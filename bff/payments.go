package bff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
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
// Idempotency-Key for both tries) and records it for the dashboard and the checkout page.
func (s *Server) createPayment(c *fiber.Ctx, sess *session.Session, in paymentInput) (*session.Payment, error) {
	req, err := validatePayment(in, sess)
	if p, ok := asProblem(err); ok && p.Cause == CauseTerminalMismatch {
		return nil, s.localIncident(c, sess, diagnose.OpCreatePayment, diagnose.LocalTerminalMismatch, p.Detail,
			diagnose.Resource{TerminalID: in.TerminalID, MerchantID: in.MerchantID})
	}
	if err != nil {
		return nil, err
	}
	key := idempotencyKey(sess.TerminalID, c.Get("Idempotency-Key"))
	var created *bead.CreatedPayment
	err = s.withBead(c, sess, "create payment", func(ctx context.Context, token string) error {
		var err error
		created, err = s.bead.CreatePayment(ctx, token, req, key)
		return err
	})
	if err != nil {
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
		Currency:    "USD",
		Reference:   req.Reference,
		Description: req.Description,
		StatusCode:  string(bead.StatusCreated),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	stored, added, err := s.store.AddPayment(c.UserContext(), p)
	if err != nil {
		// The payment exists at Bead; say so rather than pretend it failed.
		s.log.Error("payment created at Bead but not recorded", "requestId", requestIDOf(c), "trackingId", p.TrackingID, "err", err)
		return nil, storeUnavailable(err)
	}
	s.payments.put(stored)
	if !added {
		// A retry with the caller's Idempotency-Key: Bead answered with the first payment, and so do we,
		// unless the retry asked for something else under the same key.
		if !decimalEqual(stored.Amount, req.RequestedAmount) || stored.Reference != req.Reference || stored.Description != req.Description {
			return nil, &Problem{Status: http.StatusConflict, Cause: CauseInvalidRequest, Title: "Idempotency-Key already used",
				Detail: "This Idempotency-Key was used for a different payment (another amount, reference or description). Use a new key for a new payment."}
		}
		return stored, nil
	}
	s.log.Info("payment created", "requestId", requestIDOf(c), "terminalId", p.TerminalID, "trackingId", p.TrackingID, "amount", p.Amount)
	return stored, nil
}

func decimalEqual(stored string, d decimal.Decimal) bool {
	got, err := decimal.NewFromString(stored)
	return err == nil && got.Equal(d)
}

// idempotencyKey is the key sent to Bead: a fresh one per create, or, when the caller sent its own
// Idempotency-Key, one derived from it and the terminal, so a front-end's retry cannot create twice.
func idempotencyKey(terminalID, callerKey string) string {
	if callerKey == "" || len(callerKey) > 200 || !printable(callerKey) {
		return uuid.NewString()
	}
	sum := sha256.Sum256([]byte(terminalID + "\x00" + callerKey))
	u, _ := uuid.FromBytes(sum[:16])
	return u.String()
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
	stored, err := s.paymentRecord(ctx, sess.TerminalID, trackingID)
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
	var in paymentInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.createPayment(c, sessionOf(c), in)
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

func (s *Server) newPaymentPage(c *fiber.Ctx) error {
	c.Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.NewPayment(views.NewPaymentView{Page: s.page(c, "New payment")}))
}

// createPaymentSubmit creates the payment of the new-payment form. Whenever the payment was not made and
// the session still stands, the form comes back with what the staff member typed: under each field its
// error, or, when Bead (or something in front of it) refused the create, a banner naming the cause in plain
// words with a link to the incident page and its diagnosis, answered with the problem's status. A session
// that ended, a session store that is down (the payment may exist at Bead unrecorded) and a bug here keep
// the error page.
func (s *Server) createPaymentSubmit(c *fiber.Ctx) error {
	amount := utils.CopyString(c.FormValue("amount"))
	in := paymentInput{
		RequestedAmount: json.RawMessage(strings.TrimSpace(mustJSON(amount))),
		Reference:       utils.CopyString(c.FormValue("reference")),
		Description:     utils.CopyString(c.FormValue("description")),
	}
	p, err := s.createPayment(c, sessionOf(c), in)
	if err == nil {
		return c.Redirect("/payments/"+url.PathEscape(p.TrackingID), http.StatusSeeOther)
	}
	pr, ok := asProblem(err)
	if !ok || pr.Status == http.StatusUnauthorized || sessionOf(c) == nil ||
		(pr.Cause == CauseSessionStoreUnavailable && pr.Incident == nil) {
		return err
	}
	c.Set("Cache-Control", "no-store")
	v := views.NewPaymentView{Page: s.page(c, "New payment"), Amount: amount, Reference: in.Reference,
		Description: in.Description, Errors: map[string]string{}}
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
	v.Failure = s.createFailure(c, pr)
	s.log.Log(c.UserContext(), slogLevelFor(pr.Status), "payment not created; form shown again",
		"requestId", requestIDOf(c), "cause", pr.Cause, "status", pr.Status, "incidentId", pr.IncidentID)
	setRetryAfter(c, pr.RetryAfter)
	return render(c, pr.Status, views.NewPayment(v))
}

// createFailure is the banner of a create Bead refused (or could not be asked): plain words first, the
// cause code and the request id for whoever helps, and the incident page for the whole diagnosis.
func (s *Server) createFailure(c *fiber.Ctx, pr *Problem) *views.CreateFailure {
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
	switch {
	case errors.As(pr.Err, &te) && te.Timeout:
		// The call may have reached Bead: a second try could make a second payment.
		f.Heading = "Bead did not answer in time, so this server cannot tell whether the payment was created."
		f.Advice = "Bead may have created it even so: creating it again could make a second payment for the same order."
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
