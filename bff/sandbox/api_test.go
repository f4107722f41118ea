package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

func TestAPIRefusesBadTokensAsJwtBearer(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, Options{Now: clock.Now, AccessTokenTTL: time.Minute})
	term := f.terminal(0)
	good := f.login(t, "nonprod", "bead-terminal", term, "")
	prod := f.login(t, "prod", "bead-terminal", term, "")
	integrator := f.login(t, "nonprod", "bead-integrator", term, "")
	noOpenID := f.login(t, "nonprod", "bead-terminal", term, "profile email")

	// A token that would pass, but signed by a key Bead does not know.
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := f.verifyJWT(t, "nonprod", good.AccessToken)
	foreign := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	foreign.Header["kid"] = "someone-elses-key"
	foreignToken, _ := foreign.SignedString(otherKey)

	tampered := good.AccessToken[:len(good.AccessToken)-6] + "AAAAAA"
	if tampered == good.AccessToken {
		tampered = good.AccessToken[:len(good.AccessToken)-6] + "BBBBBB"
	}

	tests := []struct {
		name          string
		authorization string
		advance       time.Duration
		wantStatus    int
		wantChallenge string
	}{
		{"no Authorization header", "", 0, 401, "Bearer"},
		{"another scheme", "Basic dXNlcjpwYXNz", 0, 401, "Bearer"},
		{"token without the Bearer scheme", good.AccessToken, 0, 401, "Bearer"},
		{"Bearer null", "Bearer null", 0, 401, `Bearer error="invalid_token"`},
		{"quoted token", `Bearer "` + good.AccessToken + `"`, 0, 401, `Bearer error="invalid_token"`},
		{"not a JWT", "Bearer abc.def", 0, 401, `Bearer error="invalid_token"`},
		{"tampered signature", "Bearer " + tampered, 0, 401, `Bearer error="invalid_token", error_description="The signature is invalid"`},
		{"unknown signing key", "Bearer " + foreignToken, 0, 401, `Bearer error="invalid_token", error_description="The signature key was not found"`},
		{"prod realm token", "Bearer " + prod.AccessToken, 0, 401,
			fmt.Sprintf(`Bearer error="invalid_token", error_description="The issuer '%s/realms/prod' is invalid"`, f.base)},
		{"bead-integrator token", "Bearer " + integrator.AccessToken, 0, 403, ""},
		{"scope without openid", "Bearer " + noOpenID.AccessToken, 0, 403, ""},
		{"ID token instead of the access token", "Bearer " + good.IDToken, 0, 403, ""},
		{"scheme in lower case", "bearer " + good.AccessToken, 0, 200, ""},
		// Last: it moves the clock for good.
		{"expired", "Bearer " + good.AccessToken, 2 * time.Minute, 401, expiredChallenge(t, claims)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			h := http.Header{}
			if tt.authorization != "" {
				h.Set("Authorization", tt.authorization)
			}
			resp, body := f.call(t, http.MethodGet, "/currencies", nil, h)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tt.wantChallenge)
			}
			switch tt.wantStatus {
			case 401:
				if len(body) != 0 {
					t.Errorf("401 body %q, want empty", body)
				}
			case 403:
				// The policy 403 is ASP.NET's ProblemDetails; see TestTerminalBinding for Bead's bare one.
				p := decodeMap(t, body)
				if p["title"] != "Forbidden" || p["status"] != json.Number("403") || p["traceId"] == nil {
					t.Errorf("403 body %s, want ProblemDetails titled Forbidden", body)
				}
			}
			if resp.Header.Get("Server") != "Kestrel" {
				t.Errorf("Server %q, want Kestrel", resp.Header.Get("Server"))
			}
		})
	}
}

func expiredChallenge(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		t.Fatal("token has no exp")
	}
	return fmt.Sprintf(`Bearer error="invalid_token", error_description="The token expired at '%s'"`, exp.UTC().Format("01/02/2006 15:04:05"))
}

func TestTerminalBindingAnswersBare403(t *testing.T) {
	f := newFixture(t, Options{})
	a1, a2, b1 := f.terminal(0), f.terminal(1), f.terminal(2)
	tokenA1, tokenB1 := f.token(t, 0), f.token(t, 2)
	pay := f.createPayment(t, tokenA1, paymentBody(a1, "12.50"))

	otherMerchant := paymentBody(a1, "12.50")
	otherMerchant["merchantId"] = b1.MerchantID
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
	}{
		{"create naming a sibling terminal", http.MethodPost, "/payments/crypto", tokenA1, paymentBody(a2, "12.50")},
		{"create naming another merchant", http.MethodPost, "/payments/crypto", tokenA1, otherMerchant},
		{"create with another merchant's token", http.MethodPost, "/payments/crypto", tokenB1, paymentBody(a1, "12.50")},
		{"tracking another terminal's payment", http.MethodGet, "/payments/tracking/" + pay.TrackingID, tokenB1, nil},
		{"tracking another terminal's payment by paymentId", http.MethodGet, "/Payments/" + pay.PaymentID + "/tracking", tokenB1, nil},
		{"registering another terminal's webhook", http.MethodPut, "/Terminals/" + a2.TerminalID + "/webhook", tokenA1, map[string]string{"webhookUrl": "https://example.com/hook"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.call(t, tt.method, tt.path, tt.body, bearer(tt.token))
			got := []any{resp.StatusCode, string(body), resp.Header.Get("Server"), resp.Header.Get("x-request-id") != ""}
			if diff := cmp.Diff([]any{403, "", "Kestrel", true}, got); diff != "" {
				t.Errorf("[status, body, Server, has x-request-id] (-want +got):\n%s", diff)
			}
		})
	}
	if got := f.stats(t).PaymentsCreated; got != 1 {
		t.Errorf("paymentsCreated = %d, want 1: a refused create must not create", got)
	}
}

func TestCreatePaymentValidation(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(0)
	token := f.token(t, 0)
	with := func(k string, v any) map[string]any {
		b := paymentBody(term, "12.50")
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name     string
		body     any
		wantKeys []string
	}{
		{"amount missing", with("requestedAmount", nil), []string{"RequestedAmount"}},
		{"amount zero", with("requestedAmount", json.Number("0")), []string{"RequestedAmount"}},
		{"amount negative", with("requestedAmount", json.Number("-5")), []string{"RequestedAmount"}},
		{"amount with three decimals", with("requestedAmount", json.Number("12.345")), []string{"RequestedAmount"}},
		{"amount as a string", with("requestedAmount", "12.50"), []string{"$.requestedAmount", "request"}},
		{"amount too large", with("requestedAmount", json.Number("1000000.01")), []string{"RequestedAmount"}},
		{"no terminal", with("terminalId", nil), []string{"TerminalId"}},
		{"reference too long", with("reference", strings.Repeat("x", 101)), []string{"Reference"}},
		{"relative redirect", with("redirectUrl", "/thanks"), []string{"RedirectUrl"}},
		{"unknown paymentUrlType", with("paymentUrlType", "qr"), []string{"$.paymentUrlType", "request"}},
		{"unknown tender", with("tenderTypes", []string{"bitcoin", "dogecoin"}), []string{"TenderTypes[1]"}},
		{"bad webhook URL", with("webhookUrls", []string{"ftp//nope"}), []string{"WebhookUrls[0]"}},
		{"partial customer", with("customer", map[string]string{"email": "a@example.com", "firstName": "Ada"}),
			[]string{"Customer.Address", "Customer.City", "Customer.CountryCode", "Customer.LastName", "Customer.PostalCode", "Customer.State"}},
		{"reference of the wrong type", with("reference", 42), []string{"$.reference", "request"}},
		{"malformed JSON", `{"terminalId": `, []string{"$", "request"}},
		{"empty body", "", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bearer(token)
			h.Set("Content-Type", "application/json")
			resp, body := f.call(t, http.MethodPost, "/payments/crypto", tt.body, h)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, body)
			}
			var p struct {
				Type    string              `json:"type"`
				Title   string              `json:"title"`
				Status  int                 `json:"status"`
				Errors  map[string][]string `json:"errors"`
				TraceID string              `json:"traceId"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			var keys []string
			for k, msgs := range p.Errors {
				keys = append(keys, k)
				if len(msgs) == 0 || msgs[0] == "" {
					t.Errorf("errors[%q] has no message", k)
				}
			}
			sort.Strings(keys)
			got := []any{resp.Header.Get("Content-Type"), p.Type, p.Title, p.Status, keys, regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`).MatchString(p.TraceID)}
			want := []any{"application/problem+json; charset=utf-8", "https://tools.ietf.org/html/rfc9110#section-15.5.1",
				"One or more validation errors occurred.", 400, tt.wantKeys, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[content type, type, title, status, error keys, traceId ok] (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		h := bearer(token)
		h.Set("Content-Type", "text/plain")
		resp, body := f.call(t, http.MethodPost, "/payments/crypto", "terminalId=x", h)
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(body), `"title":"Unsupported Media Type"`) {
			t.Errorf("%d %s, want 415 ProblemDetails", resp.StatusCode, body)
		}
	})
}

func TestCreatePaymentAcceptsDecimalNumbers(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(0)
	token := f.token(t, 0)
	tests := []struct{ sent, want string }{
		{"10", "10.00"},
		{"12.5", "12.50"},
		{"12.500", "12.50"},
		{"0.01", "0.01"},
		{"1e2", "100.00"},
		{"999999.99", "999999.99"},
	}
	for _, tt := range tests {
		t.Run(tt.sent, func(t *testing.T) {
			c := f.createPayment(t, token, paymentBody(term, tt.sent))
			resp, raw := f.call(t, http.MethodGet, "/payments/tracking/"+c.TrackingID, nil, bearer(token))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("tracking %d", resp.StatusCode)
			}
			// The amount must travel as a JSON number with its decimals, not a string or float.
			want := `"inRequestedCurrency":{"amount":` + tt.want + `,`
			if !strings.Contains(string(raw), want) {
				t.Errorf("tracking body %s lacks %s", raw, want)
			}
		})
	}
}

func TestIdempotencyKeyReturnsTheFirstResult(t *testing.T) {
	f := newFixture(t, Options{})
	tokenA1, tokenA2 := f.token(t, 0), f.token(t, 1)
	withKey := func(token, key string) http.Header {
		h := bearer(token)
		h.Set("Idempotency-Key", key)
		return h
	}
	body := paymentBody(f.terminal(0), "5.00")
	_, first := f.call(t, http.MethodPost, "/payments/crypto", body, withKey(tokenA1, "key-1"))
	_, again := f.call(t, http.MethodPost, "/payments/crypto", body, withKey(tokenA1, "key-1"))
	if string(first) != string(again) {
		t.Errorf("replay differs:\n first %s\n again %s", first, again)
	}
	_, other := f.call(t, http.MethodPost, "/payments/crypto", body, withKey(tokenA1, "key-2"))
	if string(other) == string(first) {
		t.Error("a new key returned the first payment")
	}
	// Keys are per terminal: another terminal's same key is its own payment.
	_, sibling := f.call(t, http.MethodPost, "/payments/crypto", paymentBody(f.terminal(1), "5.00"), withKey(tokenA2, "key-1"))
	if string(sibling) == string(first) {
		t.Error("another terminal's key replayed this terminal's payment")
	}
	if got := f.stats(t).PaymentsCreated; got != 3 {
		t.Errorf("paymentsCreated = %d, want 3", got)
	}
}

func TestPaymentURLsShapeIsAKnob(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	tests := []struct {
		shape string
		want  func(url string) any
	}{
		{"strings", func(u string) any { return []any{u} }},
		{"objects", func(u string) any { return []any{map[string]any{"type": "web", "url": u}} }},
		{"object", func(u string) any { return map[string]any{"type": "web", "url": u} }},
	}
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			f.control(t, http.MethodPost, "/_sandbox/config", map[string]string{"paymentUrlsShape": tt.shape}, http.StatusOK)
			c := f.createPayment(t, token, paymentBody(f.terminal(0), "1.00"))
			var got any
			if err := json.Unmarshal(c.PaymentURLs, &got); err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(c.TrackingID) || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(c.PaymentPageID) {
				t.Errorf("ids: trackingId %q (want 32 hex), paymentPageId %q (want 24 hex)", c.TrackingID, c.PaymentPageID)
			}
			if diff := cmp.Diff(tt.want(f.base+"/pay/"+c.PaymentPageID), got); diff != "" {
				t.Errorf("paymentUrls (-want +got):\n%s", diff)
			}
		})
	}
	f.control(t, http.MethodPost, "/_sandbox/config", map[string]string{"paymentUrlsShape": "qr"}, http.StatusBadRequest)
}

func TestTrackingBodyIsBeadsStatusObject(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(0)
	token := f.token(t, 0)
	c := f.createPayment(t, token, paymentBody(term, "12.50"))

	got := f.tracking(t, token, c.TrackingID)
	received, _ := got["receivedTime"].(string)
	if _, err := time.Parse(time.RFC3339, received); err != nil || !strings.HasSuffix(received, "Z") {
		t.Errorf("receivedTime %q is not ISO 8601 UTC", received)
	}
	code, _ := got["paymentCode"].(string)
	if len(code) != 10 {
		t.Errorf("paymentCode %q", code)
	}
	delete(got, "receivedTime")
	delete(got, "paymentCode")
	usd := map[string]any{"id": json.Number("1"), "code": "USD", "name": "US Dollar", "symbol": "$"}
	none := map[string]any{"amount": json.Number("0.00"), "currency": nil}
	want := map[string]any{
		"paymentId":  c.PaymentID,
		"trackingId": c.TrackingID,
		"statusCode": "created",
		"amounts": map[string]any{
			"requested": map[string]any{
				"inPaymentCurrency":   none,
				"inRequestedCurrency": map[string]any{"amount": json.Number("12.50"), "currency": usd},
			},
			"paid": map[string]any{"inPaymentCurrency": none},
		},
		"reference":    "ORDER-1",
		"description":  "Two espressos",
		"terminalId":   term.TerminalID,
		"merchantId":   term.MerchantID,
		"errorMessage": nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tracking (-want +got):\n%s", diff)
	}

	// Once paid, the payment currency appears; the newer path by paymentId answers the same.
	f.control(t, http.MethodPost, "/_sandbox/payments/"+c.TrackingID+"/status", map[string]string{"statusCode": "overpaid"}, http.StatusOK)
	resp, raw := f.call(t, http.MethodGet, "/Payments/"+c.PaymentID+"/tracking", nil, bearer(token))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("by paymentId: %d", resp.StatusCode)
	}
	byID := decodeMap(t, raw)
	amounts := byID["amounts"].(map[string]any)
	paid := amounts["paid"].(map[string]any)["inPaymentCurrency"].(map[string]any)
	gotPaid := []any{byID["statusCode"], paid["amount"], paid["currency"].(map[string]any)["code"]}
	if diff := cmp.Diff([]any{"overpaid", json.Number("13.75"), "USDC"}, gotPaid); diff != "" {
		t.Errorf("[status, paid, currency] (-want +got):\n%s", diff)
	}

	f.control(t, http.MethodPost, "/_sandbox/config", map[string]string{"statusCodeFormat": "number"}, http.StatusOK)
	if got := f.tracking(t, token, c.TrackingID)["statusCode"]; got != json.Number("4") {
		t.Errorf("legacy statusCode = %v, want 4", got)
	}

	resp, raw = f.call(t, http.MethodGet, "/payments/tracking/"+strings.Repeat("0", 32), nil, bearer(token))
	if resp.StatusCode != http.StatusNotFound || decodeMap(t, raw)["title"] != "Not Found" {
		t.Errorf("unknown tracking id: %d %s, want 404 ProblemDetails", resp.StatusCode, raw)
	}
}

func TestPathsAreCaseInsensitive(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	c := f.createPayment(t, token, paymentBody(f.terminal(0), "3.00"))
	for _, path := range []string{
		"/payments/tracking/" + c.TrackingID,
		"/Payments/Tracking/" + c.TrackingID,
		"/PAYMENTS/TRACKING/" + strings.ToUpper(c.TrackingID),
		"/payments/tracking/" + c.TrackingID + "/",
		"/Payments/" + c.PaymentID + "/tracking",
		"/payments/" + c.PaymentID + "/TRACKING",
	} {
		t.Run(path, func(t *testing.T) {
			if resp, body := f.call(t, http.MethodGet, path, nil, bearer(token)); resp.StatusCode != http.StatusOK {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("create at /Payments/Crypto", func(t *testing.T) {
		if resp, body := f.call(t, http.MethodPost, "/Payments/Crypto", paymentBody(f.terminal(0), "3.00"), bearer(token)); resp.StatusCode != http.StatusOK {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t, Options{})
	resp, body := f.call(t, http.MethodGet, "/payments/nothing/here", nil, nil)
	if resp.StatusCode != http.StatusNotFound || len(body) != 0 || resp.Header.Get("Server") != "Kestrel" {
		t.Errorf("unknown route: %d %q Server %q, want an empty Kestrel 404", resp.StatusCode, body, resp.Header.Get("Server"))
	}
	resp, _ = f.call(t, http.MethodGet, "/payments/crypto", nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /payments/crypto: %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestRequestIDIsEchoedOrMade(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"sane id echoed", "req-1234.abc", true},
		{"none sent", "", false},
		{"insane id replaced", "two words<script>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bearer(token)
			if tt.sent != "" {
				h.Set("x-request-id", tt.sent)
			}
			resp, _ := f.call(t, http.MethodGet, "/currencies", nil, h)
			got := resp.Header.Get("x-request-id")
			if got == "" || (got == tt.sent) != tt.echoed {
				t.Errorf("x-request-id %q for %q; echoed want %v", got, tt.sent, tt.echoed)
			}
		})
	}
}

func TestPutWebhookReturnsSigningSecret(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	f := newFixture(t, Options{WebhookSecret: secret})
	term := f.terminal(0)
	for _, client := range []string{"bead-terminal", "bead-integrator"} {
		t.Run(client, func(t *testing.T) {
			token := f.login(t, "nonprod", client, term, "").AccessToken
			resp, raw := f.call(t, http.MethodPut, "/Terminals/"+term.TerminalID+"/webhook", map[string]string{"webhookUrl": "https://shop.example/hooks/bead"}, bearer(token))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			got := decodeMap(t, raw)
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(got["updated"])); err != nil {
				t.Errorf("updated %v: %v", got["updated"], err)
			}
			delete(got, "updated")
			want := map[string]any{"terminalId": term.TerminalID, "webhookUrl": "https://shop.example/hooks/bead",
				"signingSecret": base64.StdEncoding.EncodeToString(secret)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	token := f.token(t, 0)
	resp, raw := f.call(t, http.MethodPut, "/terminals/"+term.TerminalID+"/webhook", map[string]string{"webhookUrl": "not a url"}, bearer(token))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"WebhookUrl"`) {
		t.Errorf("bad URL: %d %s", resp.StatusCode, raw)
	}
	if got := f.sb.SigningSecret(); got != base64.StdEncoding.EncodeToString(secret) {
		t.Errorf("SigningSecret() = %q", got)
	}
}
