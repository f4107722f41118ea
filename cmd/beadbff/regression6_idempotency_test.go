package main

// Regressions of the sixth break-it review, end to end: idempotency keys against the sandbox, with the
// create's answer spoiled after the sandbox made the payment. Each test names the defect it guards against.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"beadbff/bff/sandbox"
)

// spoilingAPI stands between beadbff and the sandbox's payments API and passes every call through, but
// can spoil the answer to the next create after the sandbox has made the payment: "lose" holds the answer
// until beadbff gives up (BEAD_TIMEOUT), "unreadable" turns paymentUrls into a shape no client knows.
type spoilingAPI struct {
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	next    string // what happens to the next create's answer ("" nothing)
	creates int    // creates that reached Bead
}

func (s *spoilingAPI) spoilNext(how string) { s.mu.Lock(); s.next = how; s.mu.Unlock() }

func (s *spoilingAPI) createCount() int { s.mu.Lock(); defer s.mu.Unlock(); return s.creates }

func (s *spoilingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.EqualFold(r.URL.Path, "/payments/crypto") {
		s.proxy.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	how := s.next
	s.next = ""
	s.creates++
	s.mu.Unlock()
	if how == "" {
		s.proxy.ServeHTTP(w, r)
		return
	}
	made := httptest.NewRecorder()
	s.proxy.ServeHTTP(made, r.WithContext(context.WithoutCancel(r.Context()))) // the payment is made whatever beadbff does
	switch how {
	case "lose":
		select {
		case <-r.Context().Done(): // beadbff gave up waiting
		case <-time.After(10 * time.Second):
		}
	case "unreadable":
		var body map[string]any
		_ = json.Unmarshal(made.Body.Bytes(), &body)
		body["paymentUrls"] = 42
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}
}

// startSpoilingEnv is startEnv with beadbff's payments API behind a spoilingAPI and a 1 s BEAD_TIMEOUT.
func startSpoilingEnv(t *testing.T, o envOptions) (*env, *spoilingAPI) {
	t.Helper()
	spoil := &spoilingAPI{}
	o.lateVars = func(sandboxURL string, _ *sandbox.Sandbox) map[string]string {
		u, _ := url.Parse(sandboxURL)
		spoil.proxy = httputil.NewSingleHostReverseProxy(u)
		front := httptest.NewServer(spoil)
		t.Cleanup(front.Close)
		return map[string]string{"BEAD_API_URL": front.URL, "BEAD_TIMEOUT": "1s", "LOG_LEVEL": "warn"}
	}
	return startEnv(t, o), spoil
}

// keyedCreate creates a payment through the API of the server at base with the session cookie ck.
func (e *env) keyedCreate(base string, ck *http.Cookie, key, amount, reference string) reply {
	e.t.Helper()
	return e.do(&http.Client{Timeout: 20 * time.Second}, "POST", base+"/api/v1/payments",
		map[string]any{"requestedAmount": amount, "reference": reference},
		map[string]string{"X-CSRF": "1", "Cookie": ck.Name + "=" + ck.Value, "Idempotency-Key": key})
}

func wantProblemReply(t *testing.T, what string, r reply, status int, cause string) map[string]any {
	t.Helper()
	var body map[string]any
	_ = json.Unmarshal(r.body, &body)
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" || body["cause"] != cause {
		t.Errorf("%s: %d %s %s, want %d problem+json cause %s", what, r.status, r.header.Get("Content-Type"), r.body, status, cause)
	}
	return body
}

// Regression (defect 1): after a create's answer was lost (the sandbox made the payment for 12.50), the
// same Idempotency-Key with another amount, or the page first sent with the form's key edited, got the
// 12.50 payment recorded with the new details. The key's claim lives in Redis, so the other details are
// refused with 409 by any server behind it before Bead is asked, and the first details get the payment
// Bead made.
func TestBreak6KeyReusedAfterALostAnswerIsRefusedOnEveryServer(t *testing.T) {
	a, spoil := startSpoilingEnv(t, envOptions{})
	b := a.replica(t, nil)
	staff := a.client()
	a.login(staff, 0)
	ck := a.sessionCookie(staff)

	spoil.spoilNext("lose")
	if r := a.keyedCreate(a.url, ck, "order-2001-try", "12.50", "order-2001"); r.status != http.StatusGatewayTimeout {
		t.Fatalf("create whose answer is lost: %d %s, want 504", r.status, r.body)
	}
	creates := spoil.createCount()
	body := wantProblemReply(t, "the key with another amount, on the other server", b.keyedCreate(b.url, ck, "order-2001-try", "99.00", "order-2001"),
		http.StatusConflict, "invalid_request")
	if body["title"] != "Idempotency-Key already used" || spoil.createCount() != creates {
		t.Errorf("title %v, %d creates sent to Bead; want the Idempotency-Key 409 and none", body["title"], spoil.createCount()-creates)
	}
	ok := b.keyedCreate(b.url, ck, "order-2001-try", "12.50", "order-2001")
	if ok.status != http.StatusCreated || ok.json(t)["requestedAmount"] != "12.50" || a.stat("paymentsCreated") != 1 {
		t.Fatalf("the first details again: %d %s, %v payments at Bead; want 201 with the one payment", ok.status, ok.body, a.stat("paymentsCreated"))
	}

	// The form: the first-rendered page (its key, no "sent"), edited after a lost answer.
	page := a.newPaymentForm(staff)
	spoil.spoilNext("lose")
	if r := a.form(staff, "/payments", withDetails(page, "12.50", "order-2002")); r.status != http.StatusGatewayTimeout {
		t.Fatalf("form whose answer is lost: %d, want 504", r.status)
	}
	creates = spoil.createCount()
	refused := b.form(staff, "/payments", withDetails(page, "13.00", "order-2002"))
	if refused.status != http.StatusConflict || !strings.Contains(string(refused.body), "already sent with other details") || spoil.createCount() != creates {
		t.Fatalf("the first page edited, on the other server: %d, %d creates sent; want 409 and none:\n%.1500s", refused.status, spoil.createCount()-creates, refused.body)
	}
	again := hiddenFields(t, refused.body)
	if again.Get("formKey") == page.Get("formKey") || again.Get("sent") != "" {
		t.Errorf("form after the refusal: key %q (was %q), sent %q; want a new key", again.Get("formKey"), page.Get("formKey"), again.Get("sent"))
	}
	if r := b.form(staff, "/payments", withDetails(again, "13.00", "order-2002")); r.status != http.StatusSeeOther || a.stat("paymentsCreated") != 3 {
		t.Errorf("sent with its new key: %d, %v payments at Bead; want the 13.00 payment made", r.status, a.stat("paymentsCreated"))
	}
}

// Regression (defect 2): the sandbox made the payment but its answer could not be read; the form was lost
// to a 500 page, and the next form's new key made a second payment. Now the form comes back (502) with its
// key, and sent again it lands on the payment made; the API says to retry under the same key.
func TestBreak6UnreadableCreateAnswerKeepsTheFormEndToEnd(t *testing.T) {
	e, spoil := startSpoilingEnv(t, envOptions{noRedis: true})
	staff := e.client()
	e.login(staff, 0)

	page := e.newPaymentForm(staff)
	spoil.spoilNext("unreadable")
	r := e.form(staff, "/payments", withDetails(page, "6.10", "unreadable-form"))
	if r.status != http.StatusBadGateway {
		t.Fatalf("unreadable answer to the form: %d, want 502 and the form:\n%.1500s", r.status, r.body)
	}
	again := hiddenFields(t, r.body)
	if again.Get("formKey") != page.Get("formKey") || again.Get("sent") == "" {
		t.Errorf("form after the unreadable answer: key %q (was %q), sent %q; want the same key and sent", again.Get("formKey"), page.Get("formKey"), again.Get("sent"))
	}
	if done := e.form(staff, "/payments", withDetails(again, "6.10", "unreadable-form")); done.status != http.StatusSeeOther || e.stat("paymentsCreated") != 1 {
		t.Errorf("sent again: %d, %v payments at Bead; want the payment made and no second", done.status, e.stat("paymentsCreated"))
	}

	ck := e.sessionCookie(staff)
	spoil.spoilNext("unreadable")
	body := wantProblemReply(t, "unreadable answer to the API", e.keyedCreate(e.url, ck, "unreadable-api", "6.20", "unreadable-api"), http.StatusBadGateway, "unknown")
	if d, _ := body["detail"].(string); !strings.Contains(d, "same Idempotency-Key") {
		t.Errorf("detail %q, want it to say to retry with the same Idempotency-Key", d)
	}
	if ok := e.keyedCreate(e.url, ck, "unreadable-api", "6.20", "unreadable-api"); ok.status != http.StatusCreated || e.stat("paymentsCreated") != 2 {
		t.Errorf("retry: %d, %v payments at Bead; want 201 and one payment for it", ok.status, e.stat("paymentsCreated"))
	}
}

// Regression (defect 3): a 201 to 255-character Idempotency-Key was dropped for a fresh one, so a retry
// made a second payment at Bead. Now a 255-character key is honoured and a longer one refused (400)
// before Bead is asked.
func TestBreak6LongIdempotencyKeyEndToEnd(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true, vars: map[string]string{"LOG_LEVEL": "warn"}})
	staff := e.client()
	e.login(staff, 0)
	ck := e.sessionCookie(staff)
	key := strings.Repeat("order-2003/", 23) + "ab" // 255 characters
	first := e.keyedCreate(e.url, ck, key, "7.10", "long-key")
	second := e.keyedCreate(e.url, ck, key, "7.10", "long-key")
	if first.status != http.StatusCreated || first.json(t)["trackingId"] != second.json(t)["trackingId"] || e.stat("paymentsCreated") != 1 {
		t.Errorf("a 255-character key twice: %d, %d; %v payments at Bead; want one payment", first.status, second.status, e.stat("paymentsCreated"))
	}
	calls := e.apiRequests()
	wantProblemReply(t, "a 256-character key", e.keyedCreate(e.url, ck, key+"c", "7.10", "long-key"), http.StatusBadRequest, "invalid_request")
	if n := e.apiRequests() - calls; n != 0 {
		t.Errorf("%v calls to Bead for a refused key, want none", n)
	}
}

// formOn posts a form to base+path with a session cookie, as the page of that server would.
func formOn(t *testing.T, base, path string, ck *http.Cookie, body string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Cookie", ck.Name+"="+ck.Value)
	c := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// Checked by a break-it review: one form sent at once to two beadbff processes behind one Redis is one
// payment, and both submits land on its page.
func TestBreak6FormDoubleSubmitOnTwoServersIsOnePayment(t *testing.T) {
	a := startEnv(t, envOptions{vars: map[string]string{"LOG_LEVEL": "warn"}})
	b := a.replica(t, nil)
	ck := a.loginOn(a, 0)
	app := a.client()
	a.login(app, 0)
	page := a.do(&http.Client{}, "GET", a.url+"/payments/new", nil, map[string]string{"Cookie": ck.Name + "=" + ck.Value})
	body := withDetails(hiddenFields(t, page.body), "6.60", "two-servers")
	before := a.stat("paymentsCreated")
	var wg sync.WaitGroup
	replies := make([]reply, 2)
	for i, base := range []string{a.url, b.url} {
		wg.Add(1)
		go func() { defer wg.Done(); replies[i] = formOn(t, base, "/payments", ck, body) }()
	}
	wg.Wait()
	for i, r := range replies {
		if r.status != http.StatusSeeOther {
			t.Errorf("submit %d: %d %.300s", i, r.status, r.body)
		}
	}
	if replies[0].header.Get("Location") != replies[1].header.Get("Location") {
		t.Errorf("the two submits landed on %q and %q", replies[0].header.Get("Location"), replies[1].header.Get("Location"))
	}
	if n := a.stat("paymentsCreated") - before; n != 1 {
		t.Errorf("Bead made %v payments, want 1", n)
	}
}

// DEFECT 4 end to end: a checkout URL with a doubled leading slash (a base URL ending in "/" joined with
// "/embed/checkout/…") is a 404 whose request line carries the whole checkout id.
