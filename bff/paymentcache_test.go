package bff

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/session"
)

// trackingRealm is a realm whose payments API answers status reads with status. during, if set, runs in
// the next read, before it answers (another server's work while Bead answers); while down, reads fail as
// when Bead cannot be reached.
type trackingRealm struct {
	fakeRealm
	mu     sync.Mutex
	status bead.Status
	reads  int
	during func()
	down   bool
}

func (f *trackingRealm) Tracking(_ context.Context, _, trackingID string) (*bead.PaymentStatus, error) {
	f.mu.Lock()
	during := f.during
	f.during = nil
	f.mu.Unlock()
	if during != nil {
		during()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.down {
		return nil, &bead.TransportError{Op: "tracking", Err: context.DeadlineExceeded}
	}
	return &bead.PaymentStatus{TrackingID: trackingID, TerminalID: "t1", MerchantID: "m1", Status: f.status}, nil
}

func (f *trackingRealm) answer(st bead.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = st
}

func newTrackingRealm(st bead.Status) *trackingRealm {
	return &trackingRealm{fakeRealm: fakeRealm{now: time.Now, terminal: "t1"}, status: st}
}

// paymentFixture is a server whose store is mem (seen through wrap, when it is not nil), with a logged-in
// session of terminal t1 and t1's payment trk-1 (created, reference "order 7", checkout co-1).
func paymentFixture(t *testing.T, realm beadAPI, wrap func(session.Store) session.Store) (mem session.Store, srv *Server, sess *session.Session) {
	t.Helper()
	mem, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := mem
	if wrap != nil {
		st = wrap(mem)
	}
	srv = terminalServer(t, st, realm, nil)
	sess = seedSession(t, mem, "t1", "m1", session.Token{AccessToken: jwtFor("t1", time.Now().Add(time.Hour)), RefreshToken: "r",
		Expiry: time.Now().Add(time.Hour)})
	if _, _, err := mem.AddPayment(context.Background(), session.Payment{TrackingID: "trk-1", TerminalID: "t1", MerchantID: "m1",
		CheckoutID: "co-1", Amount: "4.20", Reference: "order 7", StatusCode: string(bead.StatusCreated)}); err != nil {
		t.Fatal(err)
	}
	return mem, srv, sess
}

// countingStore counts the payment record reads that reach the store.
type countingStore struct {
	session.Store
	mu   sync.Mutex
	gets int
}

func (c *countingStore) GetPayment(ctx context.Context, terminalID, trackingID string) (*session.Payment, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.GetPayment(ctx, terminalID, trackingID)
}

func (c *countingStore) recordReads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

// getStatus is GET /api/v1/payments/{id} on srv with the session's cookie; it returns the answer's statusCode.
func getStatus(t *testing.T, srv *Server, sess *session.Session, trackingID string) string {
	t.Helper()
	code, status, err := readStatus(t, srv, sess, trackingID)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET payment: %d, %v", code, err)
	}
	return status
}

// readStatus is getStatus for answers that may not be 200: the answer's HTTP status, its statusCode and
// the error decoding its body.
func readStatus(t *testing.T, srv *Server, sess *session.Session, trackingID string) (code int, status string, err error) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/payments/"+trackingID, nil)
	req.Header.Set("Cookie", srv.cookieName()+"="+sess.ID)
	res, err := srv.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		StatusCode string `json:"statusCode"`
	}
	err = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.StatusCode, err
}

// A status read takes the payment record from this process's copy, so in steady state it reads no record
// from the store; but a read that changes the record starts from the store's, so a copy that is older
// than another server's write (here a webhook's PendingStatus) never overwrites it.
func TestPaymentCopy(t *testing.T) {
	ctx := context.Background()
	var st *countingStore
	realm := newTrackingRealm(bead.StatusCreated)
	mem, srv, sess := paymentFixture(t, realm, func(mem session.Store) session.Store { st = &countingStore{Store: mem}; return st })

	if got := getStatus(t, srv, sess, "trk-1"); got != string(bead.StatusCreated) {
		t.Fatalf("first read: statusCode %q, want created", got)
	}
	warm := st.recordReads()
	for range 5 {
		getStatus(t, srv, sess, "trk-1")
	}
	if n := st.recordReads() - warm; n != 0 {
		t.Errorf("5 steady-state status reads read the payment record from the store %d times, want 0", n)
	}
	if realm.reads != 6 {
		t.Errorf("Bead was read %d times, want 6 (every status read asks Bead)", realm.reads)
	}

	// Another server's webhook worker records what a webhook announced; this server's copy lacks it.
	rec, err := mem.GetPayment(ctx, "t1", "trk-1")
	if err != nil {
		t.Fatal(err)
	}
	rec.PendingStatus = string(bead.StatusCompleted)
	if err := mem.PutPayment(ctx, *rec); err != nil {
		t.Fatal(err)
	}
	realm.answer(bead.StatusProcessing)
	if got := getStatus(t, srv, sess, "trk-1"); got != string(bead.StatusProcessing) {
		t.Errorf("after Bead moved: statusCode %q, want processing", got)
	}
	after, err := mem.GetPayment(ctx, "t1", "trk-1")
	if err != nil {
		t.Fatal(err)
	}
	if after.StatusCode != string(bead.StatusProcessing) || after.PendingStatus != string(bead.StatusCompleted) ||
		after.Reference != "order 7" || after.CheckoutID != "co-1" {
		t.Errorf("stored after the move: status %q, pending %q, reference %q, checkout %q; want processing, completed "+
			"(the other server's), order 7, co-1", after.StatusCode, after.PendingStatus, after.Reference, after.CheckoutID)
	}

	// A final status is final: the copy answers without Bead and without the store.
	realm.answer(bead.StatusCompleted)
	getStatus(t, srv, sess, "trk-1")
	reads, records := realm.reads, st.recordReads()
	if got := getStatus(t, srv, sess, "trk-1"); got != string(bead.StatusCompleted) {
		t.Errorf("final: statusCode %q, want completed", got)
	}
	if realm.reads != reads || st.recordReads() != records {
		t.Errorf("a final payment's read asked Bead %d and the store %d more times, want 0 and 0",
			realm.reads-reads, st.recordReads()-records)
	}
}

// A copy lives a minute at most, so what another server recorded shows here within a minute even when
// Bead's status does not move.
func TestPaymentCopyExpires(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c := newPaymentCache(func() time.Time { return now })
	c.put(&session.Payment{TerminalID: "t1", TrackingID: "trk-1", StatusCode: "created"})
	if _, ok := c.get("t1", "trk-1"); !ok {
		t.Fatal("a fresh copy was not kept")
	}
	got, _ := c.get("t1", "trk-1")
	got.StatusCode = "changed by a caller"
	if again, _ := c.get("t1", "trk-1"); again.StatusCode != "created" {
		t.Errorf("a caller's change reached the cache: %q", again.StatusCode)
	}
	now = now.Add(paymentCacheTTL)
	if _, ok := c.get("t1", "trk-1"); ok {
		t.Errorf("a copy %v old was still used", paymentCacheTTL)
	}
}
