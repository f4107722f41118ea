package session

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The webhook part of the store contract, on the memory store and on a real Redis, like the rest.
func TestWebhookContract(t *testing.T) { runContract(t, webhookCases, someBackends) }

func webhookEvent(terminal, tracking, status string, at time.Time) WebhookEvent {
	return WebhookEvent{
		ID: WebhookEventID(terminal, tracking, status), TerminalID: terminal, TrackingID: tracking, StatusCode: status,
		ReceivedAt: at, RequestID: "req-" + tracking + "-" + status, Body: []byte(`{"statusCode":"` + status + `"}`),
	}
}

func mustClaim(t *testing.T, st Store, ev WebhookEvent) (*WebhookEvent, bool) {
	t.Helper()
	got, first, err := st.ClaimWebhookEvent(context.Background(), ev)
	if err != nil {
		t.Fatalf("ClaimWebhookEvent(%s): %v", ev.ID, err)
	}
	return got, first
}

func pendingIDs(t *testing.T, st Store, before time.Time) []string {
	t.Helper()
	evs, err := st.PendingWebhookEvents(context.Background(), before, 0)
	if err != nil {
		t.Fatalf("PendingWebhookEvents: %v", err)
	}
	ids := []string{}
	for _, ev := range evs {
		ids = append(ids, ev.TrackingID+"/"+ev.StatusCode)
	}
	return ids
}

var webhookCases = []contractCase{
	{"the first delivery of a change is stored, a repeat finds it and changes nothing", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ev := webhookEvent("term-1", "trk-1", "completed", h.now())
		got, first := mustClaim(t, st, ev)
		if !first || got.State != WebhookPending {
			t.Fatalf("first claim = %+v, %v; want stored as pending", got, first)
		}
		again := ev
		again.RequestID, again.Body, again.ReceivedAt = "req-retry", []byte(`{"other":true}`), h.now().Add(time.Second)
		got, first = mustClaim(t, st, again)
		if first {
			t.Fatal("a repeat of the change was claimed again")
		}
		ev.State = WebhookPending
		if diff := cmp.Diff(&ev, got); diff != "" {
			t.Errorf("a repeat must answer the first delivery, unchanged (-want +got):\n%s", diff)
		}
		// Another status of the same payment, or the same status of another terminal, is another change.
		if _, first := mustClaim(t, st, webhookEvent("term-1", "trk-1", "processing", h.now())); !first {
			t.Error("another status of the payment was taken for a duplicate")
		}
		if _, first := mustClaim(t, st, webhookEvent("term-2", "trk-1", "completed", h.now())); !first {
			t.Error("another terminal's change was taken for a duplicate")
		}
	}},

	{"concurrent deliveries of one change: exactly one claims it", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		const n = 8
		firsts := countWins(n, func(i int) bool {
			ev := webhookEvent("term-1", "trk-race", "completed", h.now())
			ev.RequestID = fmt.Sprintf("req-%d", i)
			_, first, err := st.ClaimWebhookEvent(context.Background(), ev)
			if err != nil {
				t.Errorf("ClaimWebhookEvent: %v", err)
			}
			return first
		})
		if firsts != 1 {
			t.Errorf("%d of %d concurrent deliveries claimed the change, want exactly 1", firsts, n)
		}
	}},

	{"ids that are not WebhookEventID, or missing parts, are refused", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		bad := []WebhookEvent{
			{},
			{ID: "x", TerminalID: "t", TrackingID: "k", StatusCode: "completed", ReceivedAt: h.now()},
			{ID: WebhookEventID("t", "k", ""), TerminalID: "t", TrackingID: "k", ReceivedAt: h.now()},
			{ID: WebhookEventID("t", "k", "completed"), TerminalID: "t", TrackingID: "k", StatusCode: "completed"},
		}
		for _, ev := range bad {
			if _, _, err := st.ClaimWebhookEvent(context.Background(), ev); err == nil {
				t.Errorf("ClaimWebhookEvent(%+v) accepted", ev)
			}
		}
		// ":" inside ids cannot make two changes share a name.
		if WebhookEventID("a:b", "c", "d") == WebhookEventID("a", "b:c", "d") {
			t.Error("event ids collide across parts")
		}
	}},

	{"pending events: oldest first, received before the cut-off, until updated", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		t0 := h.now()
		a := webhookEvent("term-1", "trk-a", "completed", t0.Add(-3*time.Second))
		b := webhookEvent("term-2", "trk-b", "expired", t0.Add(-2*time.Second))
		c := webhookEvent("term-1", "trk-c", "completed", t0.Add(-1*time.Second))
		for _, ev := range []WebhookEvent{c, a, b} { // arrival order differs from time order
			mustClaim(t, st, ev)
		}
		if got, want := pendingIDs(t, st, t0), []string{"trk-a/completed", "trk-b/expired", "trk-c/completed"}; !cmp.Equal(got, want) {
			t.Errorf("pending = %v, want %v", got, want)
		}
		if got, want := pendingIDs(t, st, t0.Add(-1500*time.Millisecond)), []string{"trk-a/completed", "trk-b/expired"}; !cmp.Equal(got, want) {
			t.Errorf("pending before the cut-off = %v, want %v", got, want)
		}
		b.State, b.Note, b.UpdatedAt = WebhookApplied, "confirmed by Bead", t0
		if err := st.UpdateWebhookEvent(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if got, want := pendingIDs(t, st, t0), []string{"trk-a/completed", "trk-c/completed"}; !cmp.Equal(got, want) {
			t.Errorf("pending after one was applied = %v, want %v", got, want)
		}
		// A repeat of an applied change finds it applied: there is nothing left to do.
		if got, first := mustClaim(t, st, webhookEvent("term-2", "trk-b", "expired", t0)); first || got.State != WebhookApplied || got.Note != "confirmed by Bead" {
			t.Errorf("repeat of an applied change = %+v, %v", got, first)
		}
	}},

	{"a claimed event lives for WebhookEventTTL", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ev := webhookEvent("term-1", "trk-ttl", "completed", h.now())
		mustClaim(t, st, ev)
		key := (&store{opts: Options{Prefix: h.prefix}}).webhookEventKey(ev.ID)
		if ttl := h.ttl(t, key); ttl < WebhookEventTTL-time.Minute || ttl > WebhookEventTTL {
			t.Errorf("event ttl %v, want about %v", ttl, WebhookEventTTL)
		}
	}},

	{"delivery logs: newest first, bounded, per terminal, the server's apart", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		t0 := h.now()
		for i := range WebhookLogSize + 5 {
			d := WebhookDelivery{At: t0.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprintf("req-%02d", i),
				TerminalID: "term-1", TrackingID: "trk", StatusCode: "completed", Outcome: DeliveryAccepted, HTTPStatus: 200}
			if err := st.RecordWebhookDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		refused := WebhookDelivery{At: t0, RequestID: "req-bad", Outcome: DeliveryRefused, Check: "timestamp_stale",
			Detail: "t is 10m0s older than this server's clock", HTTPStatus: 403}
		if err := st.RecordWebhookDelivery(ctx, refused); err != nil {
			t.Fatal(err)
		}
		// Two deliveries at the same instant are both kept.
		twin := refused
		twin.RequestID = "req-bad-2"
		if err := st.RecordWebhookDelivery(ctx, twin); err != nil {
			t.Fatal(err)
		}
		got, err := st.WebhookDeliveries(ctx, "term-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != WebhookLogSize || got[0].RequestID != fmt.Sprintf("req-%02d", WebhookLogSize+4) || got[len(got)-1].RequestID != "req-05" {
			t.Errorf("term-1 log has %d entries from %s to %s; want the %d newest, newest first", len(got), got[0].RequestID, got[len(got)-1].RequestID, WebhookLogSize)
		}
		if few, _ := st.WebhookDeliveries(ctx, "term-1", 3); len(few) != 3 {
			t.Errorf("limit 3 gave %d", len(few))
		}
		server, err := st.WebhookDeliveries(ctx, "", 0)
		if err != nil || len(server) != 2 || server[0].Check != "timestamp_stale" || server[0].HTTPStatus != 403 {
			t.Errorf("server log = %+v, %v; want both refusals", server, err)
		}
		if other, _ := st.WebhookDeliveries(ctx, "term-2", 0); other == nil || len(other) != 0 {
			t.Errorf("term-2 log = %#v, want empty and not nil", other)
		}
	}},

	{"signing secrets: sealed, listed, and a replaced one verifies for a grace period", func(t *testing.T, h *harness) {
		st := h.open(t, Options{})
		ctx := context.Background()
		first := []byte("FIRST-SIGNING-SECRET-0123456789ab")
		second := []byte("SECOND-SIGNING-SECRET-0123456789a")
		if err := st.SaveWebhookSecret(ctx, "term-1", first, "https://bff.example/webhooks/bead"); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveWebhookSecret(ctx, "term-2", []byte("TERM2-SECRET"), "https://bff.example/webhooks/bead"); err != nil {
			t.Fatal(err)
		}
		key := (&store{opts: Options{Prefix: h.prefix}}).webhookSecretKey("term-1")
		if raw, ok := h.rawGet(t, key); !ok || bytes.Contains(raw, first) || bytes.Contains(raw, []byte("bff.example")) {
			t.Errorf("the secret record is missing or not sealed: %q", raw)
		}
		if err := st.SaveWebhookSecret(ctx, "term-1", second, "https://bff.example/webhooks/bead"); err != nil {
			t.Fatal(err)
		}
		got, err := st.WebhookSecrets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byTerminal := map[string]WebhookSecret{}
		for _, s := range got {
			byTerminal[s.TerminalID] = s
		}
		t1 := byTerminal["term-1"]
		if len(got) != 2 || !bytes.Equal(t1.Secret, second) || !bytes.Equal(t1.Previous, first) || t1.URL != "https://bff.example/webhooks/bead" {
			t.Errorf("secrets = %+v; want term-1's new secret with the old one as previous, and term-2's", got)
		}
		if d := t1.PreviousUntil.Sub(h.now()); d < WebhookSecretGrace-time.Minute || d > WebhookSecretGrace+time.Second {
			t.Errorf("previous verifies for %v, want about %v", d, WebhookSecretGrace)
		}
		// Registering the same secret again keeps the grace of the one before.
		if err := st.SaveWebhookSecret(ctx, "term-1", second, "https://bff.example/webhooks/bead"); err != nil {
			t.Fatal(err)
		}
		got, _ = st.WebhookSecrets(ctx)
		for _, s := range got {
			if s.TerminalID == "term-1" && !bytes.Equal(s.Previous, first) {
				t.Errorf("a repeated registration dropped the previous secret: %+v", s)
			}
		}
		// Another keyring cannot open them: they are skipped, not an error, not shown.
		other := h.open(t, Options{Keyring: mustKeyring(t, keyB)})
		if got, err := other.WebhookSecrets(ctx); err != nil || len(got) != 0 {
			t.Errorf("with another keyring: %+v, %v; want none", got, err)
		}
	}},
}

// The grace of a replaced secret ends (memory store only: its clock can be moved by a day).
func TestWebhookSecretGraceEnds(t *testing.T) {
	h := newMemoryHarness(t)
	st := h.open(t, Options{})
	ctx := context.Background()
	if err := st.SaveWebhookSecret(ctx, "term-1", []byte("old"), "u"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveWebhookSecret(ctx, "term-1", []byte("new"), "u"); err != nil {
		t.Fatal(err)
	}
	h.elapse(WebhookSecretGrace + time.Second)
	got, err := st.WebhookSecrets(ctx)
	if err != nil || len(got) != 1 || string(got[0].Secret) != "new" || got[0].Previous != nil {
		t.Errorf("after the grace: %+v, %v; want only the new secret", got, err)
	}
	// And pending events older than the queue window are no longer offered.
	mustClaim(t, st, webhookEvent("term-1", "trk-old", "completed", h.now()))
	h.elapse(WebhookQueueWindow + time.Second)
	if ids := pendingIDs(t, st, h.now()); len(ids) != 0 {
		t.Errorf("pending after the window = %v, want none", ids)
	}
}
