package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// This file sends Bead's status callbacks: one POST of the bare status object per status change
// to the terminal's webhook URL and to each of the payment's webhookUrls, signed with
//
//	x-webhook-signature: t=<unix ms>,s=<base64 HMAC-SHA256(key, t + "." + body)>
//
// and retried on failure. Each attempt is signed afresh, with its own timestamp.

// webhookLogSize is how many recent attempts GET /_sandbox/webhooks shows.
const webhookLogSize = 200

// deliveryRecord is one attempt, as GET /_sandbox/webhooks shows it.
type deliveryRecord struct {
	Time       time.Time `json:"time"`
	URL        string    `json:"url"` // without its query, which may hold a receiver's token
	TrackingID string    `json:"trackingId"`
	StatusCode string    `json:"statusCode"`
	Attempt    int       `json:"attempt"`
	HTTPStatus int       `json:"httpStatus,omitempty"`
	Error      string    `json:"error,omitempty"`
	Outcome    string    `json:"outcome"` // delivered, failed or abandoned (failed, no retry left)
	Faults     []string  `json:"faults,omitempty"`
}

// notification is one status change to deliver.
type notification struct {
	trackingID string
	status     string
	body       []byte
}

// webhookTargetsLocked lists where a payment's callbacks go: the terminal's URL (registered, else
// the sandbox default), then the payment's own webhookUrls, without repeats.
func (st *state) webhookTargetsLocked(p *payment) []string {
	terminalURL, registered := st.terminalHooks[p.terminal.TerminalID]
	if !registered {
		terminalURL = st.cfg.webhookURL
	}
	var out []string
	seen := map[string]bool{"": true}
	for _, u := range append([]string{terminalURL}, p.webhookURLs...) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// changeStatusLocked moves a payment and returns the deliveries to start once the lock is
// released. The body is rendered now, so every target gets the state of this change.
func (st *state) changeStatusLocked(p *payment, to string) (notification, []string) {
	p.move(to)
	n := notification{trackingID: p.trackingID, status: p.status, body: p.statusJSON(st.cfg.statusCodeFormat)}
	return n, st.webhookTargetsLocked(p)
}

// sendWebhooks starts one delivery goroutine per target. After Close it sends nothing.
func (s *Sandbox) sendWebhooks(n notification, targets []string) {
	s.mu.Lock()
	if s.deliveryCtx.Err() != nil {
		s.mu.Unlock()
		return
	}
	// Added under the lock that Close takes before waiting, so no Add races the Wait.
	s.deliveries.Add(len(targets))
	s.mu.Unlock()
	for _, target := range targets {
		go func() {
			defer s.deliveries.Done()
			s.deliver(target, n)
		}()
	}
}

// deliver tries once, then once after each wait of the retry schedule, until a 2xx.
func (s *Sandbox) deliver(target string, n notification) {
	for attempt := 1; ; attempt++ {
		last := attempt > len(s.retry)
		if s.attempt(target, n, attempt, last) {
			return
		}
		if last {
			return
		}
		timer := time.NewTimer(s.retry[attempt-1])
		select {
		case <-timer.C:
		case <-s.deliveryCtx.Done():
			timer.Stop()
			return
		}
	}
}

// attempt makes one signed POST and records its outcome. It reports success (a 2xx).
func (s *Sandbox) attempt(target string, n notification, attempt int, last bool) bool {
	s.mu.Lock()
	key := s.state.cfg.webhookSecret
	var applied []string
	for _, kind := range []string{faultWebhookBadSecret, faultWebhookOldTimestamp, faultWebhookAlteredBody} {
		if s.state.faults.take(kind) {
			s.state.stats.faultsApplied[kind]++
			applied = append(applied, kind)
		}
	}
	s.mu.Unlock()

	ts := s.now()
	body := n.body
	for _, kind := range applied {
		switch kind {
		case faultWebhookBadSecret:
			key = make([]byte, 32)
			rand.Read(key)
		case faultWebhookOldTimestamp:
			ts = ts.Add(-10 * time.Minute) // beyond the documented 5-minute tolerance
		}
	}
	t := strconv.FormatInt(ts.UnixMilli(), 10)
	signature := signWebhook(key, t, body)
	for _, kind := range applied {
		if kind == faultWebhookAlteredBody {
			body = alterBody(body)
		}
	}

	ctx, cancel := context.WithTimeout(s.deliveryCtx, webhookTimeout)
	defer cancel()
	rec := deliveryRecord{Time: s.now(), URL: withoutQuery(target), TrackingID: n.trackingID, StatusCode: n.status, Attempt: attempt, Faults: applied}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Bead-Webhooks/1.0 (sandbox)")
		req.Header.Set("x-webhook-signature", "t="+t+",s="+signature)
		var resp *http.Response
		if resp, err = s.httpClient.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			rec.HTTPStatus = resp.StatusCode
		}
	}
	ok := err == nil && rec.HTTPStatus >= 200 && rec.HTTPStatus < 300
	switch {
	case ok:
		rec.Outcome = "delivered"
	case last:
		rec.Outcome = "abandoned"
	default:
		rec.Outcome = "failed"
	}
	if err != nil {
		rec.Error = err.Error()
	}

	s.mu.Lock()
	if ok {
		s.state.stats.webhookDelivered++
	} else {
		s.state.stats.webhookFailed++
		if last {
			s.state.stats.webhookAbandoned++
		}
	}
	s.state.webhookLog = append(s.state.webhookLog, rec)
	if len(s.state.webhookLog) > webhookLogSize {
		s.state.webhookLog = s.state.webhookLog[len(s.state.webhookLog)-webhookLogSize:]
	}
	s.mu.Unlock()
	s.log.Info("sandbox webhook", "url", rec.URL, "trackingId", n.trackingID, "statusCode", n.status,
		"attempt", attempt, "httpStatus", rec.HTTPStatus, "outcome", rec.Outcome, "faults", applied, "err", rec.Error)
	return ok
}

// signWebhook is the documented scheme: base64(HMAC-SHA256(key, t + "." + body)).
func signWebhook(key []byte, t string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.", t)
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// alterBody is what the webhook_altered_body fault sends instead of the signed body: what an
// attacker would do, turning the payment completed (or, if it was, changing its reference).
// Re-encoding also changes the bytes, so a receiver that verifies a re-marshalled body fails too.
func alterBody(body []byte) []byte {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return append(bytes.Clone(body), ' ')
	}
	if m["statusCode"] != statusCompleted {
		m["statusCode"] = statusCompleted
	} else {
		m["reference"] = fmt.Sprint(m["reference"], " (altered)")
	}
	out, _ := json.Marshal(m)
	return out
}

func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}
