package bff

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"beadbff/bff/bead"
	"beadbff/config"
	"beadbff/session"
)

const (
	hookTerminal = "aaaaaaaaaaaaaaaaaaaaaaaa"
	hookMerchant = "bbbbbbbbbbbbbbbbbbbbbbbb"
	hookTracking = "0123456789abcdef0123456789abcdef"
)

var hookKey = []byte("beadbff-unit-test-signing-secret")

// hookBead is Bead for these tests: tracking answers what the test set, counting every read and the
// token it came with; the realm logs the service account in.
type hookBead struct {
	mu       sync.Mutex
	status   map[string]bead.Status // trackingId -> what Bead answers
	reads    int
	tokens   []string
	secret   string // RegisterWebhook's answer
	hooks    []string
	readGate chan struct{} // when set, each read waits for it
}

func newHookBead() *hookBead { return &hookBead{status: map[string]bead.Status{}} }

func (f *hookBead) set(id string, st bead.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[id] = st
}

func (f *hookBead) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *hookBead) Login(_ context.Context, username, _ string) (*bead.Token, error) {
	now := time.Now()
	return &bead.Token{AccessToken: hookJWT(strings.TrimSuffix(username, "@beadpay.io")), RefreshToken: "r", Expiry: now.Add(time.Hour), ObtainedAt: now}, nil
}
func (f *hookBead) Refresh(context.Context, string) (*bead.Token, error) {
	return nil, fmt.Errorf("unused")
}
func (f *hookBead) Logout(context.Context, string) error { return nil }
func (f *hookBead) Discover(context.Context) error       { return nil }
func (f *hookBead) Probe(context.Context, string) error  { return nil }
func (f *hookBead) CreatePayment(context.Context, string, bead.CreatePaymentRequest, string) (*bead.CreatedPayment, error) {
	return nil, fmt.Errorf("unused")
}
func (f *hookBead) Tracking(_ context.Context, token, id string) (*bead.PaymentStatus, error) {
	if f.readGate != nil {
		<-f.readGate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	f.tokens = append(f.tokens, token)
	st := f.status[id]
	if st == "" {
		st = bead.StatusCreated
	}
	return &bead.PaymentStatus{TrackingID: id, Status: st, TerminalID: hookTerminal, MerchantID: hookMerchant}, nil
}
func (f *hookBead) RegisterWebhook(_ context.Context, _, _, url string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = append(f.hooks, url)
	return f.secret, nil
}

// hookJWT is an access token naming terminal (DecodeClaims does not check signatures).
func hookJWT(terminal string) string {
	seg := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	return seg(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
		seg(map[string]any{"terminalId": terminal, "azp": "bead-terminal", "scope": "openid", "exp": time.Now().Add(time.Hour).Unix()}) + ".c2ln"
}

type hookEnv struct {
	srv   *Server
	store session.Store
	bead  *hookBead
	reg   *prometheus.Registry
	co    string // the checkout id of the test payment
	logs  *lockedBuffer
}

// newHookEnv builds a server whose BEAD_WEBHOOK_SECRET is hookKey (unless vars override it) with one
// payment of hookTerminal, created.
func newHookEnv(t testing.TB, vars map[string]string) *hookEnv {
	t.Helper()
	env := map[string]string{
		"BEAD_API_URL": "http://127.0.0.1:1", "BEAD_IDENTITY_URL": "http://127.0.0.1:1/realms/nonprod",
		"BEAD_WEBHOOK_SECRET": base64.StdEncoding.EncodeToString(hookKey),
	}
	for k, v := range vars {
		env[k] = v
	}
	cfg := config.Load(func(k string) string { return env[k] })
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	store, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &hookEnv{store: store, bead: newHookBead(), reg: prometheus.NewRegistry(), co: randomToken(), logs: &lockedBuffer{}}
	e.srv, err = New(Deps{Config: cfg, Store: store, Bead: e.bead, Registry: e.reg, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Shutdown(5 * time.Second) })
	now := time.Now()
	if err := store.PutPayment(context.Background(), session.Payment{TrackingID: hookTracking, CheckoutID: e.co, TerminalID: hookTerminal,
		MerchantID: hookMerchant, Amount: "12.50", Currency: "USD", Reference: "order-1", StatusCode: "created", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return e
}

func statusBody(tracking, terminal, status string) []byte {
	return []byte(`{"paymentId":"p1","trackingId":"` + tracking + `","statusCode":"` + status +
		`","amounts":{"requested":{"inRequestedCurrency":{"amount":12.50,"currency":{"code":"USD"}}}},"terminalId":"` + terminal + `","merchantId":"` + hookMerchant + `"}`)
}

type hookReply struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *hookEnv) post(t *testing.T, header string, body []byte, extra map[string]string) hookReply {
	t.Helper()
	req := httptest.NewRequest("POST", "/webhooks/bead", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if header != "" {
		req.Header.Set("X-Webhook-Signature", header)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := hookReply{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	return r
}

func (e *hookEnv) payment(t *testing.T) session.Payment {
	t.Helper()
	p, err := e.store.GetPayment(context.Background(), hookTerminal, hookTracking)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}

func (e *hookEnv) pending(t *testing.T) int {
	t.Helper()
	evs, err := e.store.PendingWebhookEvents(context.Background(), time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookRefusals(t *testing.T) {
	body := statusBody(hookTracking, hookTerminal, "completed")
	now := time.Now()
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	signed := func(key []byte, ts string, b []byte) string {
		return strings.Replace(bead.SignWebhook(key, time.UnixMilli(mustInt(t, ts)), b), "t="+strconv.FormatInt(mustInt(t, ts), 10), "t="+ts, 1)
	}
	tests := []struct {
		name, header string
		body         []byte
		check        string
	}{
		{"no header", "", body, "header_missing"},
		{"malformed header", "v1=abc", body, "header_malformed"},
		{"t not a number", "t=soon,s=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), body, "timestamp_invalid"},
		{"s of the wrong length", "t=" + ms(0) + ",s=" + base64.StdEncoding.EncodeToString(make([]byte, 16)), body, "signature_length"},
		{"s not base64", "t=" + ms(0) + ",s=%%%", body, "signature_encoding"},
		{"wrong secret", signed([]byte("another secret"), ms(0), body), body, "signature_mismatch"},
		{"altered body", signed(hookKey, ms(0), body), bytes.Replace(body, []byte("12.50"), []byte("0.01"), 1), "signature_mismatch"},
		{"stale timestamp", signed(hookKey, ms(-10*time.Minute), body), body, "timestamp_stale"},
		{"future timestamp", signed(hookKey, ms(10*time.Minute), body), body, "timestamp_future"},
	}
	e := newHookEnv(t, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted := e.srv.hooks.metrics.deliveries.WithLabelValues("refused", tt.check)
			before := counterValue(counted)
			r := e.post(t, tt.header, tt.body, nil)
			if r.status != http.StatusForbidden || r.body["cause"] != CauseWebhookSignatureInvalid || r.body["check"] != tt.check {
				t.Fatalf("answer %d %v, want 403 webhook_signature_invalid with check %s", r.status, r.body, tt.check)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if d, _ := r.body["detail"].(string); !strings.Contains(d, tt.check) || !strings.Contains(d, "Nothing was stored") {
				t.Errorf("detail %q does not say which check failed", d)
			}
			if r.body["requestId"] == "" || !strings.HasSuffix(fmt.Sprint(r.body["helpUrl"]), "/help/403#webhook_signature_invalid") {
				t.Errorf("problem lacks requestId or helpUrl: %v", r.body)
			}
			if got := e.payment(t); got.StatusCode != "created" || got.PendingStatus != "" {
				t.Errorf("payment changed to %+v", got)
			}
			if n := e.pending(t); n != 0 {
				t.Errorf("%d events stored", n)
			}
			log, _ := e.store.WebhookDeliveries(context.Background(), "", 0)
			if len(log) != i+1 || log[0].Check != tt.check || log[0].Outcome != session.DeliveryRefused || log[0].HTTPStatus != 403 {
				t.Errorf("refusal log %+v, want this refusal first", log)
			}
			if n := counterValue(counted) - before; n != 1 {
				t.Errorf("refusal counted %v times, want 1", n)
			}
		})
	}
	if e.bead.readCount() != 0 {
		t.Errorf("refused deliveries caused %d reads from Bead", e.bead.readCount())
	}
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 1 // "soon": the header is replaced whole by the table anyway
	}
	return n
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// The signature covers the bytes as sent: a gzip body is verified compressed (and only then
// decompressed), odd whitespace, unicode escapes and 1.0-style numbers pass untouched.
func TestWebhookVerifiesTheRawBytes(t *testing.T) {
	plain := []byte("{\n  \"trackingId\" : \"" + hookTracking + "\",\t\"statusCode\":\"Completed\",\r\n" +
		`"reference":"caf\u00e9","amounts":{"requested":{"amount":12.50,"currency":"USD"},"paid":{"amount":1.0}},` +
		`"terminalId":"` + hookTerminal + "\"}\n\n")
	compressed := gz(plain)
	tests := []struct {
		name     string
		signed   []byte
		sent     []byte
		encoding string
		want     int
	}{
		{"odd whitespace and escapes, signed as sent", plain, plain, "", 200},
		{"gzip, signed compressed", compressed, compressed, "gzip", 200},
		{"gzip, signed decompressed: refused (the check is never made after decompression)", plain, compressed, "gzip", 403},
		{"br is not supported once verified", compressed, compressed, "br", 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHookEnv(t, nil)
			extra := map[string]string{}
			if tt.encoding != "" {
				extra["Content-Encoding"] = tt.encoding
			}
			r := e.post(t, bead.SignWebhook(hookKey, time.Now(), tt.signed), tt.sent, extra)
			if r.status != tt.want {
				t.Fatalf("answer %d %v, want %d", r.status, r.body, tt.want)
			}
			if tt.want == 200 && r.body["outcome"] != "accepted" {
				t.Errorf("outcome %v", r.body["outcome"])
			}
		})
	}
}

// Accepted changes are stored before the 2xx, confirmed with one read from Bead (the service account's
// token here), and a repeat changes nothing and reads nothing.
func TestWebhookAcceptConfirmAndDedupe(t *testing.T) {
	e := newHookEnv(t, map[string]string{"BEAD_TERMINAL_USERNAME": hookTerminal, "BEAD_TERMINAL_PASSWORD": "pw"})
	e.bead.set(hookTracking, bead.StatusCompleted)
	body := statusBody(hookTracking, hookTerminal, "completed")
	r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	if r.status != 200 || r.body["outcome"] != "accepted" {
		t.Fatalf("answer %d %v", r.status, r.body)
	}
	waitFor(t, "the payment confirmed completed", 3*time.Second, func() bool { return e.payment(t).StatusCode == "completed" })
	if p := e.payment(t); p.PendingStatus != "" {
		t.Errorf("pending %q left after confirmation", p.PendingStatus)
	}
	if n := e.bead.readCount(); n != 1 {
		t.Errorf("%d reads from Bead, want exactly 1 confirming read", n)
	}
	before := e.payment(t)
	for range 3 { // Bead retries, or delivers twice
		r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
		if r.status != 200 || r.body["outcome"] != "duplicate" {
			t.Fatalf("repeat answered %d %v, want 200 duplicate", r.status, r.body)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := e.bead.readCount(); n != 1 {
		t.Errorf("repeats caused %d reads in all, want still 1", n)
	}
	if after := e.payment(t); after != before {
		t.Errorf("a repeat changed the payment: %+v -> %+v", before, after)
	}
	log, _ := e.store.WebhookDeliveries(context.Background(), hookTerminal, 0)
	if len(log) != 4 || log[0].Outcome != "duplicate" || log[3].Outcome != "accepted" {
		t.Errorf("delivery log %+v", log)
	}
	if n := e.pending(t); n != 0 {
		t.Errorf("%d events left pending", n)
	}
}

// A final status never goes back: a late "processing" after "completed" is acknowledged and ignored.
func TestWebhookStatusNeverGoesBack(t *testing.T) {
	e := newHookEnv(t, map[string]string{"BEAD_TERMINAL_USERNAME": hookTerminal, "BEAD_TERMINAL_PASSWORD": "pw"})
	e.bead.set(hookTracking, bead.StatusCompleted)
	done := statusBody(hookTracking, hookTerminal, "completed")
	e.post(t, bead.SignWebhook(hookKey, time.Now(), done), done, nil)
	waitFor(t, "completed", 3*time.Second, func() bool { return e.payment(t).StatusCode == "completed" })

	late := statusBody(hookTracking, hookTerminal, "processing")
	if r := e.post(t, bead.SignWebhook(hookKey, time.Now(), late), late, nil); r.status != 200 || r.body["outcome"] != "accepted" {
		t.Fatalf("late delivery answered %d %v, want 200 (Bead must not retry it)", r.status, r.body)
	}
	waitFor(t, "the late change processed", 3*time.Second, func() bool { return e.pending(t) == 0 })
	if p := e.payment(t); p.StatusCode != "completed" || p.PendingStatus != "" {
		t.Errorf("payment went back to %+v", p)
	}
	if n := e.bead.readCount(); n != 1 {
		t.Errorf("%d reads, want 1: a stale change needs no confirmation", n)
	}
}

func TestApplyConfirmed(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name                  string
		status, pending, bead string
		wantStatus, wantPend  string
	}{
		{"Bead confirms the announcement", "created", "completed", "completed", "completed", ""},
		{"Bead lags behind: still confirming", "created", "completed", "processing", "processing", "completed"},
		{"Bead says another final status: Bead wins", "created", "completed", "expired", "expired", ""},
		{"a final status never goes back", "completed", "", "processing", "completed", ""},
		{"final to another final (a refund) is Bead's word", "completed", "", "fullyrefunded", "fullyrefunded", ""},
		{"no status in the answer changes nothing", "created", "completed", "", "created", "completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &session.Payment{TrackingID: "t", StatusCode: tt.status, PendingStatus: tt.pending}
			got := applyConfirmed(p, &bead.PaymentStatus{Status: bead.Status(tt.bead)}, now)
			if got.StatusCode != tt.wantStatus || got.PendingStatus != tt.wantPend {
				t.Errorf("got %s (pending %q), want %s (pending %q)", got.StatusCode, got.PendingStatus, tt.wantStatus, tt.wantPend)
			}
		})
	}
	for _, tt := range []struct {
		pending, announced string
		want               bool
	}{{"", "processing", true}, {"processing", "completed", true}, {"completed", "processing", false}, {"completed", "completed", false}, {"expired", "completed", true}} {
		if got := pendingMoves(tt.pending, bead.Status(tt.announced)); got != tt.want {
			t.Errorf("pendingMoves(%q, %q) = %v, want %v", tt.pending, tt.announced, got, tt.want)
		}
	}
}

// Without a token of the terminal (no service account, no staff page open) the change waits as
// PendingStatus: the payment is not shown as paid on the webhook's word.
func TestWebhookWithoutTokenWaitsConfirming(t *testing.T) {
	e := newHookEnv(t, nil)
	body := statusBody(hookTracking, hookTerminal, "completed")
	e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	waitFor(t, "the change applied as pending", 3*time.Second, func() bool { return e.payment(t).PendingStatus == "completed" })
	p := e.payment(t)
	if p.StatusCode != "created" || !confirming(&p) {
		t.Errorf("payment %+v, want still created and confirming", p)
	}
	waitFor(t, "counted", time.Second, func() bool {
		return counterValue(e.srv.hooks.metrics.confirmations.WithLabelValues("no_token")) == 1
	})
}

func TestWebhookWithoutSecretsIs503(t *testing.T) {
	e := newHookEnv(t, map[string]string{"BEAD_WEBHOOK_SECRET": ""})
	body := statusBody(hookTracking, hookTerminal, "completed")
	r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	if r.status != http.StatusServiceUnavailable || r.body["check"] != "no_secrets" || !strings.Contains(fmt.Sprint(r.body["detail"]), "BEAD_WEBHOOK_SECRET") {
		t.Errorf("answer %d %v, want 503 no_secrets naming BEAD_WEBHOOK_SECRET", r.status, r.body)
	}
}

// A secret registered for one terminal vouches only for that terminal's payments.
func TestWebhookRegisteredSecretIsBoundToItsTerminal(t *testing.T) {
	e := newHookEnv(t, map[string]string{"BEAD_WEBHOOK_SECRET": ""})
	other := "cccccccccccccccccccccccc"
	theirs := []byte("secret-registered-by-another-terminal")
	if err := e.store.SaveWebhookSecret(context.Background(), other, theirs, "http://x/webhooks/bead"); err != nil {
		t.Fatal(err)
	}
	ours := []byte("secret-registered-by-our-terminal")
	if err := e.store.SaveWebhookSecret(context.Background(), hookTerminal, ours, "http://x/webhooks/bead"); err != nil {
		t.Fatal(err)
	}
	body := statusBody(hookTracking, hookTerminal, "completed")
	r := e.post(t, bead.SignWebhook(theirs, time.Now(), body), body, nil)
	if r.status != http.StatusForbidden || r.body["check"] != checkSecretOfAnotherTerminal {
		t.Errorf("signed by another terminal's secret: %d %v, want 403 %s", r.status, r.body, checkSecretOfAnotherTerminal)
	}
	if r := e.post(t, bead.SignWebhook(ours, time.Now(), body), body, nil); r.status != 200 || r.body["outcome"] != "accepted" {
		t.Errorf("signed by its own registered secret: %d %v, want accepted", r.status, r.body)
	}
}

// The webhook is server to server: a stray cookie or Origin does not bring CSRF or CORS into it.
func TestWebhookIsOutsideCSRFAndCORS(t *testing.T) {
	e := newHookEnv(t, map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example"})
	body := statusBody(hookTracking, hookTerminal, "completed")
	r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, map[string]string{
		"Cookie": "beadbff_session=whatever", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if r.status != 200 || r.body["outcome"] != "accepted" {
		t.Errorf("answer %d %v, want accepted", r.status, r.body)
	}
}

func TestWebhookUnreadableBody(t *testing.T) {
	e := newHookEnv(t, nil)
	for _, body := range [][]byte{[]byte(`not json`), []byte(`{"statusCode":"completed"}`), []byte(`{"trackingId":"` + hookTracking + `"}`)} {
		r := e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
		if r.status != http.StatusBadRequest || r.body["check"] != checkBodyUnreadable {
			t.Errorf("%s: %d %v, want 400 body_unreadable", body, r.status, r.body)
		}
	}
	if e.pending(t) != 0 {
		t.Error("an unreadable body was stored")
	}
}

// --- live streams, on a real listener (app.Test reads a response to its end, which a stream has not)

func (e *hookEnv) listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.srv.App().Listener(ln) }()
	return "http://" + ln.Addr().String()
}

// sseReader reads one event stream.
type sseReader struct {
	resp   *http.Response
	events chan [2]string // event name, data
}

func openStream(t *testing.T, url, cookie string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if cookie != "" {
		req.Header.Set("Cookie", "beadbff_session="+cookie)
	}
	// The headers must come at once: a regression that buffers the stream (an access log reading the
	// body, say) would otherwise hang the test instead of failing it.
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 5 * time.Second}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := &sseReader{resp: resp, events: make(chan [2]string, 64)}
	if resp.StatusCode != 200 {
		close(r.events)
		return r
	}
	go func() {
		defer close(r.events)
		sc := bufio.NewScanner(resp.Body)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && name != "":
				r.events <- [2]string{name, data}
				name, data = "", ""
			}
		}
	}()
	return r
}

// next returns the next event, or fails after within.
func (r *sseReader) next(t *testing.T, within time.Duration) (string, map[string]any) {
	t.Helper()
	select {
	case ev, ok := <-r.events:
		if !ok {
			t.Fatalf("the stream ended (it answered %d)", r.resp.StatusCode)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(ev[1]), &m)
		return ev[0], m
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return "", nil
}

// untilStatus reads events until one shows status, failing after within.
func (r *sseReader) untilStatus(t *testing.T, status string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		name, m := r.next(t, time.Until(deadline))
		if name == "status" && m["statusCode"] == status {
			return m
		}
	}
}

func (r *sseReader) ends(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-r.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the stream did not end within %v", within)
		}
	}
}

func (e *hookEnv) staffSession(t *testing.T) string {
	t.Helper()
	now := time.Now()
	return seedSession(t, e.store, hookTerminal, hookMerchant,
		session.Token{AccessToken: hookJWT(hookTerminal) + "staff", RefreshToken: "r", Expiry: now.Add(time.Hour), ObtainedAt: now}).ID
}

// One webhook, many open pages: every stream gets the change, and Bead is read once for all of them.
func TestLiveStreamsShareOneRead(t *testing.T) {
	e := newHookEnv(t, map[string]string{"BEAD_TERMINAL_USERNAME": hookTerminal, "BEAD_TERMINAL_PASSWORD": "pw"})
	base := e.listen(t)
	staff := e.staffSession(t)
	streams := []*sseReader{
		openStream(t, base+"/embed/checkout/"+e.co+"/events", ""),
		openStream(t, base+"/embed/checkout/"+e.co+"/events", ""),
		openStream(t, base+"/payments/"+hookTracking+"/events", staff),
		openStream(t, base+"/payments/events", staff),
	}
	for i, s := range streams {
		if s.resp.StatusCode != 200 || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream %d: %d %s", i, s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
		}
		if name, hello := s.next(t, 2*time.Second); name != "hello" || hello["push"] != true {
			t.Fatalf("stream %d began with %s %v, want hello push=true", i, name, hello)
		}
		if _, snap := s.next(t, 2*time.Second); snap["statusCode"] != "created" || snap["trackingId"] != hookTracking {
			t.Fatalf("stream %d snapshot %v", i, snap)
		}
	}
	e.bead.set(hookTracking, bead.StatusCompleted)
	body := statusBody(hookTracking, hookTerminal, "completed")
	e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	for i, s := range streams {
		m := s.untilStatus(t, "completed", 3*time.Second)
		if m["paid"] != true || m["final"] != true || m["confirming"] != false {
			t.Errorf("stream %d: %v", i, m)
		}
	}
	if n := e.bead.readCount(); n != 1 {
		t.Errorf("%d reads from Bead for %d open pages, want 1", n, len(streams))
	}
	// A payment's streams end once it is settled; the dashboard's goes on.
	for i, s := range streams[:3] {
		s.ends(t, 2*time.Second)
		_ = i
	}
	// And a page opened now learns there is nothing to wait for: 204, which stops EventSource.
	if late := openStream(t, base+"/embed/checkout/"+e.co+"/events", ""); late.resp.StatusCode != http.StatusNoContent {
		t.Errorf("stream of a settled payment: %d, want 204", late.resp.StatusCode)
	}
}

// The staff page pushes "confirming" first, and with no service account the open staff page's session
// lends its token for the one confirming read.
func TestLiveStreamConfirmingThenStaffRead(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	staff := e.staffSession(t)
	s := openStream(t, base+"/payments/"+hookTracking+"/events", staff)
	s.next(t, 2*time.Second) // hello
	s.next(t, 2*time.Second) // snapshot
	gate := make(chan struct{})
	e.bead.readGate = gate
	e.bead.set(hookTracking, bead.StatusCompleted)
	body := statusBody(hookTracking, hookTerminal, "completed")
	e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	name, m := s.next(t, 3*time.Second)
	if name != "status" || m["statusCode"] != "created" || m["confirming"] != true || m["pendingLabel"] != "Paid" {
		t.Fatalf("first pushed event %s %v, want created with confirming Paid", name, m)
	}
	close(gate)
	s.untilStatus(t, "completed", 3*time.Second)
	e.bead.mu.Lock()
	defer e.bead.mu.Unlock()
	if len(e.bead.tokens) != 1 || !strings.HasSuffix(e.bead.tokens[0], "staff") {
		t.Errorf("reads with tokens %v, want one with the staff session's", e.bead.tokens)
	}
}

func TestLiveStreamRefusals(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	for _, tc := range []struct {
		name, path, cookie string
		want               int
	}{
		{"staff stream without a session", "/payments/" + hookTracking + "/events", "", 401},
		{"dashboard stream without a session", "/payments/events", "", 401},
		{"unknown checkout", "/embed/checkout/" + randomToken() + "/events", "", 404},
		{"malformed checkout id", "/embed/checkout/x/events", "", 404},
		{"another terminal's payment", "/payments/ffffffffffffffffffffffffffffffff/events", e.staffSession(t), 404},
	} {
		if got := openStream(t, base+tc.path, tc.cookie).resp.StatusCode; got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// Shutdown ends open streams at once instead of waiting its whole timeout for them.
func TestShutdownEndsLiveStreams(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	s := openStream(t, base+"/embed/checkout/"+e.co+"/events", "")
	s.next(t, 2*time.Second)
	start := time.Now()
	if err := e.srv.Shutdown(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.ends(t, 2*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v with a stream open", d)
	}
}

// A change made elsewhere (another process, a staff page's own read) reaches open streams through
// the store within liveStoreEvery.
func TestLiveStreamSeesStoreChanges(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	s := openStream(t, base+"/embed/checkout/"+e.co+"/events", "")
	s.next(t, 2*time.Second)
	s.next(t, 2*time.Second)
	p := e.payment(t)
	p.StatusCode = "expired"
	if err := e.store.PutPayment(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	m := s.untilStatus(t, "expired", liveStoreEvery+2*time.Second)
	if m["final"] != true || m["paid"] != false {
		t.Errorf("event %v", m)
	}
}

// counterValue reads one counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// A change accepted by a process that died before applying it is found in the store and applied by
// the next process's sweep.
func TestWebhookSweepResumesUnappliedChanges(t *testing.T) {
	e := newHookEnv(t, map[string]string{"BEAD_TERMINAL_USERNAME": hookTerminal, "BEAD_TERMINAL_PASSWORD": "pw"})
	e.bead.set(hookTracking, bead.StatusCompleted)
	ev := session.WebhookEvent{ID: session.WebhookEventID(hookTerminal, hookTracking, "completed"), TerminalID: hookTerminal,
		TrackingID: hookTracking, StatusCode: "completed", ReceivedAt: time.Now().Add(-2 * time.Minute), RequestID: "req-of-the-dead",
		State: session.WebhookPending}
	if _, first, err := e.store.ClaimWebhookEvent(context.Background(), ev); err != nil || !first {
		t.Fatalf("claim: %v %v", first, err)
	}
	// Both, waited for: the event is marked applied just after the payment is written, so checking the
	// second at the moment the first shows can catch the worker in between.
	waitFor(t, "the sweep applied and confirmed it, and the event is no longer pending", 5*time.Second, func() bool {
		return e.payment(t).StatusCode == "completed" && e.pending(t) == 0
	})
}

// The legacy hex scheme works only when BEAD_WEBHOOK_LEGACY_HEX is set, also in the old header.
func TestWebhookLegacyHexOnlyWhenEnabled(t *testing.T) {
	body := statusBody(hookTracking, hookTerminal, "completed")
	mac := hmacHex(hookKey, body)
	off := newHookEnv(t, nil)
	if r := off.post(t, "", body, map[string]string{"X-Bead-Signature": "sha256=" + mac}); r.status != http.StatusForbidden || r.body["check"] != "header_missing" {
		t.Errorf("legacy header without the option: %d %v, want 403 header_missing", r.status, r.body)
	}
	if r := off.post(t, "sha256="+mac, body, nil); r.status != http.StatusForbidden {
		t.Errorf("legacy signature without the option: %d, want 403", r.status)
	}
	on := newHookEnv(t, map[string]string{"BEAD_WEBHOOK_LEGACY_HEX": "true"})
	if r := on.post(t, "", body, map[string]string{"X-Bead-Signature": "sha256=" + mac}); r.status != 200 {
		t.Errorf("legacy header with the option: %d %v, want 200", r.status, r.body)
	}
}

func hmacHex(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// A payment left "confirming" for want of a token is confirmed as soon as a staff page opens on it.
func TestConfirmingPaymentIsConfirmedWhenStaffOpensIt(t *testing.T) {
	e := newHookEnv(t, nil)
	base := e.listen(t)
	e.bead.set(hookTracking, bead.StatusCompleted)
	body := statusBody(hookTracking, hookTerminal, "completed")
	e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	waitFor(t, "pending", 3*time.Second, func() bool { return e.payment(t).PendingStatus == "completed" })
	if n := e.bead.readCount(); n != 0 {
		t.Fatalf("%d reads without any token", n)
	}
	s := openStream(t, base+"/payments/"+hookTracking+"/events", e.staffSession(t))
	s.untilStatus(t, "completed", 3*time.Second)
	if n := e.bead.readCount(); n != 1 {
		t.Errorf("%d reads, want the one confirming read", n)
	}
}

// When Bead never shows what a webhook announced, its own status stands after the retries and the
// pages stop saying "confirming…".
func TestUnconfirmedAnnouncementIsDropped(t *testing.T) {
	saved := confirmRetries
	confirmRetries = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
	t.Cleanup(func() { confirmRetries = saved })
	e := newHookEnv(t, map[string]string{"BEAD_TERMINAL_USERNAME": hookTerminal, "BEAD_TERMINAL_PASSWORD": "pw"})
	e.bead.set(hookTracking, bead.StatusProcessing) // Bead disagrees with the webhook, for good
	body := statusBody(hookTracking, hookTerminal, "completed")
	e.post(t, bead.SignWebhook(hookKey, time.Now(), body), body, nil)
	waitFor(t, "the announcement dropped", 3*time.Second, func() bool {
		p := e.payment(t)
		return p.StatusCode == "processing" && p.PendingStatus == ""
	})
	if n := e.bead.readCount(); n != 1+len(confirmRetries) {
		t.Errorf("%d reads, want %d (one, then one per retry)", n, 1+len(confirmRetries))
	}
}

// BenchmarkWebhookReceive: one verified delivery of a new change, stored (memory store) and answered,
// through the whole Fiber stack (app.Test, so without a socket).
func BenchmarkWebhookReceive(b *testing.B) {
	e := newHookEnv(b, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := statusBody(fmt.Sprintf("%032x", i), hookTerminal, "completed")
		req := httptest.NewRequest("POST", "/webhooks/bead", bytes.NewReader(body))
		req.Header.Set("X-Webhook-Signature", bead.SignWebhook(hookKey, time.Now(), body))
		resp, err := e.srv.App().Test(req, -1)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%v %v", resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}
