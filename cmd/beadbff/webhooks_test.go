package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"beadbff/bff/sandbox"
)

// The sandbox's signing key in these tests, and BEAD_WEBHOOK_SECRET's form of it.
var (
	sandboxWebhookKey    = []byte("sandbox-webhook-signing-key-0001")
	sandboxWebhookSecret = base64.StdEncoding.EncodeToString(sandboxWebhookKey)
)

// tinyRetry is Bead's schedule (2, 4, 8, 16, 32 s) shrunk for tests.
var tinyRetry = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}

// webhookEnv starts beadbff with the sandbox signing with sandboxWebhookKey, retrying on retry, and
// sending every terminal's callbacks to beadbff's /webhooks/bead (set once beadbff listens, since its
// port is chosen at start). service adds BEAD_TERMINAL_USERNAME/PASSWORD of the first terminal.
func webhookEnv(t *testing.T, secret string, service bool, retry []time.Duration, noRedis bool) *env {
	t.Helper()
	e := startEnv(t, envOptions{
		sandbox: sandbox.Options{WebhookSecret: sandboxWebhookKey, WebhookRetry: retry},
		noRedis: noRedis,
		lateVars: func(_ string, sb *sandbox.Sandbox) map[string]string {
			vars := map[string]string{"BEAD_WEBHOOK_SECRET": secret}
			if service {
				term := sb.Terminals()[0]
				vars["BEAD_TERMINAL_USERNAME"], vars["BEAD_TERMINAL_PASSWORD"] = term.TerminalID, term.Password
			}
			return vars
		},
	})
	e.sb("POST", "/_sandbox/config", map[string]string{"webhookUrl": e.url + "/webhooks/bead"})
	return e
}

// storedStatus is the payment's status as beadbff recorded it, without a read from Bead: the list is
// served from the store alone.
func (e *env) storedStatus(c *http.Client, trackingID string) string {
	e.t.Helper()
	r := e.api(c, "GET", "/api/v1/payments", nil)
	list, _ := r.json(e.t)["payments"].([]any)
	for _, p := range list {
		if m, _ := p.(map[string]any); m["trackingId"] == trackingID {
			return m["statusCode"].(string)
		}
	}
	e.t.Fatalf("payment %s not listed: %s", trackingID, r.body)
	return ""
}

func (e *env) waitStored(c *http.Client, trackingID, status string, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for e.storedStatus(c, trackingID) != status {
		if time.Since(start) > within {
			e.t.Fatalf("payment %s not recorded as %s within %v (it is %s)\nlogs:\n%s", trackingID, status, within,
				e.storedStatus(c, trackingID), e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// sandboxDeliveries is the sandbox's log of webhook attempts for one payment.
func (e *env) sandboxDeliveries(trackingID string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	var all []map[string]any
	if err := json.Unmarshal(e.sb("GET", "/_sandbox/webhooks", nil).body, &all); err != nil {
		e.t.Fatal(err)
	}
	for _, d := range all {
		if d["trackingId"] == trackingID {
			out = append(out, d)
		}
	}
	return out
}

// metric reads one sample of beadbff's /metrics ("" labels: the first sample of the name).
func (e *env) metric(name, labels string) float64 {
	e.t.Helper()
	r := e.do(http.DefaultClient, "GET", e.url+"/metrics", nil, nil)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindSubmatch(r.body)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return f
}

// The sandbox's signed webhook reaches beadbff through run, is verified, stored, confirmed with one read
// from Bead (the service account of BEAD_TERMINAL_USERNAME), and a re-sent delivery changes nothing.
func TestWebhookEndToEnd(t *testing.T) {
	e := webhookEnv(t, sandboxWebhookSecret, true, tinyRetry, false)
	app := e.client()
	e.login(app, 0)
	created := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "12.50", "reference": "hook-1"}).json(t)
	id := created["trackingId"].(string)

	reads := e.stat("apiRequests", "200")
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	took := e.waitStored(app, id, "completed", 5*time.Second)
	t.Logf("sandbox status change to completed recorded by beadbff in %v (webhook, verification, one confirming read)", took.Round(time.Millisecond))
	ds := e.sandboxDeliveries(id)
	if len(ds) != 1 || ds[0]["httpStatus"] != float64(200) || ds[0]["outcome"] != "delivered" {
		t.Fatalf("sandbox deliveries %v, want one delivered with 200", ds)
	}
	// The confirming read: exactly one tracking call beyond the service login's (the list reads none).
	if got := e.stat("apiRequests", "200") - reads; got != 1 {
		t.Errorf("%v successful API calls to Bead after the change, want 1 confirming read", got)
	}

	// Bead retries and double deliveries: the sandbox re-sends the same change. 2xx, nothing changes.
	reads = e.stat("apiRequests", "200")
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	deadline := time.Now().Add(3 * time.Second)
	for e.metric("beadbff_webhook_deliveries_total", `{check="",outcome="duplicate"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the repeat was not counted as a duplicate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ds := e.sandboxDeliveries(id); len(ds) != 2 || ds[1]["httpStatus"] != float64(200) {
		t.Errorf("the repeat was answered %v, want 200", ds)
	}
	time.Sleep(100 * time.Millisecond)
	if got := e.stat("apiRequests", "200") - reads; got != 0 {
		t.Errorf("a duplicate caused %v calls to Bead, want none", got)
	}
	if n := e.metric("beadbff_webhook_confirmations_total", `{outcome="confirmed"}`); n != 1 {
		t.Errorf("confirmations %v, want 1", n)
	}
}

// A delivery signed with the wrong secret is refused with 403 (nothing stored); the sandbox retries on
// Bead's schedule, the next attempt carries the right signature and is accepted.
func TestWebhookRefusedThenRetriedAndAccepted(t *testing.T) {
	e := webhookEnv(t, sandboxWebhookSecret, false, tinyRetry, true)
	app := e.client()
	e.login(app, 0)
	id := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "3.00", "reference": "hook-retry"}).json(t)["trackingId"].(string)

	e.sb("POST", "/_sandbox/faults", map[string]any{"kind": "webhook_bad_secret", "count": 1})
	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "processing"})
	deadline := time.Now().Add(5 * time.Second)
	var ds []map[string]any
	for {
		ds = e.sandboxDeliveries(id)
		if len(ds) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ds) != 2 {
		t.Fatalf("sandbox attempts %v, want a refused one and an accepted retry", ds)
	}
	first, second := ds[0], ds[1]
	if first["httpStatus"] != float64(403) || first["outcome"] != "failed" || fmt.Sprint(first["faults"]) != "[webhook_bad_secret]" {
		t.Errorf("first attempt %v, want 403 with the bad-secret fault", first)
	}
	if second["httpStatus"] != float64(200) || second["outcome"] != "delivered" || second["attempt"] != float64(2) {
		t.Errorf("retry %v, want attempt 2 delivered with 200", second)
	}
	if n := e.metric("beadbff_webhook_deliveries_total", `{check="signature_mismatch",outcome="refused"}`); n != 1 {
		t.Errorf("refusals counted %v, want 1", n)
	}
	if n := e.metric("beadbff_webhook_deliveries_total", `{check="",outcome="accepted"}`); n != 1 {
		t.Errorf("acceptances counted %v, want 1", n)
	}
}

// The operator's mistake, fixed while Bead retries: beadbff starts with a wrong BEAD_WEBHOOK_SECRET, so
// deliveries are refused (403, the check named); staff press "register this server's webhook", the
// secret Bead returns is stored sealed, and the sandbox's next retry is accepted.
func TestWebhookSecretFixedByRegistrationWhileBeadRetries(t *testing.T) {
	wrong := base64.StdEncoding.EncodeToString([]byte("not-the-sandbox-key-000000000000"))
	slow := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond, 2400 * time.Millisecond, 4800 * time.Millisecond}
	e := webhookEnv(t, wrong, true, slow, false)
	staff := e.client()
	e.login(staff, 0)
	id := e.api(staff, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "4.00", "reference": "hook-fix"}).json(t)["trackingId"].(string)

	e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
	deadline := time.Now().Add(3 * time.Second)
	for len(e.sandboxDeliveries(id)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery attempt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := e.sandboxDeliveries(id)[0]; d["httpStatus"] != float64(403) {
		t.Fatalf("first attempt %v, want 403", d)
	}
	page := e.do(staff, "GET", e.url+"/webhooks", nil, nil)
	if page.status != 200 || !strings.Contains(string(page.body), `data-check="signature_mismatch"`) {
		t.Fatalf("webhooks page %d does not list the refusal", page.status)
	}
	if strings.Contains(string(page.body), sandboxWebhookSecret) || strings.Contains(string(page.body), wrong) {
		t.Fatal("the webhooks page shows a secret")
	}
	m := csrfField.FindSubmatch(page.body)
	if m == nil {
		t.Fatal("no csrf field on the webhooks page")
	}
	if r := e.form(staff, "/webhooks/register", "csrf=forged"); r.status != http.StatusForbidden {
		t.Errorf("register with a forged form token: %d, want 403", r.status)
	}
	if r := e.form(e.client(), "/webhooks/register", "csrf="+url.QueryEscape(string(m[1]))); r.status == http.StatusSeeOther {
		t.Error("register without a session succeeded")
	}
	r := e.form(staff, "/webhooks/register", "csrf="+url.QueryEscape(string(m[1])))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/webhooks?registered=1" {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	took := e.waitStored(staff, id, "completed", 10*time.Second)
	t.Logf("accepted on a retry %v after the registration", took.Round(time.Millisecond))
	ds := e.sandboxDeliveries(id)
	last := ds[len(ds)-1]
	if last["httpStatus"] != float64(200) || len(ds) < 2 {
		t.Errorf("attempts %v, want refusals then a 200", ds)
	}
	page = e.do(staff, "GET", e.url+"/webhooks?registered=1", nil, nil)
	body := string(page.body)
	for _, want := range []string{`data-testid="flash"`, "Registered: Bead now sends", e.url + "/webhooks/bead", `data-outcome="accepted"`, id} {
		if !strings.Contains(body, want) {
			t.Errorf("webhooks page lacks %s", want)
		}
	}
	if strings.Contains(body, sandboxWebhookSecret) {
		t.Error("the webhooks page shows the registered secret")
	}
	// The sandbox now sends this terminal's callbacks to the URL registered for it.
	if ds := e.sandboxDeliveries(id); ds[len(ds)-1]["url"] != e.url+"/webhooks/bead" {
		t.Errorf("last delivery went to %v", ds[len(ds)-1]["url"])
	}
}

// Each sandbox fault is refused with the check that names it, and changes nothing.
func TestWebhookFaultsAreRefused(t *testing.T) {
	e := webhookEnv(t, sandboxWebhookSecret, false, []time.Duration{}, true)
	app := e.client()
	e.login(app, 0)
	for _, tc := range []struct{ fault, check string }{
		{"webhook_bad_secret", "signature_mismatch"},
		{"webhook_old_timestamp", "timestamp_stale"},
		{"webhook_altered_body", "signature_mismatch"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			id := e.api(app, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1.00", "reference": tc.fault}).json(t)["trackingId"].(string)
			before := e.metric("beadbff_webhook_deliveries_total", `{check="`+tc.check+`",outcome="refused"}`)
			e.sb("POST", "/_sandbox/faults", map[string]any{"kind": tc.fault, "count": 1})
			e.sb("POST", "/_sandbox/payments/"+id+"/status", map[string]string{"statusCode": "completed"})
			deadline := time.Now().Add(3 * time.Second)
			for len(e.sandboxDeliveries(id)) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			ds := e.sandboxDeliveries(id)
			if len(ds) != 1 || ds[0]["httpStatus"] != float64(403) || ds[0]["outcome"] != "abandoned" {
				t.Fatalf("attempts %v, want one refused with 403 (no retries configured)", ds)
			}
			if n := e.metric("beadbff_webhook_deliveries_total", `{check="`+tc.check+`",outcome="refused"}`) - before; n != 1 {
				t.Errorf("refusals with check %s counted %v, want 1", tc.check, n)
			}
			if got := e.storedStatus(app, id); got != "created" {
				t.Errorf("a refused delivery changed the payment to %s", got)
			}
		})
	}
}
