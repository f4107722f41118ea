package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Webhooks: what beadbff keeps of Bead's status callbacks.
//
//   - Each accepted change (terminal, tracking id, status) is one WebhookEvent, claimed with SET NX: the
//     first delivery of a change stores it, every repeat (Bead retries, and may deliver one change twice)
//     finds it and changes nothing. The claim is durable before the web server answers 2xx.
//   - A queue (a sorted set of event ids by arrival) lets any process find events that were accepted but
//     not yet processed, after a crash. Finished events stay listed until they age out of its window; the
//     event's State says whether there is work left.
//   - A short log of deliveries per terminal (accepted, duplicate) and one for the whole server (refused:
//     a body that failed its signature names no one it can be trusted about), for the staff page.
//   - The signing secret Bead returned when the webhook was registered from this server, sealed with the
//     keyring like a session, one per terminal, with the one it replaced for a grace period.
//
// Events and their queue share one Redis Cluster hash tag ({wh}), and so do all secrets ({whsec}), so
// that the MGETs that read them stay legal on a Redis Cluster.

// States of a WebhookEvent.
const (
	WebhookPending = "pending" // accepted; its status not yet applied to the payment
	WebhookApplied = "applied" // the payment has been updated (and, if possible, confirmed with Bead)
	WebhookIgnored = "ignored" // nothing to do: not a payment of this server, or stale (see Note)
)

// Defaults for webhooks.
const (
	// WebhookEventTTL is how long an accepted change is kept, and so how long a repeat of it is
	// recognised as a duplicate. Bead retries for minutes (one revision: a day); a week is ample.
	WebhookEventTTL = 7 * 24 * time.Hour
	// WebhookQueueWindow is how far back PendingWebhookEvents looks.
	WebhookQueueWindow = 24 * time.Hour
	// WebhookLogSize is how many deliveries each log keeps.
	WebhookLogSize = 50
	// WebhookSecretGrace is how long a replaced signing secret still verifies: deliveries signed just
	// before a re-registration may still be retried with it.
	WebhookSecretGrace = 24 * time.Hour

	webhookQueueMax  = 10000
	webhookSecretTTL = 3 * 365 * 24 * time.Hour // a registration lasts until replaced; keys need a TTL
	webhookSecretMax = 1000
	webhookLogTTL    = 30 * 24 * time.Hour
)

// WebhookEvent is one accepted status change, as received.
type WebhookEvent struct {
	ID         string    `json:"id"` // WebhookEventID(TerminalID, TrackingID, StatusCode)
	TerminalID string    `json:"terminalId"`
	TrackingID string    `json:"trackingId"`
	StatusCode string    `json:"statusCode"`
	ReceivedAt time.Time `json:"receivedAt"`
	RequestID  string    `json:"requestId"`          // this server's id of the delivery that brought it
	Body       []byte    `json:"body"`               // the raw body as received (it holds no secret)
	State      string    `json:"state"`              // WebhookPending, WebhookApplied or WebhookIgnored
	Note       string    `json:"note,omitempty"`     // why it was ignored, or what the confirming read found
	UpdatedAt  time.Time `json:"updatedAt,omitzero"` // the last state change
}

// WebhookEventID names a change: the dedupe key. Each part is query-escaped, so ":" inside an id cannot
// make two changes share a name.
func WebhookEventID(terminalID, trackingID, statusCode string) string {
	return url.QueryEscape(terminalID) + ":" + url.QueryEscape(trackingID) + ":" + url.QueryEscape(statusCode)
}

// Outcomes of a WebhookDelivery.
const (
	DeliveryAccepted  = "accepted"  // a new change, stored
	DeliveryDuplicate = "duplicate" // a change already stored: answered 2xx, nothing changed
	DeliveryIgnored   = "ignored"   // verified, but about nothing this server can act on
	DeliveryRefused   = "refused"   // failed a check (see Check): answered 4xx/5xx, nothing stored
)

// WebhookDelivery is one POST to /webhooks/bead as the staff page lists it.
type WebhookDelivery struct {
	At         time.Time `json:"at"`
	RequestID  string    `json:"requestId"`
	TerminalID string    `json:"terminalId,omitempty"` // "" in the server-wide log
	TrackingID string    `json:"trackingId,omitempty"`
	StatusCode string    `json:"statusCode,omitempty"`
	Outcome    string    `json:"outcome"`
	Check      string    `json:"check,omitempty"`  // for a refusal: the check that failed, e.g. timestamp_stale
	Detail     string    `json:"detail,omitempty"` // what was wrong, in words (never a secret or the body)
	HTTPStatus int       `json:"httpStatus"`
}

// WebhookSecret is a signing secret registered from this server for one terminal.
type WebhookSecret struct {
	TerminalID    string    `json:"terminalId"`
	Secret        []byte    `json:"secret"`             // the raw key (the base64-decoded signingSecret)
	Previous      []byte    `json:"previous,omitempty"` // the key it replaced; verifies until PreviousUntil
	PreviousUntil time.Time `json:"previousUntil,omitzero"`
	URL           string    `json:"url"` // the webhook URL registered with it
	RegisteredAt  time.Time `json:"registeredAt"`
}

func (s *store) webhookEventKey(id string) string { return s.opts.Prefix + "{wh}:ev:" + id }
func (s *store) webhookQueueKey() string          { return s.opts.Prefix + "{wh}:queue" }
func (s *store) webhookSecretIndexKey() string    { return s.opts.Prefix + "{whsec}:index" }
func (s *store) webhookSecretKey(terminalID string) string {
	return s.opts.Prefix + "{whsec}:" + url.QueryEscape(terminalID)
}

// webhookLogKey is a terminal's delivery log, or the server-wide one for terminalID "".
func (s *store) webhookLogKey(terminalID string) string {
	if terminalID == "" {
		return s.opts.Prefix + "whlog:server"
	}
	return s.opts.Prefix + "whlog:{" + url.QueryEscape(terminalID) + "}"
}

func validEvent(ev WebhookEvent) error {
	switch {
	case ev.TerminalID == "" || ev.TrackingID == "" || ev.StatusCode == "":
		return errors.New("terminal id, tracking id and status code are required")
	case ev.ID != WebhookEventID(ev.TerminalID, ev.TrackingID, ev.StatusCode):
		return errors.New("id is not WebhookEventID of the event")
	case ev.ReceivedAt.IsZero():
		return errors.New("received time is required")
	}
	return nil
}

// ClaimWebhookEvent stores ev (State pending) unless its change is already stored. first is true when
// this call stored it; otherwise stored is what an earlier delivery stored. The event is queued for
// PendingWebhookEvents before it is claimed, so that a claimed event is always findable: a failure
// between the two leaves only a queue entry, which a retry of the delivery fills.
func (s *store) ClaimWebhookEvent(ctx context.Context, ev WebhookEvent) (*WebhookEvent, bool, error) {
	const op = "claim webhook event"
	if err := validEvent(ev); err != nil {
		return nil, false, fmt.Errorf("session: %s: %w", op, err)
	}
	if ev.State == "" {
		ev.State = WebhookPending
	}
	record, err := json.Marshal(ev)
	if err != nil {
		return nil, false, fmt.Errorf("session: %s: encode: %w", op, err)
	}
	cctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, false, err
	}
	queue := s.webhookQueueKey()
	now := s.opts.Now()
	err = s.be.atomically(cctx, func(b batch) {
		b.addIfAbsent(queue, score(ev.ReceivedAt), ev.ID)
		b.dropScoredBelow(queue, score(now.Add(-WebhookQueueWindow)))
		b.keepHighest(queue, webhookQueueMax)
		b.expire(queue, 2*WebhookQueueWindow)
	})
	if err != nil {
		return nil, false, unavailable(op, err)
	}
	added, err := s.be.setNX(cctx, s.webhookEventKey(ev.ID), record, WebhookEventTTL)
	if err != nil {
		return nil, false, unavailable(op, err)
	}
	if added {
		return &ev, true, nil
	}
	raw, err := s.be.get(cctx, s.webhookEventKey(ev.ID))
	if err != nil {
		return nil, false, backendErr(op, err)
	}
	var stored WebhookEvent
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, false, fmt.Errorf("session: %s: %w: %w: %w", op, ErrNotFound, ErrUnreadable, err)
	}
	return &stored, false, nil
}

// UpdateWebhookEvent replaces a claimed event, keeping its time to live from now. It does not claim:
// an event that has expired meanwhile is written again, which is harmless (processing is idempotent).
func (s *store) UpdateWebhookEvent(ctx context.Context, ev WebhookEvent) error {
	const op = "update webhook event"
	if err := validEvent(ev); err != nil {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	record, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("session: %s: encode: %w", op, err)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.set(ctx, s.webhookEventKey(ev.ID), record, WebhookEventTTL); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PendingWebhookEvents returns up to limit events still pending that arrived before receivedBefore and
// within WebhookQueueWindow, oldest first: the work a crashed process left. It looks at the limit newest
// queue entries only, so a caller that wants all must keep up (the web server processes events as they
// arrive; this is its safety net).
func (s *store) PendingWebhookEvents(ctx context.Context, receivedBefore time.Time, limit int) ([]WebhookEvent, error) {
	const op = "pending webhook events"
	if limit <= 0 || limit > webhookQueueMax {
		limit = webhookQueueMax
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, err
	}
	ids, raws, err := s.newestRecords(ctx, op, s.webhookQueueKey(), limit, s.webhookEventKey)
	if err != nil {
		return nil, err
	}
	out := []WebhookEvent{}
	floor := s.opts.Now().Add(-WebhookQueueWindow)
	for i := len(raws) - 1; i >= 0; i-- { // newest gave newest first
		var ev WebhookEvent
		if raws[i] == nil || json.Unmarshal(raws[i], &ev) != nil || ev.ID != ids[i] {
			continue
		}
		if ev.State == WebhookPending && ev.ReceivedAt.Before(receivedBefore) && !ev.ReceivedAt.Before(floor) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// RecordWebhookDelivery adds d to its terminal's log (the server-wide one when d.TerminalID is ""),
// which keeps the WebhookLogSize newest.
func (s *store) RecordWebhookDelivery(ctx context.Context, d WebhookDelivery) error {
	const op = "record webhook delivery"
	if d.At.IsZero() || d.Outcome == "" {
		return fmt.Errorf("session: %s: time and outcome are required", op)
	}
	member, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("session: %s: encode: %w", op, err)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	key := s.webhookLogKey(d.TerminalID)
	err = s.be.atomically(ctx, func(b batch) {
		// The record itself is the member: one read lists the log. Its request id and time make it
		// unique, so two deliveries never collapse into one entry.
		b.addIfAbsent(key, score(d.At), string(member))
		b.keepHighest(key, WebhookLogSize)
		b.expire(key, webhookLogTTL)
	})
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// WebhookDeliveries returns up to limit deliveries of the terminal's log (the server-wide one for ""),
// newest first (never nil).
func (s *store) WebhookDeliveries(ctx context.Context, terminalID string, limit int) ([]WebhookDelivery, error) {
	const op = "webhook deliveries"
	if limit <= 0 || limit > WebhookLogSize {
		limit = WebhookLogSize
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, err
	}
	members, err := s.be.newest(ctx, s.webhookLogKey(terminalID), limit)
	if err != nil {
		return nil, unavailable(op, err)
	}
	out := make([]WebhookDelivery, 0, len(members))
	for _, m := range members {
		var d WebhookDelivery
		if json.Unmarshal([]byte(m), &d) == nil && d.TerminalID == terminalID {
			out = append(out, d)
		}
	}
	return out, nil
}

// SaveWebhookSecret keeps secret as terminalID's signing secret, sealed, registered for url. A different
// secret already kept becomes Previous and goes on verifying for WebhookSecretGrace.
func (s *store) SaveWebhookSecret(ctx context.Context, terminalID string, secret []byte, url string) error {
	const op = "save webhook secret"
	if terminalID == "" || len(secret) == 0 {
		return fmt.Errorf("session: %s: terminal id and secret are required", op)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return err
	}
	now := s.opts.Now()
	next := WebhookSecret{TerminalID: terminalID, Secret: secret, URL: url, RegisteredAt: now}
	key := s.webhookSecretKey(terminalID)
	if old, err := s.openWebhookSecret(ctx, key); err == nil {
		switch {
		case string(old.Secret) != string(secret):
			next.Previous, next.PreviousUntil = old.Secret, now.Add(WebhookSecretGrace)
		case now.Before(old.PreviousUntil): // registered again with the same secret: keep the grace
			next.Previous, next.PreviousUntil = old.Previous, old.PreviousUntil
		}
	} else if errors.Is(err, ErrUnavailable) {
		return err
	}
	plain, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("session: %s: encode: %w", op, err)
	}
	index := s.webhookSecretIndexKey()
	err = s.be.atomically(ctx, func(b batch) {
		b.set(key, s.keys.Seal(key, plain), webhookSecretTTL)
		b.addIfAbsent(index, score(now), terminalID)
		b.keepHighest(index, webhookSecretMax)
		b.expire(index, webhookSecretTTL)
	})
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// WebhookSecrets returns every terminal's registered secret, newest registration first (never nil). A
// Previous whose grace has passed is left out. A record that no longer opens (sealed under a key since
// removed from SESSION_KEYS) is skipped: the terminal registers again.
func (s *store) WebhookSecrets(ctx context.Context) ([]WebhookSecret, error) {
	const op = "webhook secrets"
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, err
	}
	terminals, raws, err := s.newestRecords(ctx, op, s.webhookSecretIndexKey(), webhookSecretMax, s.webhookSecretKey)
	if err != nil {
		return nil, err
	}
	out := []WebhookSecret{}
	now := s.opts.Now()
	for i, raw := range raws {
		if raw == nil {
			continue
		}
		sec, err := s.decodeWebhookSecret(s.webhookSecretKey(terminals[i]), raw)
		if err != nil || sec.TerminalID != terminals[i] {
			continue
		}
		if !now.Before(sec.PreviousUntil) {
			sec.Previous, sec.PreviousUntil = nil, time.Time{}
		}
		out = append(out, *sec)
	}
	return out, nil
}

func (s *store) openWebhookSecret(ctx context.Context, key string) (*WebhookSecret, error) {
	raw, err := s.be.get(ctx, key)
	if err != nil {
		return nil, backendErr("save webhook secret", err)
	}
	return s.decodeWebhookSecret(key, raw)
}

func (s *store) decodeWebhookSecret(key string, blob []byte) (*WebhookSecret, error) {
	plain, err := s.keys.Open(key, blob)
	if err != nil {
		return nil, fmt.Errorf("session: webhook secret: %w: %w", ErrNotFound, err)
	}
	var sec WebhookSecret
	if err := json.Unmarshal(plain, &sec); err != nil {
		// Not the JSON error's text: it could quote the secret.
		return nil, fmt.Errorf("session: webhook secret: %w: %w: does not decode", ErrNotFound, ErrUnreadable)
	}
	return &sec, nil
}
