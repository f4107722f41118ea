package diagnose_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

// The fixtures below are shaped like what the sandbox (an ASP.NET Core API behind Keycloak) and the
// Bead client produce; sandbox_test.go checks the same rules against the real thing.

// now is the clock of every fixture: Bead answers at 10:06:23Z.
var now = time.Date(2026, 5, 1, 10, 6, 23, 0, time.UTC)

const (
	realm     = "https://identity.beadpay.io/realms/nonprod"
	apiURL    = "https://api.test.devs.beadpay.io"
	terminal1 = "5eadbeef00000000000a0001"
	merchant1 = "5eadbeef0000000000000a01"
	terminal2 = "5eadbeef00000000000b0001"
	merchant2 = "5eadbeef0000000000000b01"
	requestID = "req-7f3a9c2e"
)

// claims are those of a good token of terminal1, obtained 10 minutes before now, expiring in 50.
func claims(edit ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": realm, "aud": "account", "azp": "bead-terminal", "typ": "Bearer", "sub": "f:1:" + terminal1,
		"scope": "openid profile email", "iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(50 * time.Minute).Unix(),
		"jti": "jti-1", "preferred_username": terminal1 + "@beadpay.io", "terminalId": terminal1, "merchantId": merchant1,
	}
	for _, e := range edit {
		e(c)
	}
	return c
}

// jwt makes an unsigned-looking JWT: the diagnosis decodes claims without verifying them, as the
// client does. The padding claim makes it as long as a Keycloak token.
func jwt(c map[string]any) string {
	c["pad"] = strings.Repeat("x", 600)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`))
	body, _ := json.Marshal(c)
	return header + "." + base64.RawURLEncoding.EncodeToString(body) + ".c2lnbmF0dXJl"
}

// tokenOf is the TokenInfo of a token obtained when its iat says (by this server's clock), with the
// expires_in the realm gives (exp - iat).
func tokenOf(c map[string]any) *diagnose.TokenInfo {
	iat := time.Unix(toInt(c["iat"]), 0).UTC()
	exp := time.Unix(toInt(c["exp"]), 0).UTC()
	return diagnose.NewTokenInfo(jwt(c), "openid profile email", iat, exp)
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

// redactedBearer is the Authorization value as bead.SentRequest records it.
func redactedBearer(token string) string {
	return fmt.Sprintf("Bearer %s… (%d chars)", token[:min(50, len(token)/3)], len(token))
}

// sent is a request as the Bead client records it.
func sent(method, path, authorization, body string) bead.SentRequest {
	h := http.Header{"Accept": {"application/json"}, "Content-Type": {"application/json"}, "X-Request-Id": {requestID}}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return bead.SentRequest{Method: method, URL: apiURL + path, Header: h, BodySummary: body, RequestID: requestID, SentAt: now.Add(-200 * time.Millisecond)}
}

func createBody(terminalID, merchantID string) string {
	return fmt.Sprintf(`{"terminalId":%q,"merchantId":%q,"requestedAmount":12.50,"paymentUrlType":"web","reference":"order-1","description":"two coffees"}`, terminalID, merchantID)
}

// beadHeaders are those of Bead's Kestrel: Server and the echoed x-request-id.
func beadHeaders(kv ...string) http.Header {
	h := http.Header{"Server": {"Kestrel"}, "X-Request-Id": {requestID}, "Date": {now.Format(http.TimeFormat)}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// apiErr is a *bead.APIError as the client builds it.
func apiErr(op string, req bead.SentRequest, status int, h http.Header, shape, body string) *bead.APIError {
	return &bead.APIError{Op: op, Request: req, Status: status, Header: h, Body: []byte(body), Shape: shape,
		RequestID: h.Get("X-Request-Id"), ReceivedAt: now}
}

const problem403 = `{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.4","title":"Forbidden","status":403,"traceId":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}`

const wafPage = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n"

// cfg is the configuration of a session of terminal1.
func cfg() diagnose.Config {
	return diagnose.Config{ClientID: "bead-terminal", Scopes: []string{"openid", "profile", "email"}, IdentityURL: realm, APIURL: apiURL,
		TerminalID: terminal1, MerchantID: merchant1}
}

// paymentIncident is a failed call of the payments API with a token of claims c.
func paymentIncident(op string, c map[string]any, req func(token string) bead.SentRequest, status int, h http.Header, shape, body string) diagnose.Incident {
	tok := jwt(c)
	r := req(tok)
	ti := tokenOf(c)
	return diagnose.Incident{Op: op, Err: apiErr(op, r, status, h, shape, body), Token: ti, Config: cfg(), Now: now}
}

func trackingReq(trackingID string) func(string) bead.SentRequest {
	return func(tok string) bead.SentRequest {
		return sent(http.MethodGet, "/payments/tracking/"+trackingID, redactedBearer(tok), "")
	}
}

func createReq(terminalID, merchantID string) func(string) bead.SentRequest {
	return func(tok string) bead.SentRequest {
		return sent(http.MethodPost, "/payments/crypto", redactedBearer(tok), createBody(terminalID, merchantID))
	}
}

func probeReq(tok string) bead.SentRequest {
	return sent(http.MethodGet, "/currencies", redactedBearer(tok), "")
}

// tokenErr is a *bead.TokenError of the realm.
func tokenErr(op string, status int, code, desc string) *bead.TokenError {
	form := "client_id=bead-terminal&grant_type=password&password=%5Bredacted%5D&scope=openid+profile+email&username=" + terminal1 + "%40beadpay.io"
	if op == diagnose.OpRefreshGrant {
		form = "client_id=bead-terminal&grant_type=refresh_token&refresh_token=%5Bredacted%5D"
	}
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	return &bead.TokenError{Op: op, Status: status, Code: code, Description: desc, Shape: bead.ShapeErrorMessage,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body, ReceivedAt: now,
		Request: bead.SentRequest{Method: http.MethodPost, URL: realm + "/protocol/openid-connect/token",
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, BodySummary: form, RequestID: requestID, SentAt: now}}
}

func hasEvidence(d diagnose.Diagnosis, want diagnose.Evidence) bool {
	for _, e := range d.Evidence {
		if e == want {
			return true
		}
	}
	return false
}
