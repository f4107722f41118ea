package main

import (
	"context"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"beadbff/bff/browsertest"
)

// Browser behaviour is proven in real Chromium, against beadbff on http://127.0.0.1:PORT and "merchant
// sites" on other origins. Two facts of the web decide what works where:
//   - An origin is scheme, host and port; a site is scheme and registrable domain. http://127.0.0.1:A
//     and http://127.0.0.1:B are two origins of one site; http://localhost:A and http://127.0.0.1:B are
//     two sites.
//   - beadbff's session cookie is SameSite=Lax: browsers send it on calls from any origin of its own site,
//     never on fetches from another site. So a front-end app must be same-site (app.example.com calling
//     pay.example.com); CORS alone cannot make a cross-site one work. The embedded checkout needs no
//     cookie, so any FRAME_ANCESTORS site can frame it.

// merchantSite is a second web server, the merchant's, reached as http://HOST:PORT.
type merchantSite struct {
	origin string
	close  func()
}

// startMerchant serves the merchant's pages on 127.0.0.1; host ("127.0.0.1" or "localhost") decides the
// origin the browser is sent to, and so its site.
func startMerchant(t *testing.T, host string) *merchantSite {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, frontEndApp)
	})
	mux.HandleFunc("GET /shop", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = shopPage.Execute(w, map[string]string{"Checkout": r.URL.Query().Get("checkout"), "Helper": r.URL.Query().Get("helper")})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(mux)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return &merchantSite{origin: fmt.Sprintf("http://%s:%d", host, ln.Addr().(*net.TCPAddr).Port), close: hs.Close}
}

// frontEndApp is a merchant's single-page app calling beadbff's JSON API with credentials.
const frontEndApp = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Front-end app</title></head>
<body><h1>Merchant front-end</h1><pre id="out"></pre><script>
const json = {"Content-Type": "application/json", "X-CSRF": "1"};
async function call(url, init) {
  try {
    const r = await fetch(url, Object.assign({credentials: "include"}, init));
    let body = null;
    try { body = await r.json(); } catch (e) {}
    return {status: r.status, body: body, requestId: r.headers.get("X-Request-Id"), type: r.headers.get("Content-Type")};
  } catch (e) {
    return {status: 0, error: e.name + ": " + e.message};
  }
}
async function runAPI(bff, username, password, otherTerminal) {
  const out = {};
  out.login = await call(bff + "/api/v1/session", {method: "POST", headers: json, body: JSON.stringify({username, password})});
  out.whoami = await call(bff + "/api/v1/session", {});
  out.create = await call(bff + "/api/v1/payments", {method: "POST", headers: json,
    body: JSON.stringify({requestedAmount: "9.99", reference: "spa-order-1"})});
  out.mismatch = await call(bff + "/api/v1/payments", {method: "POST", headers: json,
    body: JSON.stringify({requestedAmount: "1.00", reference: "spa-order-2", terminalId: otherTerminal})});
  document.getElementById("out").textContent = JSON.stringify(out, null, 2);
  return out;
}
</script></body></html>`

// shopPage is a merchant's page that frames a checkout with beadbff-embed.js and records its events.
var shopPage = template.Must(template.New("shop").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Merchant shop</title>
<style>body{font-family:system-ui,sans-serif;margin:0;background:#eef1f5}header{background:#1f2937;color:#fff;padding:12px 16px}
main{max-width:760px;margin:0 auto;padding:16px}.cart{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:12px}</style></head>
<body><header><strong>Bead Coffee Roasters · shop</strong></header><main>
<div class="cart"><h1>Checkout</h1><p>2 × Flat white. Pay below.</p><p id="notice">Waiting for your payment…</p></div>
<div id="pay" data-beadbff-checkout="{{.Checkout}}"></div></main>
<script>
window.__events = [];
document.getElementById("pay").addEventListener("beadbff:payment.status", function (e) {
  window.__events.push(e.detail);
  if (e.detail.paid) document.getElementById("notice").textContent = "Paid: thank you! (" + e.detail.statusCode + ")";
});
</script>
<script src="{{.Helper}}"></script>
</body></html>`))

// browserStep fails the test with a screenshot when a browser step fails (browsertest.Check bound to t
// and ctx).
func browserStep(t *testing.T, ctx context.Context) func(what string, err error) {
	return func(what string, err error) {
		t.Helper()
		browsertest.Check(t, ctx, what, err)
	}
}

type apiCall struct {
	Status    int            `json:"status"`
	Body      map[string]any `json:"body"`
	RequestID string         `json:"requestId"`
	Type      string         `json:"type"`
	Error     string         `json:"error"`
}

type apiRun struct {
	Login, Whoami, Create, Mismatch apiCall
}

func runFrontEnd(t *testing.T, ctx context.Context, appURL, bffURL string, username, password, other string) apiRun {
	t.Helper()
	step := browserStep(t, ctx)
	step("open the front-end app", chromedp.Do(ctx, chromedp.Navigate(appURL), chromedp.WaitVisible(chromedp.CSS("h1"))))
	out, err := chromedp.Run(ctx, chromedp.Evaluate[apiRun](
		fmt.Sprintf("runAPI(%q, %q, %q, %q)", bffURL, username, password, other), chromedp.EvalAwaitPromise))
	step("run the front-end app", err)
	return out
}

// (1) A front-end app on an allowed origin of beadbff's own site calls the API with credentials: it logs
// in, creates a payment and reads a 403 problem. (1b) The same app on an allowed origin of another site
// logs in (the answer is readable: CORS allows it) but its next call has no session, because the browser
// does not send a SameSite=Lax cookie on a cross-site fetch. (2) The app on an origin that is not listed
// is stopped by the browser, and the server logged the refusal.
func TestBrowserFrontEndAppCORS(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	sameSite := startMerchant(t, "127.0.0.1") // another origin, same site as beadbff
	crossSite := startMerchant(t, "localhost")
	unlisted := startMerchant(t, "127.0.0.1")
	e := startEnv(t, envOptions{vars: map[string]string{"CORS_ALLOWED_ORIGINS": sameSite.origin + "," + crossSite.origin}})
	term, other := e.sandbox.Terminals()[0], e.sandbox.Terminals()[2]
	ctx := browsertest.New(t, browsertest.Options{})

	t.Run("allowed origin, same site", func(t *testing.T) {
		out := runFrontEnd(t, ctx, sameSite.origin+"/app", e.url, term.TerminalID, term.Password, other.TerminalID)
		if out.Login.Status != 201 || out.Whoami.Status != 200 || out.Whoami.Body["terminalId"] != term.TerminalID {
			t.Fatalf("login %+v, whoami %+v: want 201 and 200 for %s", out.Login, out.Whoami, term.TerminalID)
		}
		if out.Create.Status != 201 || out.Create.Body["trackingId"] == nil || out.Create.RequestID == "" {
			t.Errorf("create: %+v, want 201 with a trackingId and a readable X-Request-Id", out.Create)
		}
		m := out.Mismatch
		if m.Status != 403 || m.Body["cause"] != "terminal_mismatch" || m.Type != "application/problem+json" || m.RequestID != m.Body["requestId"] {
			t.Errorf("problem as the app read it: %+v, want 403 terminal_mismatch problem+json with its X-Request-Id", m)
		}
		browsertest.Screenshot(t, ctx, "cors-front-end-same-site")
	})

	t.Run("allowed origin, another site: no cookie on cross-site fetches", func(t *testing.T) {
		out := runFrontEnd(t, ctx, crossSite.origin+"/app", e.url, term.TerminalID, term.Password, other.TerminalID)
		if out.Login.Status != 201 {
			t.Fatalf("login from %s: %+v, want 201 (CORS allows the origin)", crossSite.origin, out.Login)
		}
		if out.Whoami.Status != 401 || out.Whoami.Body["cause"] != "not_authenticated" {
			t.Errorf("whoami after a cross-site login: %+v; want 401 not_authenticated, since SameSite=Lax keeps the cookie "+
				"off cross-site fetches (if this now passes, the browser's cookie rules changed: revisit README)", out.Whoami)
		}
		if out.Create.Status != 401 {
			t.Errorf("create after a cross-site login: %+v, want 401", out.Create)
		}
	})

	t.Run("origin not listed: the browser blocks, the server refuses and logs", func(t *testing.T) {
		grants := e.stat("tokenRequests", "password")
		out := runFrontEnd(t, ctx, unlisted.origin+"/app", e.url, term.TerminalID, term.Password, other.TerminalID)
		for name, c := range map[string]apiCall{"login": out.Login, "whoami": out.Whoami, "create": out.Create} {
			if c.Status != 0 || !strings.HasPrefix(c.Error, "TypeError") {
				t.Errorf("%s from %s: %+v, want the browser's TypeError (blocked by CORS)", name, unlisted.origin, c)
			}
		}
		if n := e.stat("tokenRequests", "password"); n != grants {
			t.Errorf("the blocked login reached the realm (%v grants)", n-grants)
		}
		if logs := e.logs.String(); !strings.Contains(logs, `"origin":"`+unlisted.origin+`"`) || !strings.Contains(logs, "cross-origin call refused") {
			t.Errorf("no refusal naming %s in the logs", unlisted.origin)
		}
	})
}

// frameEvents reads what the shop page received from the framed checkout.
func frameEvents(ctx context.Context) ([]map[string]any, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]map[string]any](`window.__events || []`))
}

// frameTree lists the page's frames, url and (for a frame that did not load) unreachableUrl.
func frameTree(ctx context.Context) ([]*cdp.Frame, error) {
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (page.GetFrameTreeResult, error) {
		return cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
	})
	if err != nil {
		return nil, err
	}
	var frames []*cdp.Frame
	var walk func(*page.FrameTree)
	walk = func(ft *page.FrameTree) {
		frames = append(frames, ft.Frame)
		for _, c := range ft.ChildFrames {
			walk(c)
		}
	}
	walk(res.FrameTree)
	return frames, nil
}

// (3) A merchant page on another site frames the checkout with beadbff-embed.js; the shopper pays (the
// sandbox completes the payment) and the page hears it through postMessage, relayed as a DOM event.
// (4) A site that is not in FRAME_ANCESTORS tries the same and the browser refuses to render the frame.
func TestBrowserEmbeddedCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	shop := startMerchant(t, "localhost") // another site: the checkout works without any cookie
	stranger := startMerchant(t, "127.0.0.1")
	probe := startEnv(t, envOptions{noRedis: true}) // the sandbox seeds the same terminals every time
	term := probe.sandbox.Terminals()[0]
	e := startEnv(t, envOptions{vars: map[string]string{
		"FRAME_ANCESTORS":        shop.origin,
		"BEAD_TERMINAL_USERNAME": term.TerminalID, "BEAD_TERMINAL_PASSWORD": term.Password,
	}})
	p := e.createPayment(0, "12.50", "order-1001")
	checkout, trackingID := p["checkoutUrl"].(string), p["trackingId"].(string)
	helper := e.url + "/embed/beadbff-embed.js"
	ctx := browsertest.New(t, browsertest.Options{Timeout: 90 * time.Second})
	step := browserStep(t, ctx)

	var mu sync.Mutex
	var console []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok {
			mu.Lock()
			console = append(console, e.Entry.Text)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	step("enable the log domain", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{})
		return err
	})))

	t.Run("listed site frames the checkout and hears the payment", func(t *testing.T) {
		shopURL := shop.origin + "/shop?checkout=" + checkout + "&helper=" + helper
		step("open the shop", chromedp.Do(ctx, chromedp.Navigate(shopURL), chromedp.WaitVisible(chromedp.CSS("#pay iframe"))))
		first, err := chromedp.Run(ctx, chromedp.Poll[map[string]any](`window.__events.length > 0 && window.__events[0]`,
			chromedp.WithPollingTimeout(15*time.Second)))
		step("hear the checkout's first status", err)
		if first["statusCode"] != "created" || first["trackingId"] != trackingID || first["paid"] != false {
			t.Errorf("first event %v, want created for %s", first, trackingID)
		}
		height, err := chromedp.Run(ctx, chromedp.Poll[string](`(function(){var h=document.querySelector("#pay iframe").style.height;return h!=="560px"&&h})()`,
			chromedp.WithPollingTimeout(10*time.Second)))
		step("see the frame fitted to the checkout", err)
		t.Logf("frame height after resize: %s", height)
		browsertest.Screenshot(t, ctx, "embed-shop-waiting")

		e.sb("POST", "/_sandbox/payments/"+trackingID+"/status", map[string]string{"statusCode": "completed"})
		start := time.Now()
		paid, err := chromedp.Run(ctx, chromedp.Poll[map[string]any](
			`window.__events.filter(function(e){return e.statusCode==="completed"})[0]`, chromedp.WithPollingTimeout(30*time.Second)))
		step("hear that the payment completed", err)
		t.Logf("the shop heard completed %s after the payment", time.Since(start).Round(100*time.Millisecond))
		if paid["paid"] != true || paid["final"] != true || paid["trackingId"] != trackingID {
			t.Errorf("completed event %v, want paid and final", paid)
		}
		notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#notice")))
		step("read the shop's notice", err)
		if !strings.Contains(notice, "Paid") {
			t.Errorf("shop notice %q", notice)
		}
		browsertest.Screenshot(t, ctx, "embed-shop-paid")
	})

	t.Run("unlisted site: the browser refuses to frame it", func(t *testing.T) {
		mu.Lock()
		console = nil
		mu.Unlock()
		p2 := e.createPayment(0, "3.00", "framed-by-stranger")
		strangerURL := stranger.origin + "/shop?checkout=" + p2["checkoutUrl"].(string) + "&helper=" + helper
		step("open the stranger's page", chromedp.Do(ctx, chromedp.Navigate(strangerURL), chromedp.WaitVisible(chromedp.CSS("#pay iframe"))))
		// The frame's script never runs, so nothing is ever posted to this page.
		step("wait", chromedp.Do(ctx, chromedp.Sleep(4*time.Second)))
		if evs, err := frameEvents(ctx); err != nil || len(evs) != 0 {
			t.Errorf("events on a page outside FRAME_ANCESTORS: %v %v, want none", evs, err)
		}
		frames, err := frameTree(ctx)
		step("read the frame tree", err)
		var child *cdp.Frame
		for _, f := range frames[1:] {
			child = f
		}
		if child == nil {
			t.Fatal("no child frame in the tree")
		}
		t.Logf("child frame: url %q, unreachableUrl %q", child.URL, child.UnreachableURL)
		if strings.HasPrefix(child.URL, e.url) || !strings.HasPrefix(child.UnreachableURL, p2["checkoutUrl"].(string)) {
			t.Errorf("child frame url %q, unreachableUrl %q: want the browser's error page in place of the checkout",
				child.URL, child.UnreachableURL)
		}
		mu.Lock()
		refused := strings.Join(console, "\n")
		mu.Unlock()
		t.Logf("browser console: %s", refused)
		if !strings.Contains(refused, "frame-ancestors") {
			t.Errorf("the browser did not report a frame-ancestors refusal")
		}
		browsertest.Screenshot(t, ctx, "embed-refused-by-browser")
	})
}

// (5) Screenshots of the dashboard, a payment page, the embedded checkout and the help page at desktop
// (1280 px) and phone (375 px) widths, saved as test artifacts to be looked at.
func TestBrowserScreenshots(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	shop := startMerchant(t, "localhost")
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"FRAME_ANCESTORS": shop.origin}})
	term := e.sandbox.Terminals()[0]
	for _, ref := range []string{"order-1001", "order-1002"} {
		e.createPaymentAs(term.TerminalID, term.Password, "12.50", ref)
	}
	p := e.createPayment(0, "42.00", "order-1003")
	e.sb("POST", "/_sandbox/payments/"+p["trackingId"].(string)+"/status", map[string]string{"statusCode": "completed"})
	ctx := browsertest.New(t, browsertest.Options{Timeout: 90 * time.Second})
	step := browserStep(t, ctx)
	step("log in", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#username`), term.TerminalID),
		chromedp.SendKeys(chromedp.CSS(`#password`), term.Password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="payments-table"]`)),
	))
	shots := []struct{ name, url, ready string }{
		{"dashboard", e.url + "/", `[data-testid="payments-table"]`},
		{"payment", e.url + "/payments/" + p["trackingId"].(string), `[data-testid="payment-status"][data-status="completed"]`},
		{"embed", p["checkoutUrl"].(string), `[data-testid="checkout"]`},
		{"embed-in-shop", shop.origin + "/shop?checkout=" + e.createPayment(0, "7.25", "order-1004")["checkoutUrl"].(string) +
			"&helper=" + e.url + "/embed/beadbff-embed.js", `#pay iframe`},
		{"help", e.url + "/help/403", `[data-testid="help-403"]`},
	}
	for _, width := range []struct {
		name string
		w, h int64
		opts []chromedp.EmulateViewportOption
	}{{"desktop", 1280, 900, nil}, {"phone", 375, 812, []chromedp.EmulateViewportOption{chromedp.EmulateMobile}}} {
		step("set the viewport", chromedp.Do(ctx, chromedp.EmulateViewport(width.w, width.h, width.opts...)))
		for _, s := range shots {
			step(s.name, chromedp.Do(ctx, chromedp.Navigate(s.url), chromedp.WaitVisible(chromedp.CSS(s.ready)), chromedp.Sleep(700*time.Millisecond)))
			browsertest.Screenshot(t, ctx, width.name+"-"+s.name)
		}
		// Nothing may overflow the phone's width (a horizontal scrollbar is a broken layout).
		if width.name == "phone" {
			for _, s := range shots {
				step(s.name, chromedp.Do(ctx, chromedp.Navigate(s.url), chromedp.WaitVisible(chromedp.CSS(s.ready))))
				over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
				step("measure "+s.name, err)
				if over {
					t.Errorf("%s overflows a 375 px screen horizontally", s.name)
				}
			}
		}
	}
}

// createPaymentAs creates a payment for the terminal with the given login.
func (e *env) createPaymentAs(username, password, amount, reference string) {
	e.t.Helper()
	app := e.client()
	if r := e.api(app, "POST", "/api/v1/session", map[string]string{"username": username, "password": password}); r.status != http.StatusCreated {
		e.t.Fatalf("login: %d", r.status)
	}
	if r := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": amount, "reference": reference}); r.status != http.StatusCreated {
		e.t.Fatalf("create: %d %s", r.status, r.body)
	}
}
