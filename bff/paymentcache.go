package bff

import (
	"context"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"beadbff/session"
)

// paymentCache is this process's copy of the payment records it read or wrote, so that a status read in
// steady state costs no store read beyond the session's own: the record is needed only to lay Bead's
// answer over (reference, checkout, creation time) and to skip Bead for a final payment.
//
// A copy can be older than the store's: another server may have recorded a webhook's PendingStatus or a
// newer status. That never reaches the store, because a status read that would change the record writes
// it from a fresh store read (paymentStatus), and never misleads about the status, which comes from
// Bead's answer of the moment. What a copy can miss is another server's "confirming…" and, for a payment
// that became final elsewhere, nothing: Bead says so. Copies live paymentCacheTTL at most, which bounds
// that, and a full cache forgets its least recently used copy first.
type paymentCache struct {
	lru *lru.Cache[topicKey, paymentCopy]
	now func() time.Time
}

// paymentCopy is one copy and when it stops being used. (The library's expirable LRU would do this
// too, but runs a goroutine per cache that never ends.)
type paymentCopy struct {
	p     session.Payment
	until time.Time
}

const (
	maxCachedPayments = 10000 // some tens of MB at most (a record is a few hundred bytes to a few kB)
	paymentCacheTTL   = time.Minute
)

func newPaymentCache(now func() time.Time) *paymentCache {
	c, err := lru.New[topicKey, paymentCopy](maxCachedPayments)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &paymentCache{lru: c, now: now}
}

func (c *paymentCache) get(terminalID, trackingID string) (*session.Payment, bool) {
	e, ok := c.lru.Get(topicKey{terminalID, trackingID})
	if !ok || !c.now().Before(e.until) {
		return nil, false
	}
	return &e.p, true // a copy: the caller may change it
}

func (c *paymentCache) put(p *session.Payment) {
	c.lru.Add(topicKey{p.TerminalID, p.TrackingID}, paymentCopy{p: *p, until: c.now().Add(paymentCacheTTL)})
}

func (c *paymentCache) drop(terminalID, trackingID string) {
	c.lru.Remove(topicKey{terminalID, trackingID})
}

// paymentRecord is the payment record from this process's copy (copied true), else from the store (then
// copied).
func (s *Server) paymentRecord(ctx context.Context, terminalID, trackingID string) (p *session.Payment, copied bool, err error) {
	if p, ok := s.payments.get(terminalID, trackingID); ok {
		return p, true, nil
	}
	p, err = s.storedPayment(ctx, terminalID, trackingID)
	return p, false, err
}

// storedPayment reads the payment record from the store and refreshes this process's copy with it.
func (s *Server) storedPayment(ctx context.Context, terminalID, trackingID string) (*session.Payment, error) {
	p, err := s.store.GetPayment(ctx, terminalID, trackingID)
	if err != nil {
		return nil, err
	}
	s.payments.put(p)
	return p, nil
}

// recordPayment writes p to the store and keeps this process's copy in step. A failed write drops the copy,
// since the store may or may not have taken it.
func (s *Server) recordPayment(ctx context.Context, p *session.Payment) error {
	if err := s.store.PutPayment(ctx, *p); err != nil {
		s.payments.drop(p.TerminalID, p.TrackingID)
		return err
	}
	s.payments.put(p)
	return nil
}
