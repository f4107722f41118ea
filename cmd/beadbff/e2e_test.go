package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"beadbff/session/redistest"
)

// The walking skeleton, end to end through the JSON API, against the sandbox and a real Redis: log in,
// create, the shopper pays, API and page say completed; an expired token is recovered with exactly one
// refresh; a dead refresh token ends in a clear "log in again".
func TestEndToEndAPI(t *testing.T) {
	e := startEnv(t, envOptions{})
	app := e.client()
	term := e.login(app, 0)

	who := e.api(app, "GET", "/api/v1/session", nil)
	if who.status != http.StatusOK {
		t.Fatalf("who am I: %d %s", who.status, who.body)
	}
	if got := who.json(t); got["terminalId"] != term.TerminalID || got["merchantId"] != term.MerchantID || got["expiresAt"] == "" {
		t.Errorf("who am I = %v, want terminal %s of merchant %s with expiresAt", got, term.TerminalID, term.MerchantID)
	}

	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "12.50", "reference": "order-1001", "description": "Two coffees"})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	p := created.json(t)
	id, _ := p["trackingId"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("trackingId %q is not the sandbox's 32-hex id", id)
	}
	if p["requestedAmount"] != "12.50" || p["statusCode"] != "created" || p["reference"] != "order-1001" {
		t.Errorf("created payment = %v", p)
	}
	if u, _ := p["paymentUrl"].(string); !strings.HasPrefix(u, e.sbURL+"/pay/") {
		t.Errorf("paymentUrl %q is not the sandbox's hosted page", u)
	}
	if u, _ := p["checkoutUrl"].(string); !strings.HasPrefix(u, e.url+"/embed/checkout/") {
		t.Errorf("checkoutUrl %q is not this server's checkout page", u)
	}
	if got := created.header.Get("X-Request-Id"); got == "" {
		t.Error("no X-Request-Id on the answer")
	}

	// The shopper pays on the hosted page (the sandbox's control endpoint does what its button does).
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	got := e.api(app, "GET", "/api/v1/payments/"+id, nil)
	if got.status != http.StatusOK || got.json(t)["statusCode"] != "completed" || got.json(t)["paid"] != true {
		t.Fatalf("after paying: %d %s", got.status, got.body)
	}
	page := e.do(app, "GET", e.url+"/payments/"+id, nil, nil)
	if page.status != http.StatusOK || !bytes.Contains(page.body, []byte(`data-status="completed"`)) {
		t.Errorf("payment page: %d, want it to show completed:\n%.2000s", page.status, page.body)
	}
	list := e.api(app, "GET", "/api/v1/payments", nil)
	if ps, _ := list.json(t)["payments"].([]any); len(ps) == 0 || ps[0].(map[string]any)["trackingId"] != id {
		t.Errorf("list = %s, want the new payment first", list.body)
	}

	// Every access token issued so far is now expired: the next call refreshes once and succeeds.
	refreshesBefore := e.stat("tokenRequests", "refresh_token")
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	again := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": 3, "reference": "order-1002"})
	if again.status != http.StatusCreated {
		t.Fatalf("create after expire_tokens: %d %s", again.status, again.body)
	}
	if n := e.stat("tokenRequests", "refresh_token") - refreshesBefore; n != 1 {
		t.Errorf("refresh grants after expire_tokens = %v, want exactly 1", n)
	}
	if n := e.stat("refreshTokenReuse"); n != 0 {
		t.Errorf("refreshTokenReuse = %v, want 0", n)
	}

	// A dead refresh token and an expired access token: a clear "log in again".
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "revoke_refresh_tokens"})
	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "expire_tokens"})
	dead := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": "order-1003"})
	if dead.status != http.StatusUnauthorized || dead.json(t)["cause"] != "refresh_token_invalid" {
		t.Fatalf("after revoke: %d %s, want 401 refresh_token_invalid", dead.status, dead.body)
	}
	if ct := dead.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("problem content type = %q", ct)
	}
	if r := e.api(app, "GET", "/api/v1/session", nil); r.status != http.StatusUnauthorized || r.json(t)["cause"] != "not_authenticated" {
		t.Errorf("session after refresh failure: %d %s, want 401 not_authenticated", r.status, r.body)
	}
	// A browser coming back is sent to the login page, which says why.
	back := e.do(app, "GET", e.url+"/payments/"+id, nil, nil)
	if loc := back.header.Get("Location"); back.status != http.StatusSeeOther || !strings.Contains(loc, "ended=1") {
		t.Errorf("page after the session ended: %d %q, want a redirect to the login page saying it ended", back.status, loc)
	}
	if login := e.do(app, "GET", e.url+"/login?ended=1", nil, nil); !bytes.Contains(login.body, []byte("Your session has ended")) {
		t.Error("the login page does not say the session ended")
	}

	// Nothing secret in the logs: no JWT at all, no password.
	logs := e.logs.String()
	if strings.Contains(logs, "eyJ") || strings.Contains(logs, term.Password) {
		t.Errorf("logs contain a token or the password:\n%s", logs)
	}
}

// The same flow through the staff pages, with forms, redirects and the session cookie.
func TestEndToEndPages(t *testing.T) {
	e := startEnv(t, envOptions{})
	browser := e.client()
	term := e.sandbox.Terminals()[1]

	login := e.do(browser, "GET", e.url+"/", nil, nil)
	if login.status != http.StatusSeeOther || login.header.Get("Location") != "/login" {
		t.Fatalf("/ without a session: %d %s, want a redirect to /login", login.status, login.header.Get("Location"))
	}
	loginCSRF := "&csrf=" + url.QueryEscape(e.loginFormToken(browser)) // the login form's own token (csrf_test.go)
	wrong := e.form(browser, "/login", "username="+term.TerminalID+"&password=wrong"+loginCSRF)
	if wrong.status != http.StatusUnauthorized || !bytes.Contains(wrong.body, []byte("Wrong username or password")) {
		t.Errorf("wrong password: %d, want 401 and a message on the login page", wrong.status)
	}
	ok := e.form(browser, "/login", "username="+term.TerminalID+"&password="+term.Password+loginCSRF)
	if ok.status != http.StatusSeeOther || ok.header.Get("Location") != "/" {
		t.Fatalf("login: %d %s", ok.status, ok.body)
	}
	dash := e.do(browser, "GET", e.url+"/", nil, nil)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(dash.body)
	if dash.status != http.StatusOK || csrf == nil {
		t.Fatalf("dashboard: %d, no csrf token in it", dash.status)
	}

	// A form without this session's token is refused and creates nothing.
	before := e.apiRequests()
	forged := e.form(browser, "/payments", "amount=5&reference=x&csrf=not-the-token")
	if forged.status != http.StatusForbidden || e.apiRequests() != before {
		t.Errorf("form without the session's token: %d and %v Bead calls, want 403 and none", forged.status, e.apiRequests()-before)
	}
	bad := e.form(browser, "/payments", "amount=abc&reference=order-7&csrf="+string(csrf[1]))
	if bad.status != http.StatusBadRequest || !bytes.Contains(bad.body, []byte(`data-testid="field-error-amount"`)) {
		t.Errorf("amount abc: %d, want 400 and the amount's error on the form", bad.status)
	}
	made := e.form(browser, "/payments", "amount=7.25&reference=order-7&description=Cake&csrf="+string(csrf[1]))
	loc := made.header.Get("Location")
	if made.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/payments/") {
		t.Fatalf("create by form: %d %q %s", made.status, loc, made.body)
	}
	id := strings.TrimPrefix(loc, "/payments/")
	pay := e.do(browser, "GET", e.url+loc, nil, nil)
	for _, want := range []string{`data-status="created"`, "7.25", "order-7", `target="_blank"`, loc + "/qr.png"} {
		if !bytes.Contains(pay.body, []byte(want)) {
			t.Errorf("payment page lacks %q", want)
		}
	}
	qr := e.do(browser, "GET", e.url+loc+"/qr.png", nil, nil)
	if qr.status != http.StatusOK || !bytes.HasPrefix(qr.body, []byte("\x89PNG")) {
		t.Errorf("QR code: %d %q", qr.status, qr.header.Get("Content-Type"))
	}
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	if pay := e.do(browser, "GET", e.url+loc, nil, nil); !bytes.Contains(pay.body, []byte(`data-status="completed"`)) {
		t.Errorf("payment page after paying does not say completed")
	}

	// Log out: the session is gone, the dashboard asks for a login again.
	out := e.form(browser, "/logout", "csrf="+string(csrf[1]))
	if out.status != http.StatusSeeOther || out.header.Get("Location") != "/login?loggedout=1" {
		t.Errorf("logout: %d to %q, want a redirect to /login?loggedout=1", out.status, out.header.Get("Location"))
	}
	// Regression: the login page after a logout said nothing. It now confirms the logout with a fixed,
	// announced notice; the flag selects the text, the URL never supplies it.
	flash := func(path string) *goquery.Selection {
		t.Helper()
		r := e.do(browser, "GET", e.url+path, nil, nil)
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(r.body))
		if r.status != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %d %v", path, r.status, err)
		}
		return doc.Find(`[data-testid="flash"]`)
	}
	if f := flash(out.header.Get("Location")); f.Length() != 1 || f.Text() != "You are logged out." || f.AttrOr("role", "") != "status" {
		t.Errorf("login page after logout: flash %q (role %q), want one role=status notice \"You are logged out.\"", f.Text(), f.AttrOr("role", ""))
	}
	for _, q := range []string{"/login", "/login?loggedout=%3Cb%3Ehacked%3C%2Fb%3E", "/login?loggedout=You+won&ended=0"} {
		if f := flash(q); f.Length() != 0 {
			t.Errorf("GET %s shows the notice %q; only loggedout=1 may, and with its own text", q, f.Text())
		}
	}
	if r := e.do(browser, "GET", e.url+"/", nil, nil); r.status != http.StatusSeeOther {
		t.Errorf("dashboard after logout: %d, want a redirect to /login", r.status)
	}
}

func (e *env) form(c *http.Client, path, body string) reply {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.url)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// Bad input gets a clear problem and reaches Bead not at all.
func TestBadInputNeverReachesBead(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		header map[string]string
		status int
		cause  string
	}{
		{"malformed JSON", "POST", "/api/v1/payments", `{"requestedAmount": "1.00",`, nil, 400, "invalid_request"},
		{"amount abc", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "abc", "reference": "r"}, nil, 400, "invalid_request"},
		{"negative amount", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "-5", "reference": "r"}, nil, 400, "invalid_request"},
		{"zero amount", "POST", "/api/v1/payments", map[string]any{"requestedAmount": 0, "reference": "r"}, nil, 400, "invalid_request"},
		{"too many decimals", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.005", "reference": "r"}, nil, 400, "invalid_request"},
		{"unknown field", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1", "reference": "r", "amount": 1}, nil, 400, "invalid_request"},
		{"body over the limit", "POST", "/api/v1/payments", `{"requestedAmount":"1","reference":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "invalid_request"},
		{"another terminal", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1", "reference": "r", "terminalId": e.sandbox.Terminals()[2].TerminalID}, nil, 403, "terminal_mismatch"},
		{"another merchant", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1", "reference": "r", "merchantId": e.sandbox.Terminals()[2].MerchantID}, nil, 403, "terminal_mismatch"},
		{"path traversal in the tracking id", "GET", "/api/v1/payments/..%2Fpayments%2Fcrypto", nil, nil, 400, "invalid_request"},
		{"tracking id with a dot", "GET", "/api/v1/payments/abc.def", nil, nil, 400, "invalid_request"},
		{"no CSRF header", "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1", "reference": "r"}, map[string]string{"X-CSRF": ""}, 403, "csrf_header_missing"},
		{"wrong content type", "POST", "/api/v1/payments", nil, map[string]string{"Content-Type": "text/plain"}, 415, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.apiRequests()
			h := map[string]string{"X-CSRF": "1"}
			for k, v := range tt.header {
				h[k] = v
			}
			r := e.do(app, tt.method, e.url+tt.path, tt.body, h)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if p := r.json(t); p["cause"] != tt.cause || p["requestId"] == "" || p["helpUrl"] == "" {
				t.Errorf("problem = %v, want cause %s with requestId and helpUrl", p, tt.cause)
			}
			if n := e.apiRequests() - before; n != 0 {
				t.Errorf("%v calls reached Bead, want none", n)
			}
		})
	}
}

func TestWrongCredentialsAPI(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	term := e.sandbox.Terminals()[0]
	r := e.api(e.client(), "POST", "/api/v1/session", map[string]string{"username": term.TerminalID, "password": "nope"})
	if r.status != http.StatusUnauthorized || r.json(t)["cause"] != "invalid_credentials" {
		t.Errorf("wrong password: %d %s, want 401 invalid_credentials", r.status, r.body)
	}
	if r.header.Get("Set-Cookie") != "" && strings.Contains(r.header.Get("Set-Cookie"), "beadbff_session=") &&
		!strings.Contains(r.header.Get("Set-Cookie"), "beadbff_session=;") {
		t.Errorf("a failed login set a session cookie: %s", r.header.Get("Set-Cookie"))
	}
}

// The session cookie holds only an opaque id, is HttpOnly and SameSite=Lax, and changes at every login.
func TestSessionCookie(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	term := e.sandbox.Terminals()[0]
	cookieOf := func() *http.Cookie {
		t.Helper()
		r := e.api(app, "POST", "/api/v1/session", map[string]string{"username": term.TerminalID, "password": term.Password})
		if r.status != http.StatusCreated {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "beadbff_session" {
				return c
			}
		}
		t.Fatalf("no session cookie in %v", r.header)
		return nil
	}
	first := cookieOf()
	if !first.HttpOnly || first.SameSite != http.SameSiteLaxMode || first.Secure || first.Path != "/" {
		t.Errorf("cookie attributes: %+v", first)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(first.Value) {
		t.Errorf("cookie value %q is not a 256-bit opaque id", first.Value)
	}
	second := cookieOf()
	if second.Value == first.Value {
		t.Error("the session id did not change at login")
	}
}

func TestRedisUnreachableAtStart(t *testing.T) {
	port := freePort(t)
	var stderr syncBuffer
	err := run(context.Background(), nil, func(k string) string {
		return map[string]string{"REDIS_URL": "redis://127.0.0.1:" + strconv.Itoa(port), "BFF_ADDR": "127.0.0.1:0", "BFF_SANDBOX_ADDR": "127.0.0.1:0"}[k]
	}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("run with an unreachable Redis = %v, want an error naming REDIS_URL", err)
	}
}

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		code int
		want []string
	}{
		{"defaults", nil, 0, []string{"configuration OK", "demo"}},
		{"problems", map[string]string{"BEAD_API_URL": "https://api.example", "BEAD_SCOPE": "profile", "CORS_ALLOWED_ORIGINS": "*"},
			2, []string{"BEAD_IDENTITY_URL", "BEAD_SCOPE", "CORS_ALLOWED_ORIGINS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"-check-config"}, func(k string) string { return tt.vars[k] }, &out, io.Discard)
			code := 0
			if ee, ok := err.(exitError); ok {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// A restart of the server keeps every session: they live in Redis, sealed with SESSION_KEYS.
func TestRestartKeepsSessions(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL})
	app := e.client()
	e.login(app, 0)
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	e.stop = e.start(e.vars)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.api(app, "GET", "/api/v1/session", nil)
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session after restart: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sessions end after SESSION_IDLE_TIMEOUT without use, and use keeps them alive (the store's TTL moves
// along without the session being rewritten).
func TestIdleTimeout(t *testing.T) {
	e := startEnv(t, envOptions{vars: map[string]string{"SESSION_IDLE_TIMEOUT": "3s", "SESSION_MAX_LIFETIME": "1h"}})
	app := e.client()
	e.login(app, 0)
	for i := 0; i < 5; i++ { // 5 s of use, every second: longer than the idle timeout
		time.Sleep(time.Second)
		if r := e.api(app, "GET", "/api/v1/session", nil); r.status != http.StatusOK {
			t.Fatalf("after %d s of use: %d %s; use must keep the session alive", i+1, r.status, r.body)
		}
	}
	time.Sleep(3500 * time.Millisecond)
	if r := e.api(app, "GET", "/api/v1/session", nil); r.status != http.StatusUnauthorized {
		t.Errorf("after 3.5 s idle: %d %s, want 401", r.status, r.body)
	}
}
