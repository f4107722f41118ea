package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawRequest sends bytes as they are and returns the response, for requests net/http will not make.
func rawRequest(t *testing.T, base, raw string) *http.Response {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp
}

// Every answer carries X-Request-Id, whatever went wrong.
func TestBreakRequestIDOnEveryAnswer(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	host := strings.TrimPrefix(e.url, "http://")
	cases := []struct{ name, raw string }{
		{"404 page", "GET /nope HTTP/1.1\r\nHost: " + host + "\r\n\r\n"},
		{"404 api", "GET /api/v1/nope HTTP/1.1\r\nHost: " + host + "\r\n\r\n"},
		{"unknown method", "BREW /api/v1/session HTTP/1.1\r\nHost: " + host + "\r\n\r\n"},
		{"PUT on a GET route", "PUT /api/v1/payments/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\n\r\n"},
		{"413 body", "POST /api/v1/session HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("x", 200000)},
		{"huge header", "GET /api/v1/session HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n"},
		{"bad request line", "GET /api/v1/session HTTP/9.9\r\nHost: " + host + "\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawRequest(t, e.url, tc.raw)
			resp.Body.Close()
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("%d answer without X-Request-Id (headers %v)", resp.StatusCode, resp.Header)
			}
		})
	}
}

// A caller-sent X-Request-Id with odd characters is replaced, never echoed; a sane one is kept.
func TestBreakRequestIDEcho(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	c := e.client()
	r := e.do(c, "GET", e.url+"/healthz", nil, map[string]string{"X-Request-Id": "abc-12345678"})
	if r.header.Get("X-Request-Id") != "abc-12345678" {
		t.Errorf("sane id not kept: %q", r.header.Get("X-Request-Id"))
	}
	r = e.do(c, "GET", e.url+"/healthz", nil, map[string]string{"X-Request-Id": "<script>alert(1)</script>"})
	if strings.Contains(r.header.Get("X-Request-Id"), "<") {
		t.Errorf("odd id echoed: %q", r.header.Get("X-Request-Id"))
	}
}

// The post-login redirect stays on this server. Browsers strip tab, CR and LF from URLs, so a Location
// of "/\t/evil.example" is followed as "//evil.example": another host.
func TestBreakOpenRedirectAfterLogin(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	browser := e.client()
	term := e.sandbox.Terminals()[0]
	host := strings.TrimPrefix(e.url, "http://")
	loginToken := e.loginFormToken(browser) // the login form's own token and cookie (csrf_test.go)
	for _, next := range []string{"/\t/evil.example/", "/\\evil.example", "//evil.example", "/%09/evil.example"} {
		form := "username=" + term.TerminalID + "&password=" + url.QueryEscape(term.Password) + "&next=" + url.QueryEscape(next) +
			"&csrf=" + url.QueryEscape(loginToken)
		resp := rawRequest(t, e.url, "POST /login HTTP/1.1\r\nHost: "+host+"\r\nOrigin: "+e.url+"\r\nCookie: "+e.loginCookie(browser)+
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "+fmt.Sprint(len(form))+"\r\nConnection: close\r\n\r\n"+form)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther { // the login must work, or this test proves nothing
			t.Errorf("next=%q: login answered %d, want 303", next, resp.StatusCode)
		}
		loc := resp.Header.Get("Location")
		// What a browser does with the Location (WHATWG URL: strip ASCII tab and newline, "\" is "/").
		cleaned := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
		base, _ := url.Parse(e.url)
		if target, err := base.Parse(cleaned); err != nil || target.Host != base.Host {
			t.Errorf("next=%q: %d Location %q leads a browser to %v", next, resp.StatusCode, loc, target)
		}
	}
	// Already logged in, a plain link does it with no interaction: GET /login?next=/%09/evil.example.
	e.login(browser, 0)
	ck := e.sessionCookie(browser)
	resp := rawRequest(t, e.url, "GET /login?next=/%09/evil.example/ HTTP/1.1\r\nHost: "+host+"\r\nCookie: "+ck.Name+"="+ck.Value+"\r\nConnection: close\r\n\r\n")
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "\t") {
		t.Errorf("GET /login?next=/%%09/evil.example/ (logged in): %d Location %q, which a browser follows to evil.example", resp.StatusCode, loc)
	}
	// CR LF in next must never split the answer.
	resp = rawRequest(t, e.url, "GET /login?next=/%0d%0aSet-Cookie:%20injected=1 HTTP/1.1\r\nHost: "+host+"\r\nCookie: "+ck.Name+"="+ck.Value+"\r\nConnection: close\r\n\r\n")
	resp.Body.Close()
	if strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "injected") {
		t.Errorf("header injection through next: %v", resp.Header)
	}
}

// A retry with the same Idempotency-Key but a different amount is not the same request: it must not be
// answered 201 with the first payment (of another amount) as if the new one had been made.
func TestBreakIdempotencyKeyReusedWithAnotherAmount(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	h := map[string]string{"X-CSRF": "1", "Idempotency-Key": "order-77"}
	first := e.do(app, "POST", e.url+"/api/v1/payments", map[string]any{"requestedAmount": "10.00", "reference": "order-77"}, h)
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	second := e.do(app, "POST", e.url+"/api/v1/payments", map[string]any{"requestedAmount": "1000.00", "reference": "order-78"}, h)
	if second.status == http.StatusCreated || second.status == http.StatusOK {
		t.Errorf("same key, other body: %d with amount %v ref %v; want 409/422 (not the first payment passed off as this one)",
			second.status, second.json(t)["requestedAmount"], second.json(t)["reference"])
	}
}

// Two identical creates with one Idempotency-Key at once (a double click, a front-end retry) get one
// payment; both answers must point at a checkout page that works.
func TestBreakConcurrentSameKeyCheckout(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	ck := e.sessionCookie(app)
	out := make(chan reply, 2)
	for range 2 {
		go func() {
			c := &http.Client{Timeout: 10 * time.Second}
			out <- e.do(c, "POST", e.url+"/api/v1/payments", map[string]any{"requestedAmount": "3.00", "reference": "dbl"},
				map[string]string{"X-CSRF": "1", "Cookie": ck.Name + "=" + ck.Value, "Idempotency-Key": "dbl-1"})
		}()
	}
	a, b := <-out, <-out
	if a.status != http.StatusCreated || b.status != http.StatusCreated {
		t.Fatalf("creates: %d %s / %d %s", a.status, a.body, b.status, b.body)
	}
	ja, jb := a.json(t), b.json(t)
	if ja["trackingId"] != jb["trackingId"] {
		t.Fatalf("two payments for one key: %v %v", ja["trackingId"], jb["trackingId"])
	}
	if ja["checkoutUrl"] != jb["checkoutUrl"] {
		t.Errorf("one payment, two checkoutUrls %v and %v: one of them no longer finds the payment", ja["checkoutUrl"], jb["checkoutUrl"])
	}
}

// The checkoutUrl every create returns is "this server's embeddable page" for the payment; it must
// answer.
func TestBreakCheckoutURLAnswers(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "2.00", "reference": "co"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	co, _ := r.json(t)["checkoutUrl"].(string)
	got := e.do(e.client(), "GET", co, nil, nil)
	if got.status != http.StatusOK {
		t.Errorf("GET checkoutUrl %s: %d, want the checkout page", co, got.status)
	}
}

// Another terminal's payment: the API says terminal_mismatch (CONTRACT: "asked for another terminal's
// payment"), not "unknown", and shows no data of it.
func TestBreakCrossTerminalRead(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	a, b := e.client(), e.client()
	e.login(a, 0)
	e.login(b, 2) // another merchant
	r := e.api(a, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "5.00", "reference": "secret-ref-A"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.json(t)["trackingId"].(string)
	got := e.api(b, "GET", "/api/v1/payments/"+id, nil)
	if got.status == http.StatusOK || strings.Contains(string(got.body), "secret-ref-A") {
		t.Fatalf("terminal B read terminal A's payment: %d %s", got.status, got.body)
	}
	if c := got.json(t)["cause"]; c != "terminal_mismatch" && c != "not_found" {
		t.Errorf("cross-terminal read: %d cause %v, want terminal_mismatch (or not_found)", got.status, c)
	}
	if qr := e.do(b, "GET", e.url+"/payments/"+id+"/qr.png", nil, nil); qr.status == http.StatusOK {
		t.Errorf("terminal B got terminal A's QR code")
	}
}

// An underpaid payment: the API shows how much was paid (amounts as decimal strings), since the merchant
// must not fulfil and the shopper reclaims the rest.
func TestBreakPaidAmountShown(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	app := e.client()
	e.login(app, 0)
	r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "5.00", "reference": "under"})
	id := r.json(t)["trackingId"].(string)
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "underpaid"})
	got := e.api(app, "GET", "/api/v1/payments/"+id, nil)
	if got.status != http.StatusOK || got.json(t)["statusCode"] != "underpaid" || got.json(t)["paid"] != false {
		t.Fatalf("underpaid: %d %s", got.status, got.body)
	}
	if !strings.Contains(string(got.body), `"2.50"`) {
		t.Errorf("the paid amount (2.50 of 5.00) is nowhere in the answer: %s", got.body)
	}
}

// helpUrl is "a page of this server that explains the cause": every cause the API answers must have its
// section on /help/403.
func TestBreakHelpURLAnchorsExist(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	c := e.client()
	help := e.do(c, "GET", e.url+"/help/403", nil, nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/nope"},     // not_found
		{"GET", "/api/v1/payments"}, // not_authenticated
		{"POST", "/api/v1/session"}, // invalid_request (415)
	} {
		r := e.do(c, tc.method, e.url+tc.path, nil, map[string]string{"X-CSRF": "1"})
		p := r.json(t)
		hu, _ := p["helpUrl"].(string)
		_, frag, _ := strings.Cut(hu, "#")
		if !strings.Contains(string(help.body), fmt.Sprintf(`id="%s"`, frag)) {
			t.Errorf("%s %s: cause %v, helpUrl %s has no section on /help/403", tc.method, tc.path, p["cause"], hu)
		}
	}
}
