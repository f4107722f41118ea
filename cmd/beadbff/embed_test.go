package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"beadbff/session/redistest"
)

const merchantOrigin = "http://localhost:3000" // FRAME_ANCESTORS of the embed tests

// createPayment creates a payment through the API as the sandbox's i-th terminal and returns it.
func (e *env) createPayment(i int, amount, reference string) map[string]any {
	e.t.Helper()
	app := e.client()
	e.login(app, i)
	r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": amount, "reference": reference, "description": "Embed test"})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

// checkoutStatus reads the embed's status endpoint, as the framed page's script does.
func (e *env) checkoutStatus(checkoutURL string) map[string]any {
	e.t.Helper()
	r := e.do(e.client(), "GET", checkoutURL+"/status", nil, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("checkout status: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

func TestEmbedCheckoutPage(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"FRAME_ANCESTORS": merchantOrigin + ",https://*.shop.example"}})
	p := e.createPayment(0, "12.50", "order-1001")
	co := p["checkoutUrl"].(string)

	// A shopper's browser: no cookie of ours at all; an attacker's query string changes nothing shown.
	r := e.do(e.client(), "GET", co+"?amount=0.01&reference=free&requestedAmount=0.01&parentOrigin="+merchantOrigin, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("checkout: %d %s", r.status, r.body)
	}
	body := string(r.body)
	for _, want := range []string{`data-testid="checkout-amount">12.50 USD<`, `data-testid="checkout-reference">order-1001<`,
		`href="` + p["paymentUrl"].(string) + `"`, `target="_blank"`, `rel="noopener noreferrer"`, `/qr.png"`,
		`data-parent-origin="` + merchantOrigin + `"`, `data-tracking-id="` + p["trackingId"].(string) + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("checkout page lacks %s", want)
		}
	}
	for _, never := range []string{"0.01", "free"} {
		if strings.Contains(body, never) {
			t.Errorf("checkout page shows %q from its URL", never)
		}
	}
	if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("checkout sets cookies %v; it must need and set none", sc)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors "+merchantOrigin+" https://*.shop.example") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("checkout CSP %q, want frame-ancestors from FRAME_ANCESTORS and no unsafe-inline", csp)
	}
	if r.header.Get("X-Frame-Options") != "" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("X-Frame-Options %q (want none), Cache-Control %q (want no-store)", r.header.Get("X-Frame-Options"), r.header.Get("Cache-Control"))
	}

	// Where status messages go: only a FRAME_ANCESTORS origin, named by parentOrigin or by the Referer.
	parent := regexp.MustCompile(`data-parent-origin="([^"]*)"`)
	for _, tc := range []struct {
		name, query, referer, want string
	}{
		{"listed parentOrigin", "?parentOrigin=" + merchantOrigin, "", merchantOrigin},
		{"pattern-matched parentOrigin", "?parentOrigin=https://eu.shop.example", "", "https://eu.shop.example"},
		{"unlisted parentOrigin", "?parentOrigin=https://evil.example", "", ""},
		{"unlisted parentOrigin, listed Referer", "?parentOrigin=https://evil.example", merchantOrigin + "/cart?x=1", merchantOrigin},
		{"listed Referer", "", "https://eu.shop.example/checkout", "https://eu.shop.example"},
		{"unlisted Referer", "", "https://evil.example/", ""},
		{"apex of the pattern", "?parentOrigin=https://shop.example", "", ""},
		{"nothing", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.referer != "" {
				h["Referer"] = tc.referer
			}
			got := parent.FindStringSubmatch(string(e.do(e.client(), "GET", co+tc.query, nil, h).body))
			if got == nil || got[1] != tc.want {
				t.Errorf("data-parent-origin = %v, want %q", got, tc.want)
			}
		})
	}

	// QR code from the stored URL; the helper script under a stable name, loadable from other sites.
	if qr := e.do(e.client(), "GET", co+"/qr.png", nil, nil); qr.status != http.StatusOK || !bytes.HasPrefix(qr.body, []byte("\x89PNG")) {
		t.Errorf("checkout QR: %d", qr.status)
	}
	js := e.do(e.client(), "GET", e.url+"/embed/beadbff-embed.js", nil, nil)
	if js.status != http.StatusOK || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") ||
		js.header.Get("Cross-Origin-Resource-Policy") != "cross-origin" || !bytes.Contains(js.body, []byte("beadbff:payment.status")) {
		t.Errorf("embed helper: %d %q %q", js.status, js.header.Get("Content-Type"), js.header.Get("Cross-Origin-Resource-Policy"))
	}
}

// What the shopper sees when there is no checkout to show: one calm sentence and a reference, in the
// frame, never a cause code, the help guide or anything of the staff pages.
func TestEmbedFailuresAreCalm(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnv(t, envOptions{redisURL: srv.URL, vars: map[string]string{"FRAME_ANCESTORS": merchantOrigin}})
	co := e.createPayment(0, "3.00", "calm")["checkoutUrl"].(string)
	staffOnly := []string{"help/403", "cause", "session_store_unavailable", "not_found", "Troubleshooting", "support", "Log in"}
	check := func(t *testing.T, r reply, status int, heading string) {
		t.Helper()
		body := string(r.body)
		if r.status != status || !strings.Contains(body, heading) || !strings.Contains(body, r.header.Get("X-Request-Id")) {
			t.Errorf("%d, want %d with %q and the request id as reference:\n%s", r.status, status, heading, body)
		}
		for _, s := range staffOnly {
			if strings.Contains(body, s) {
				t.Errorf("the shopper's page shows %q", s)
			}
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+merchantOrigin) {
			t.Errorf("failure page CSP %q: the merchant's frame would show the browser's refusal instead", csp)
		}
	}
	for name, u := range map[string]string{
		"malformed id":    e.url + "/embed/checkout/abc",
		"unknown id":      e.url + "/embed/checkout/" + strings.Repeat("A", 43),
		"unknown subpath": co + "/nope",
		"outside routes":  e.url + "/embed/elsewhere",
	} {
		t.Run(name, func(t *testing.T) {
			check(t, e.do(e.client(), "GET", u, nil, nil), 404, "This payment link does not work")
		})
	}
	if r := e.do(e.client(), "GET", e.url+"/embed/checkout/"+strings.Repeat("A", 43)+"/status", nil, nil); r.status != 404 ||
		r.json(t)["error"] != "not_found" {
		t.Errorf("unknown checkout status: %d %s", r.status, r.body)
	}
	srv.Stop()
	t.Run("session store down", func(t *testing.T) {
		check(t, e.do(e.client(), "GET", co, nil, nil), 503, "This payment cannot be shown right now")
		if r := e.do(e.client(), "GET", co+"/status", nil, nil); r.status != 503 || strings.Contains(string(r.body), "session") {
			t.Errorf("status while the store is down: %d %s", r.status, r.body)
		}
	})
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
}

// createAndLogOut creates a payment as terminal i's staff and logs out: the terminal then has no session,
// so (being the last holder) its token is gone too.
func (e *env) createAndLogOut(i int, amount, reference string) map[string]any {
	e.t.Helper()
	app := e.client()
	e.login(app, i)
	r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": amount, "reference": reference})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create: %d %s", r.status, r.body)
	}
	if out := e.api(app, "DELETE", "/api/v1/session", nil); out.status != http.StatusNoContent {
		e.t.Fatalf("logout: %d %s", out.status, out.body)
	}
	return r.json(e.t)
}

// The checkout asks Bead with its terminal's token: the one its staff logins keep, or the service
// account's login when BEAD_TERMINAL_USERNAME is that terminal's. With neither it serves the stored status.
func TestEmbedCheckoutStatusSources(t *testing.T) {
	t.Run("stored, then from Bead once staff are logged in", func(t *testing.T) {
		e := startEnv(t, envOptions{noRedis: true})
		logouts := e.stat("logouts")
		p := e.createAndLogOut(0, "4.00", "stored")
		if n := e.stat("logouts") - logouts; n != 1 {
			t.Errorf("the terminal's last logout ended %v realm sessions, want 1", n)
		}
		co, id := p["checkoutUrl"].(string), p["trackingId"].(string)
		e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
		before := e.apiRequests()
		if s := e.checkoutStatus(co); s["statusCode"] != "created" || e.apiRequests() != before {
			t.Errorf("no token of the terminal: %v after %v Bead calls, want the stored created and none", s, e.apiRequests()-before)
		}
		staff := e.client()
		e.login(staff, 0)                   // the terminal has a token again; nobody reads the payment
		time.Sleep(3100 * time.Millisecond) // the checkout asks Bead at most once per 3 s per payment (embedPollEvery)
		if s := e.checkoutStatus(co); s["statusCode"] != "completed" || s["final"] != true || s["paid"] != true {
			t.Errorf("with a staff login of the terminal: %v, want completed, final, paid (read from Bead)", s)
		}
	})
	t.Run("from Bead with service credentials", func(t *testing.T) {
		probe := startEnv(t, envOptions{noRedis: true}) // the sandbox seeds the same terminals every time
		term := probe.sandbox.Terminals()[0]
		e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
			"BEAD_TERMINAL_USERNAME": term.TerminalID, "BEAD_TERMINAL_PASSWORD": term.Password}})
		logins := e.stat("tokenRequests", "password")
		p := e.createAndLogOut(0, "5.00", "live")
		co, id := p["checkoutUrl"].(string), p["trackingId"].(string)
		e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
		if s := e.checkoutStatus(co); s["statusCode"] != "completed" || s["trackingId"] != id {
			t.Errorf("with service credentials: %v, want completed from Bead", s)
		}
		if n := e.stat("tokenRequests", "password") - logins; n != 2 {
			t.Errorf("%v password grants, want 2 (the staff login, then the service account's once staff had left)", n)
		}
		// Final now: further polls cost Bead nothing.
		before := e.apiRequests()
		for range 3 {
			e.checkoutStatus(co)
		}
		if n := e.apiRequests() - before; n != 0 {
			t.Errorf("%v Bead calls for a final payment's status", n)
		}
		// Another terminal's payment, its staff gone: the service token cannot read it, so the stored
		// status is served.
		other := e.createAndLogOut(2, "6.00", "other")
		e.sb("POST", "/_sandbox/payments/"+other["trackingId"].(string)+"/status", map[string]string{"statusCode": "completed"})
		if s := e.checkoutStatus(other["checkoutUrl"].(string)); s["statusCode"] != "created" {
			t.Errorf("another terminal's checkout: %v, want the stored created", s)
		}
		if strings.Contains(e.logs.String(), term.Password) {
			t.Error("the service password is in the logs")
		}
	})
}

// Many shoppers polling one checkout cost Bead at most one read per embedPollEvery (3 s) per process.
func TestEmbedStatusPollsAreThrottled(t *testing.T) {
	probe := startEnv(t, envOptions{noRedis: true})
	term := probe.sandbox.Terminals()[0]
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{
		"BEAD_TERMINAL_USERNAME": term.TerminalID, "BEAD_TERMINAL_PASSWORD": term.Password}})
	co := e.createPayment(0, "7.00", "busy")["checkoutUrl"].(string)
	before := e.apiRequests()
	for range 20 {
		var s map[string]any
		r := e.do(e.client(), "GET", co+"/status", nil, nil)
		if err := json.Unmarshal(r.body, &s); err != nil || s["statusCode"] != "created" {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
	}
	if n := e.apiRequests() - before; n < 1 || n > 2 {
		t.Errorf("20 polls within a moment made %v Bead calls, want 1 (2 if the 3 s boundary fell inside)", n)
	}
}
