package bead

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

const createdAnswer = `{"trackingId":"c10b29e3c8104e0f8dc139c20d9eeb6c","paymentId":"p-1","paymentPageId":"6539fa89f0363f1722b377ef",` +
	`"paymentUrls":["https://pay.test.devs.beadpay.io/6539fa89f0363f1722b377ef"]}`

func sampleCreate(t *testing.T) CreatePaymentRequest {
	t.Helper()
	return CreatePaymentRequest{
		TerminalID:      "0123456789abcdef01234567",
		MerchantID:      "76543210fedcba9876543210",
		RequestedAmount: mustDecimal(t, "12.50"),
		Reference:       "order-1001",
		Description:     "Two coffees",
	}
}

func TestCreatePaymentSendsExactRequest(t *testing.T) {
	tests := []struct {
		name     string
		adjust   func(*CreatePaymentRequest)
		wantBody map[string]any
	}{
		{
			name: "optional fields left out",
			wantBody: map[string]any{
				"terminalId": "0123456789abcdef01234567", "merchantId": "76543210fedcba9876543210",
				"requestedAmount": json.Number("12.50"), "paymentUrlType": "web",
				"reference": "order-1001", "description": "Two coffees",
			},
		},
		{
			name: "optional fields present",
			adjust: func(r *CreatePaymentRequest) {
				r.RequestedAmount = mustDecimal(t, "12345678.99")
				r.RedirectURL = "https://shop.example/thanks"
				r.Customer = &Customer{Email: "a@example.com", FirstName: "Ada"}
				r.WebhookURLs = []string{"https://shop.example/hook"}
			},
			wantBody: map[string]any{
				"terminalId": "0123456789abcdef01234567", "merchantId": "76543210fedcba9876543210",
				"requestedAmount": json.Number("12345678.99"), "paymentUrlType": "web",
				"reference": "order-1001", "description": "Two coffees",
				"redirectUrl": "https://shop.example/thanks",
				"customer":    map[string]any{"email": "a@example.com", "firstName": "Ada"},
				"webhookUrls": []any{"https://shop.example/hook"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusCreated, createdAnswer))
			c := newTestClient(t, fake)
			req := sampleCreate(t)
			if tt.adjust != nil {
				tt.adjust(&req)
			}
			token := sampleToken(t)
			ctx := WithRequestID(context.Background(), "req-create-1")
			if _, err := c.CreatePayment(ctx, token, req, "idem-42"); err != nil {
				t.Fatalf("CreatePayment: %v", err)
			}
			got := fake.only(t)
			if got.Method != http.MethodPost || got.Path != "/payments/crypto" {
				t.Errorf("request = %s %s, want POST /payments/crypto", got.Method, got.Path)
			}
			wantHeader := map[string]string{
				"Authorization":   "Bearer " + token,
				"Accept":          "application/json",
				"Content-Type":    "application/json",
				"Idempotency-Key": "idem-42",
				"X-Request-Id":    "req-create-1",
			}
			gotHeader := map[string]string{}
			for k := range wantHeader {
				gotHeader[k] = got.Header.Get(k)
			}
			if diff := cmp.Diff(wantHeader, gotHeader); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			dec := json.NewDecoder(strings.NewReader(got.Body))
			dec.UseNumber()
			var body map[string]any
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body %q: %v", got.Body, err)
			}
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreatePaymentAmountIsANumberWithTheSameDigits(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusCreated, createdAnswer))
	c := newTestClient(t, fake)
	if _, err := c.CreatePayment(context.Background(), sampleToken(t), sampleCreate(t), "k"); err != nil {
		t.Fatalf("CreatePayment: %v", err)
	}
	// The raw bytes, not a decoded value: a float64 would have sent 12.5.
	if body := fake.only(t).Body; !strings.Contains(body, `"requestedAmount":12.50,`) {
		t.Errorf("body %s lacks the JSON number 12.50", body)
	}
}

func TestCreatePaymentURLShapes(t *testing.T) {
	const page = "https://pay.test.devs.beadpay.io/6539fa89f0363f1722b377ef"
	tests := []struct {
		name string
		urls string
		want []string
	}{
		{"2023 object", `{"type":"web","url":"` + page + `"}`, []string{page}},
		{"2025 array of objects, web first", `[{"type":"qr","url":"https://pay.example/qr"},{"type":"web","url":"` + page + `"}]`,
			[]string{page, "https://pay.example/qr"}},
		{"2026 array of strings", `["` + page + `"]`, []string{page}},
		{"bare string", `"` + page + `"`, []string{page}},
		{"null", `null`, nil},
		{"unsafe and relative URLs dropped", `["javascript:alert(1)","/pay/1","` + page + `"]`, []string{page}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK,
				`{"trackingId":"t1","paymentId":"p1","paymentPageId":"pp1","paymentUrls":`+tt.urls+`}`))
			c := newTestClient(t, fake)
			got, err := c.CreatePayment(context.Background(), sampleToken(t), sampleCreate(t), "k")
			if err != nil {
				t.Fatalf("CreatePayment: %v", err)
			}
			want := &CreatedPayment{TrackingID: "t1", PaymentID: "p1", PaymentPageID: "pp1", PaymentURLs: tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("payment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreatePaymentRefusesBeforeSending(t *testing.T) {
	tests := []struct {
		name    string
		adjust  func(*CreatePaymentRequest)
		token   string
		key     string
		wantErr error
	}{
		{"terminal id with a slash", func(r *CreatePaymentRequest) { r.TerminalID = "../x" }, "", "k", ErrInvalidID},
		{"no merchant id", func(r *CreatePaymentRequest) { r.MerchantID = "" }, "", "k", ErrInvalidID},
		{"zero amount", func(r *CreatePaymentRequest) { r.RequestedAmount = mustDecimal(t, "0") }, "", "k", ErrInvalidAmount},
		{"three decimals", func(r *CreatePaymentRequest) { r.RequestedAmount = mustDecimal(t, "1.005") }, "", "k", ErrInvalidAmount},
		{"no idempotency key", nil, "", "", ErrInvalidRequest},
		{"idempotency key with a newline", nil, "", "a\nb", ErrInvalidRequest},
		{"empty token (Bearer null)", nil, "-", "k", ErrNoAccessToken},
		{"the word null", nil, "null", "k", ErrNoAccessToken},
		{"token in quotes", nil, `"eyJabc.def.ghi"`, "k", ErrNoAccessToken},
		{"scheme pasted in", nil, "Bearer eyJabc.def.ghi", "k", ErrNoAccessToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusCreated, createdAnswer))
			c := newTestClient(t, fake)
			req := sampleCreate(t)
			if tt.adjust != nil {
				tt.adjust(&req)
			}
			token := sampleToken(t)
			switch tt.token {
			case "-":
				token = ""
			case "":
			default:
				token = tt.token
			}
			_, err := c.CreatePayment(context.Background(), token, req, tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if n := len(fake.requests()); n != 0 {
				t.Errorf("fake Bead got %d requests, want none", n)
			}
		})
	}
}

func TestAPIKeyReplacesBearer(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusForbidden, ""))
	c := newTestClient(t, fake, func(cfg *Config) { cfg.APIKey = "ak_live_0123456789" })
	_, err := c.Tracking(context.Background(), "", "t1")
	got := fake.only(t)
	if v := got.Header.Get("X-Api-Key"); v != "ak_live_0123456789" {
		t.Errorf("X-Api-Key = %q", v)
	}
	if v := got.Header.Get("Authorization"); v != "" {
		t.Errorf("Authorization = %q, want none with an API key", v)
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want *APIError", err)
	}
	if v := ae.Request.Header.Get("X-Api-Key"); v != "[redacted, 18 chars]" {
		t.Errorf("recorded X-Api-Key = %q, want it redacted", v)
	}
}

func TestTracking(t *testing.T) {
	received := time.Date(2026, 2, 28, 9, 30, 15, 123000000, time.UTC)
	base := PaymentStatus{
		PaymentID: "p-1", TrackingID: "c10b29e3c8104e0f8dc139c20d9eeb6c", PaymentCode: "bAKbqtcuP5",
		Reference: "order-1001", Description: "Two coffees", ReceivedTime: received,
		TerminalID: "0123456789abcdef01234567", MerchantID: "76543210fedcba9876543210",
	}
	envelope := func(status, amounts string) string {
		return `{"paymentId":"p-1","trackingId":"c10b29e3c8104e0f8dc139c20d9eeb6c","paymentCode":"bAKbqtcuP5",` +
			`"statusCode":` + status + `,"amounts":` + amounts + `,"reference":"order-1001","description":"Two coffees",` +
			`"receivedTime":"2026-02-28T09:30:15.123Z","terminalId":"0123456789abcdef01234567",` +
			`"merchantId":"76543210fedcba9876543210","errorMessage":null}`
	}
	with := func(s Status, requested, requestedPay, paid *Money) PaymentStatus {
		p := base
		p.Status, p.Requested, p.RequestedPay, p.Paid = s, requested, requestedPay, paid
		return p
	}
	money := func(amount, currency string) *Money {
		return &Money{Amount: mustDecimal(t, amount), Currency: currency}
	}
	tests := []struct {
		name string
		body string
		want PaymentStatus
	}{
		{
			name: "current shape, numbers, currency object, word status",
			body: envelope(`"completed"`, `{"requested":{"inPaymentCurrency":{"amount":1.02,"currency":"USDC"},`+
				`"inRequestedCurrency":{"amount":1.00,"currency":{"id":1,"code":"USD","name":"US Dollar","symbol":"$"}}},`+
				`"paid":{"inPaymentCurrency":{"amount":1.02,"currency":{"code":"USDC","name":"USDC Ethereum"}}}}`),
			want: with(StatusCompleted, money("1.00", "USD"), money("1.02", "USDC"), money("1.02", "USDC")),
		},
		{
			name: "amounts as strings keep every digit",
			body: envelope(`"Processing"`, `{"requested":{"inRequestedCurrency":{"amount":"12345678.99","currency":{"code":"USD"}},`+
				`"inPaymentCurrency":{"amount":"0.10","currency":"USDC"}},"paid":{"inPaymentCurrency":{"amount":"0.00","currency":"USDC"}}}`),
			want: with(StatusProcessing, money("12345678.99", "USD"), money("0.10", "USDC"), money("0.00", "USDC")),
		},
		{
			name: "no tender chosen yet: currency null, paid null",
			body: envelope(`"CREATED"`, `{"requested":{"inRequestedCurrency":{"amount":12.50,"currency":{"code":"USD"}},`+
				`"inPaymentCurrency":{"amount":null,"currency":null}},"paid":null}`),
			want: with(StatusCreated, money("12.50", "USD"), nil, nil),
		},
		{
			name: "older shape: requested{amount, currency} and a legacy number",
			body: envelope(`2`, `{"requested":{"amount":25.00,"currency":"USD"}}`),
			want: with(StatusCompleted, money("25.00", "USD"), nil, nil),
		},
		{
			name: "legacy number in a string, no amounts",
			body: envelope(`"9"`, `null`),
			want: with(StatusCancelled, nil, nil, nil),
		},
		{
			name: "undocumented status word is kept, not fatal",
			body: envelope(`"refundPending"`, `null`),
			want: with("refundpending", nil, nil, nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK, tt.body))
			c := newTestClient(t, fake)
			got, err := c.Tracking(context.Background(), sampleToken(t), "c10b29e3c8104e0f8dc139c20d9eeb6c")
			if err != nil {
				t.Fatalf("Tracking: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got, exactDecimal); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if p := fake.only(t).Path; p != "/payments/tracking/c10b29e3c8104e0f8dc139c20d9eeb6c" {
				t.Errorf("path = %s", p)
			}
		})
	}
}

func TestTrackingRefusesMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"no status", `{"trackingId":"t1"}`},
		{"status object", `{"statusCode":{"v":2}}`},
		{"amount as a boolean", `{"statusCode":"created","amounts":{"requested":{"amount":true}}}`},
		{"amount with a huge exponent", `{"statusCode":"created","amounts":{"paid":{"inPaymentCurrency":{"amount":1e999999}}}}`},
		{"HTML with status 200", `<html>captive portal</html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK, tt.body))
			c := newTestClient(t, fake)
			_, err := c.Tracking(context.Background(), sampleToken(t), "t1")
			if !errors.Is(err, ErrUnexpectedAnswer) {
				t.Errorf("error = %v, want ErrUnexpectedAnswer", err)
			}
		})
	}
}

func TestTrackingRefusesBadIDsWithoutARequest(t *testing.T) {
	tests := []struct {
		name string
		id   string
	}{
		{"path traversal to the create endpoint", "../payments/crypto"},
		{"slash", "a/b"},
		{"empty", ""},
		{"escaped slash", "a%2F.."},
		{"too long", strings.Repeat("x", 65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK, `{"statusCode":"created"}`))
			c := newTestClient(t, fake)
			_, err := c.Tracking(context.Background(), sampleToken(t), tt.id)
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("error = %v, want ErrInvalidID", err)
			}
			if n := len(fake.requests()); n != 0 {
				t.Errorf("fake Bead got %d requests, want none", n)
			}
		})
	}
}

func TestTrackingPathStyles(t *testing.T) {
	tests := []struct {
		style    string
		wantPath string
	}{
		{TrackingByID, "/payments/tracking/abc123"},
		{TrackingByPay, "/Payments/abc123/tracking"},
	}
	for _, tt := range tests {
		t.Run(tt.style, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusOK, `{"statusCode":"created"}`))
			c := newTestClient(t, fake, func(cfg *Config) { cfg.TrackingPath = tt.style })
			if _, err := c.Tracking(context.Background(), sampleToken(t), "abc123"); err != nil {
				t.Fatalf("Tracking: %v", err)
			}
			if p := fake.only(t).Path; p != tt.wantPath {
				t.Errorf("path = %s, want %s", p, tt.wantPath)
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	big := bytes.Repeat([]byte("é"), 512<<10) // 1 MiB of two-byte runes
	tests := []struct {
		name        string
		status      int
		header      http.Header
		body        []byte
		want        APIError // the fields compared below
		wantMessage string
		authFailure bool
	}{
		{
			name: "Bead's bare 403", status: 403,
			want:        APIError{Shape: ShapeEmpty},
			wantMessage: "bead: tracking: 403 (empty body)", authFailure: true,
		},
		{
			name: "HTML 403 from a WAF", status: 403,
			header:      http.Header{"Content-Type": {"text/html"}, "Server": {"cloudflare"}},
			body:        []byte("<html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>"),
			want:        APIError{Shape: ShapeHTML, Title: "Attention Required! | Cloudflare"},
			wantMessage: `bead: tracking: 403 html page "Attention Required! | Cloudflare"`, authFailure: true,
		},
		{
			name: "ProblemDetails with field errors", status: 400,
			header: http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"bead-rid-1"}},
			body: []byte(`{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"One or more validation errors occurred.",` +
				`"status":400,"traceId":"00-4bf92f-00","errors":{"terminalId":["Unknown terminal."]}}`),
			want: APIError{
				Shape: ShapeProblem, Title: "One or more validation errors occurred.",
				Code: "https://tools.ietf.org/html/rfc9110#section-15.5.1", TraceID: "00-4bf92f-00", RequestID: "bead-rid-1",
				FieldErrors: map[string][]string{"terminalId": {"Unknown terminal."}},
			},
			wantMessage: "bead: tracking: 400 One or more validation errors occurred.",
		},
		{
			name: "code, error, message, details", status: 422,
			body: []byte(`{"code":422,"error":"unprocessable_entity","message":"Amount too small",` +
				`"details":[{"field":"requestedAmount","issue":"out_of_range"}]}`),
			want: APIError{
				Shape: ShapeCodeError, Code: "unprocessable_entity", Detail: "Amount too small",
				FieldErrors: map[string][]string{"requestedAmount": {"out_of_range"}},
			},
			wantMessage: "bead: tracking: 422 Amount too small",
		},
		{
			name: "error, message, requestId", status: 403,
			body:        []byte(`{"error":"forbidden","message":"Terminal mismatch","requestId":"r-77"}`),
			want:        APIError{Shape: ShapeErrorMessage, Code: "forbidden", Detail: "Terminal mismatch", RequestID: "r-77"},
			wantMessage: "bead: tracking: 403 Terminal mismatch", authFailure: true,
		},
		{
			name: "429 with Retry-After is not an auth failure", status: 429, header: http.Header{"Retry-After": {"30"}},
			body:        []byte(`{"code":429,"error":"rate_limit_exceeded","message":"Too many requests"}`),
			want:        APIError{Shape: ShapeCodeError, Code: "rate_limit_exceeded", Detail: "Too many requests", RetryAfter: 30 * time.Second},
			wantMessage: "bead: tracking: 429 Too many requests",
		},
		{
			name: "1 MiB body is cut at 64 KiB", status: 502, header: http.Header{"Content-Type": {"text/plain"}}, body: big,
			want:        APIError{Shape: ShapeText, BodyTrunc: true, Detail: strings.Repeat("é", maxSummary) + "…"},
			wantMessage: "bead: tracking: 502 " + strings.Repeat("é", maxSummary) + "…",
		},
		{
			name: "binary body", status: 500, header: http.Header{"Content-Type": {"application/octet-stream"}},
			body:        []byte{0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x00},
			want:        APIError{Shape: ShapeBinary},
			wantMessage: "bead: tracking: 500 (binary body)",
		},
		{
			name: "redirect is not followed", status: 302, header: http.Header{"Location": {"/elsewhere"}},
			want:        APIError{Shape: ShapeEmpty},
			wantMessage: "bead: tracking: 302 (empty body)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
				w.Write(tt.body)
			})
			c := newTestClient(t, fake)
			token := sampleToken(t)
			_, err := c.Tracking(context.Background(), token, "t1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want *APIError", err)
			}
			got := APIError{
				Shape: ae.Shape, Title: ae.Title, Detail: ae.Detail, Code: ae.Code, TraceID: ae.TraceID,
				RequestID: ae.RequestID, FieldErrors: ae.FieldErrors, RetryAfter: ae.RetryAfter, BodyTrunc: ae.BodyTrunc,
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if ae.Status != tt.status || ae.Op != "tracking" {
				t.Errorf("status, op = %d, %q; want %d, tracking", ae.Status, ae.Op, tt.status)
			}
			wantBody := tt.body
			if len(wantBody) > maxErrorBody {
				wantBody = wantBody[:maxErrorBody]
			}
			if !bytes.Equal(ae.Body, wantBody) {
				t.Errorf("Body is %d bytes, want the first %d", len(ae.Body), len(wantBody))
			}
			if msg := err.Error(); msg != tt.wantMessage {
				t.Errorf("Error() = %q, want %q", msg, tt.wantMessage)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(ae.Request.Header.Get("Authorization"), token) {
				t.Error("the token leaked into the error or its recorded request")
			}
			if IsAuthFailure(err) != tt.authFailure {
				t.Errorf("IsAuthFailure = %v, want %v", !tt.authFailure, tt.authFailure)
			}
			if n := len(fake.requests()); n != 1 {
				t.Errorf("fake Bead got %d requests, want 1", n)
			}
		})
	}
}

func TestSentRequestRedactsTheBearerToken(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusUnauthorized, ""))
	c := newTestClient(t, fake)
	token := sampleToken(t)
	err := c.Probe(context.Background(), token)
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want *APIError", err)
	}
	want := SentRequest{
		Method: http.MethodGet,
		URL:    fake.srv.URL + "/currencies",
		Header: http.Header{
			"Accept":        {"application/json"},
			"Content-Type":  {"application/json"},
			"Authorization": {"Bearer " + token[:50] + "… (" + strconv.Itoa(len(token)) + " chars)"},
			"X-Request-Id":  {ae.Request.RequestID},
			"User-Agent":    {"beadbff"},
		},
		RequestID: ae.Request.RequestID,
		SentAt:    testNow,
	}
	if diff := cmp.Diff(want, ae.Request); diff != "" {
		t.Errorf("SentRequest (-want +got):\n%s", diff)
	}
	if !IsAuthFailure(err) {
		t.Error("IsAuthFailure(401) = false")
	}
}

func TestProbe(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusOK, `[{"code":"USD"}]`))
	c := newTestClient(t, fake)
	if err := c.Probe(context.Background(), sampleToken(t)); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if got := fake.only(t); got.Method != http.MethodGet || got.Path != "/currencies" {
		t.Errorf("request = %s %s, want GET /currencies", got.Method, got.Path)
	}
}

func TestRequestIDGeneratedWhenAbsentOrUnsafe(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"absent", context.Background()},
		{"header injection", WithRequestID(context.Background(), "abc\r\nX-Evil: 1")},
		{"too long", WithRequestID(context.Background(), strings.Repeat("a", 200))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, answerJSON(http.StatusInternalServerError, ""))
			c := newTestClient(t, fake)
			_, err := c.Tracking(tt.ctx, sampleToken(t), "t1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want *APIError", err)
			}
			sent := fake.only(t).Header.Get("X-Request-Id")
			if _, err := uuid.Parse(sent); err != nil {
				t.Errorf("x-request-id %q is not a generated UUID", sent)
			}
			if ae.Request.RequestID != sent {
				t.Errorf("recorded request id %q, sent %q", ae.Request.RequestID, sent)
			}
		})
	}
}

func TestTimeoutIsATransportError(t *testing.T) {
	fake := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	c := newTestClient(t, fake, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond })
	start := time.Now()
	_, err := c.Tracking(WithRequestID(context.Background(), "slow-1"), sampleToken(t), "t1")
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want *TransportError", err)
	}
	if !te.Timeout {
		t.Errorf("Timeout = false for %v", err)
	}
	if te.Request.RequestID != "slow-1" || te.Op != "tracking" {
		t.Errorf("request id, op = %q, %q", te.Request.RequestID, te.Op)
	}
	if !strings.HasPrefix(err.Error(), "bead: tracking: timeout: ") {
		t.Errorf("Error() = %q", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("the call took %s despite a 50ms timeout", elapsed)
	}
}

func TestConnectionRefusedIsATransportError(t *testing.T) {
	fake := newFake(t, answerJSON(http.StatusOK, "{}"))
	c := newTestClient(t, fake)
	fake.srv.Close()
	_, err := c.Tracking(context.Background(), sampleToken(t), "t1")
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want *TransportError", err)
	}
	if te.Timeout {
		t.Errorf("Timeout = true for a refused connection")
	}
}
