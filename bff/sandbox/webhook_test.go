package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// receiver is a merchant's webhook endpoint that checks signatures as bead-api.md says.
type receiver struct {
	url    string
	secret string // base64 signingSecret

	mu  sync.Mutex
	got []delivery
	// answer picks the status for the n-th delivery (from 0); nil: 200 when the signature
	// verifies, else 403, as the product's endpoint does.
	answer func(n int, d delivery) int
}

type delivery struct {
	signature string
	body      []byte
	verified  bool
}

func newReceiver(t *testing.T, secret []byte, answer func(int, delivery) int) *receiver {
	t.Helper()
	rc := &receiver{secret: base64.StdEncoding.EncodeToString(secret), answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{signature: r.Header.Get("x-webhook-signature"), body: body}
		d.verified = verifyWebhook(rc.secret, d.signature, body, time.Now())
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, d)
		rc.mu.Unlock()
		status := http.StatusForbidden
		if d.verified {
			status = http.StatusOK
		}
		if rc.answer != nil {
			status = rc.answer(n, d)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/webhooks/bead"
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) waitFor(t *testing.T, n int) []delivery {
	t.Helper()
	eventually(t, "webhook deliveries", func() bool { return len(rc.deliveries()) >= n })
	return rc.deliveries()
}

var testSecret = []byte("sandbox-test-signing-key-32bytes")

func TestWebhookIsSignedAndRetriedUntilAccepted(t *testing.T) {
	rc := newReceiver(t, testSecret, func(n int, d delivery) int {
		if n == 0 {
			return http.StatusInternalServerError // the merchant's first try fails
		}
		return http.StatusOK
	})
	f := newFixture(t, Options{WebhookURL: rc.url, WebhookSecret: testSecret, WebhookRetry: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}})
	token := f.token(t, 0)
	c := f.createPayment(t, token, paymentBody(f.terminal(0), "12.50"))
	f.control(t, http.MethodPost, "/_sandbox/payments/"+c.TrackingID+"/status", map[string]string{"statusCode": "completed"}, http.StatusOK)

	got := rc.waitFor(t, 2)
	eventually(t, "stats", func() bool { return f.stats(t).WebhookDeliveries["delivered"] == 1 })
	// The body is the status object itself, the same the tracking endpoint answers.
	_, tracked := f.call(t, http.MethodGet, "/payments/tracking/"+c.TrackingID, nil, bearer(token))
	for i, d := range got {
		if !d.verified {
			t.Errorf("attempt %d: signature %q does not verify", i+1, d.signature)
		}
		if !strings.HasPrefix(d.signature, "t=") || !strings.Contains(d.signature, ",s=") {
			t.Errorf("attempt %d: header %q, want t=<ms>,s=<base64>", i+1, d.signature)
		}
		if string(d.body) != string(tracked) {
			t.Errorf("attempt %d: body\n %s\nwant the tracking answer\n %s", i+1, d.body, tracked)
		}
	}
	if diff := cmp.Diff(map[string]int{"delivered": 1, "failed": 1, "abandoned": 0}, f.stats(t).WebhookDeliveries); diff != "" {
		t.Errorf("webhookDeliveries (-want +got):\n%s", diff)
	}
	time.Sleep(60 * time.Millisecond)
	if n := len(rc.deliveries()); n != 2 {
		t.Errorf("%d deliveries, want no retry after the 200", n)
	}

	type row struct {
		Attempt    int    `json:"attempt"`
		HTTPStatus int    `json:"httpStatus"`
		Outcome    string `json:"outcome"`
		StatusCode string `json:"statusCode"`
	}
	var log []row
	if err := json.Unmarshal(f.control(t, http.MethodGet, "/_sandbox/webhooks", nil, http.StatusOK), &log); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]row{{1, 500, "failed", "completed"}, {2, 200, "delivered", "completed"}}, log); diff != "" {
		t.Errorf("webhook log (-want +got):\n%s", diff)
	}
}

func TestWebhookGivesUpAfterTheRetrySchedule(t *testing.T) {
	rc := newReceiver(t, testSecret, func(int, delivery) int { return http.StatusServiceUnavailable })
	f := newFixture(t, Options{WebhookURL: rc.url, WebhookSecret: testSecret, WebhookRetry: []time.Duration{time.Millisecond, time.Millisecond}})
	c := f.createPayment(t, f.token(t, 0), paymentBody(f.terminal(0), "1.00"))
	f.control(t, http.MethodPost, "/_sandbox/payments/"+c.TrackingID+"/status", map[string]string{"statusCode": "expired"}, http.StatusOK)
	eventually(t, "abandoned delivery", func() bool { return f.stats(t).WebhookDeliveries["abandoned"] == 1 })
	if diff := cmp.Diff(map[string]int{"delivered": 0, "failed": 3, "abandoned": 1}, f.stats(t).WebhookDeliveries); diff != "" {
		t.Errorf("webhookDeliveries (-want +got):\n%s", diff)
	}
	if n := len(rc.deliveries()); n != 3 {
		t.Errorf("%d attempts, want 3 (one and two retries)", n)
	}
}

func TestWebhookFaultsBreakVerificationOnce(t *testing.T) {
	for _, kind := range []string{"webhook_bad_secret", "webhook_old_timestamp", "webhook_altered_body"} {
		t.Run(kind, func(t *testing.T) {
			rc := newReceiver(t, testSecret, nil)
			f := newFixture(t, Options{WebhookURL: rc.url, WebhookSecret: testSecret, WebhookRetry: []time.Duration{10 * time.Millisecond}})
			c := f.createPayment(t, f.token(t, 0), paymentBody(f.terminal(0), "8.00"))
			f.fault(t, map[string]any{"kind": kind, "count": 1})
			f.control(t, http.MethodPost, "/_sandbox/payments/"+c.TrackingID+"/status", map[string]string{"statusCode": "underpaid"}, http.StatusOK)

			got := rc.waitFor(t, 2)
			if diff := cmp.Diff([]bool{false, true}, []bool{got[0].verified, got[1].verified}); diff != "" {
				t.Errorf("verified per attempt (-want +got):\n%s", diff)
			}
			if kind == "webhook_altered_body" && !strings.Contains(string(got[0].body), `"statusCode":"completed"`) {
				t.Errorf("altered body %s, want the status forged to completed", got[0].body)
			}
			if strings.Contains(string(got[1].body), `"statusCode":"completed"`) {
				t.Errorf("honest retry %s claims completed", got[1].body)
			}
		})
	}
}

func TestWebhookTargets(t *testing.T) {
	terminalHook := newReceiver(t, testSecret, nil)
	defaultHook := newReceiver(t, testSecret, nil)
	paymentHook := newReceiver(t, testSecret, nil)
	f := newFixture(t, Options{WebhookURL: defaultHook.url, WebhookSecret: testSecret})
	a1, b1 := f.terminal(0), f.terminal(2)
	tokenA1, tokenB1 := f.token(t, 0), f.token(t, 2)

	// Terminal A1 registers its own URL; B1 keeps the sandbox default.
	if resp, raw := f.call(t, http.MethodPut, "/Terminals/"+a1.TerminalID+"/webhook", map[string]string{"webhookUrl": terminalHook.url}, bearer(tokenA1)); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT webhook: %d %s", resp.StatusCode, raw)
	}
	body := paymentBody(a1, "2.00")
	body["webhookUrls"] = []string{paymentHook.url}
	payA := f.createPayment(t, tokenA1, body)
	payB := f.createPayment(t, tokenB1, paymentBody(b1, "3.00"))
	f.control(t, http.MethodPost, "/_sandbox/payments/"+payA.TrackingID+"/status", map[string]string{"statusCode": "completed"}, http.StatusOK)
	f.control(t, http.MethodPost, "/_sandbox/payments/"+payB.TrackingID+"/status", map[string]string{"statusCode": "completed"}, http.StatusOK)

	terminalHook.waitFor(t, 1)
	paymentHook.waitFor(t, 1)
	defaultHook.waitFor(t, 1)
	for name, rc := range map[string]*receiver{"terminal": terminalHook, "payment": paymentHook, "default": defaultHook} {
		got := rc.deliveries()
		want := payA.TrackingID
		if name == "default" {
			want = payB.TrackingID
		}
		if len(got) != 1 || !strings.Contains(string(got[0].body), want) {
			t.Errorf("%s hook got %d deliveries, want one for %s", name, len(got), want)
		}
	}

	// Re-posting the current status re-sends it, as a duplicate delivery would.
	f.control(t, http.MethodPost, "/_sandbox/payments/"+payB.TrackingID+"/status", map[string]string{"statusCode": "completed"}, http.StatusOK)
	if got := defaultHook.waitFor(t, 2); string(got[0].body) != string(got[1].body) {
		t.Errorf("duplicate differs:\n%s\n%s", got[0].body, got[1].body)
	}
}

func TestCloseStopsPendingRetries(t *testing.T) {
	rc := newReceiver(t, testSecret, func(int, delivery) int { return http.StatusInternalServerError })
	sb, err := New(Options{WebhookURL: rc.url, WebhookSecret: testSecret, WebhookRetry: []time.Duration{time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	f := &fixture{sb: sb, base: srv.URL}
	c := f.createPayment(t, f.token(t, 0), paymentBody(f.terminal(0), "1.00"))
	f.control(t, http.MethodPost, "/_sandbox/payments/"+c.TrackingID+"/status", map[string]string{"statusCode": "cancelled"}, http.StatusOK)
	rc.waitFor(t, 1)

	done := make(chan struct{})
	go func() { sb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return while a retry was an hour away")
	}
}
