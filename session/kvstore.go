package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"
)

// store is the one implementation of Store. It owns the meaning (key names, sealing, JSON, TTLs, list
// order and trimming); the backend only keeps bytes. Both NewMemory and NewRedis return a *store.
type store struct {
	be     backend
	keys   *Keyring
	opts   Options
	closed atomic.Bool
}

var _ Store = (*store)(nil)

// errClosed is what every call of a closed store wraps (with ErrUnavailable).
var errClosed = errors.New("store closed")

// idBytes is the entropy of a session id; its text form is idLen characters of unpadded URL-safe base64.
const (
	idBytes = 32
	idLen   = 43
)

func newStore(be backend, opts Options) (*store, error) {
	if opts.Keyring == nil {
		return nil, errors.New("session: options: Keyring is required")
	}
	return &store{be: be, keys: opts.Keyring, opts: opts}, nil
}

// Key names. Ids that come from Bead or from callers are query-escaped, so that ":" and "{" inside them
// cannot make two different (terminal, tracking id) pairs share a key. The terminal id sits in a Redis
// Cluster hash tag ({...}) so that a terminal's records and its list live in one slot: when a Cluster
// URL form is added, ListPayments's MGET stays legal and PutPayment's record and list entry stay in one
// MULTI (the checkout key, in its own slot, then gets a MULTI of its own).

// sessionKey never contains the cookie value: a Redis dump or MONITOR must not hand out sessions.
func (s *store) sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.opts.Prefix + "sess:" + hex.EncodeToString(sum[:])
}

func (s *store) paymentKey(terminalID, trackingID string) string {
	return s.opts.Prefix + "pay:{" + url.QueryEscape(terminalID) + "}:" + url.QueryEscape(trackingID)
}

func (s *store) listKey(terminalID string) string {
	return s.opts.Prefix + "list:{" + url.QueryEscape(terminalID) + "}"
}

func (s *store) checkoutKey(checkoutID string) string {
	return s.opts.Prefix + "co:" + url.QueryEscape(checkoutID)
}

// call starts one store call: the closed check and the per-call budget. context.WithTimeout keeps an
// earlier deadline of ctx, so CallTimeout only ever shortens.
func (s *store) call(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return ctx, func() {}, unavailable(op, errClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	return ctx, cancel, nil
}

func unavailable(op string, err error) error {
	return fmt.Errorf("session: %s: %w: %w", op, ErrUnavailable, err)
}

// backendErr sorts a backend error: absence stays ErrNotFound, anything else is the store failing.
func backendErr(op string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("session: %s: %w", op, ErrNotFound)
	}
	return unavailable(op, err)
}

func (s *store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.call(ctx, "ping")
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.ping(ctx); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

func (s *store) NewID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: new id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormedID reports whether id has the shape NewID gives. Anything else (a forged, truncated or
// foreign cookie) cannot name a stored session, so Load answers it without a round trip to Redis.
func wellFormedID(id string) bool {
	if len(id) != idLen {
		return false
	}
	// Strict rejects non-zero padding bits, so each session has exactly one spelling.
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil && len(b) == idBytes
}

func (s *store) Load(ctx context.Context, id string) (*Session, error) {
	if !wellFormedID(id) {
		return nil, fmt.Errorf("session: load: %w: malformed session id", ErrNotFound)
	}
	ctx, cancel, err := s.call(ctx, "load")
	defer cancel()
	if err != nil {
		return nil, err
	}
	key := s.sessionKey(id)
	blob, err := s.be.get(ctx, key)
	if err != nil {
		return nil, backendErr("load", err)
	}
	plain, err := s.keys.Open(key, blob)
	if err != nil {
		return nil, fmt.Errorf("session: load: %w: %w", ErrNotFound, err)
	}
	var sess Session
	if err := json.Unmarshal(plain, &sess); err != nil {
		// The blob opened, so it is ours; its JSON is from a version of this code that no longer
		// decodes. Said without the JSON error's text, which can quote the (secret) plaintext.
		return nil, fmt.Errorf("session: load: %w: %w: sealed session does not decode", ErrNotFound, ErrUnreadable)
	}
	sess.ID = id
	if !sess.ExpiresAt.IsZero() {
		sess.ExpiresIn = max(sess.ExpiresAt.Sub(s.opts.Now()), 0)
	}
	return &sess, nil
}

// sealSession is what Save and Touch write: sess, with ExpiresAt set to ttl from now, JSON, sealed.
func (s *store) sealSession(op string, sess *Session, ttl time.Duration) (key string, blob []byte, err error) {
	switch {
	case sess == nil:
		return "", nil, fmt.Errorf("session: %s: nil session", op)
	case !wellFormedID(sess.ID):
		// A session under any other id could never be loaded again.
		return "", nil, fmt.Errorf("session: %s: malformed session id (use NewID)", op)
	case ttl <= 0:
		// Redis would keep a key with no TTL forever; a session must always end.
		return "", nil, fmt.Errorf("session: %s: ttl %v is not positive", op, ttl)
	}
	next := *sess
	next.ExpiresAt = s.opts.Now().Add(ttl).UTC()
	plain, err := json.Marshal(&next)
	if err != nil {
		return "", nil, fmt.Errorf("session: %s: encode: %w", op, err)
	}
	key = s.sessionKey(sess.ID)
	sess.ExpiresAt, sess.ExpiresIn = next.ExpiresAt, ttl
	return key, s.keys.Seal(key, plain), nil
}

func (s *store) Save(ctx context.Context, sess *Session, ttl time.Duration) error {
	key, blob, err := s.sealSession("save", sess, ttl)
	if err != nil {
		return err
	}
	ctx, cancel, err := s.call(ctx, "save")
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.set(ctx, key, blob, ttl); err != nil {
		return unavailable("save", err)
	}
	return nil
}

// Touch rewrites the whole session. That is safe because a session never changes after its login (it
// holds no token: the terminal's is kept apart), so two requests touching it at once write the same
// fields; and SET XX keeps a logout's delete.
func (s *store) Touch(ctx context.Context, sess *Session, ttl time.Duration) error {
	if sess == nil {
		return errors.New("session: touch: nil session")
	}
	next := *sess
	next.LastSeen = s.opts.Now().UTC()
	key, blob, err := s.sealSession("touch", &next, ttl)
	if err != nil {
		return err
	}
	ctx, cancel, err := s.call(ctx, "touch")
	defer cancel()
	if err != nil {
		return err
	}
	kept, err := s.be.setXX(ctx, key, blob, ttl)
	if err != nil {
		return unavailable("touch", err)
	}
	if !kept {
		return fmt.Errorf("session: touch: %w", ErrNotFound)
	}
	*sess = next
	return nil
}

func (s *store) Delete(ctx context.Context, id string) error {
	if !wellFormedID(id) {
		return nil // nothing can be stored under it
	}
	ctx, cancel, err := s.call(ctx, "delete")
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.del(ctx, s.sessionKey(id)); err != nil {
		return unavailable("delete", err)
	}
	return nil
}

// checkoutRef is what a checkout key holds: where the payment record is.
type checkoutRef struct {
	TerminalID string `json:"tid"`
	TrackingID string `json:"trk"`
}

// score orders a terminal's list. Microseconds keep float64 exact (2^53 µs is 285 years).
func score(t time.Time) float64 { return float64(t.UnixMicro()) }

// AddPayment records a newly created payment unless the terminal already has one with its tracking id
// (two creates with one Idempotency-Key get one payment from Bead): it returns what is stored, and true
// when that is p. The record is claimed with SET NX first, so concurrent adds agree on one checkout id.
func (s *store) AddPayment(ctx context.Context, p Payment) (*Payment, bool, error) {
	if p.TerminalID == "" || p.TrackingID == "" {
		return nil, false, errors.New("session: add payment: terminal id and tracking id are required")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.opts.Now()
	}
	record, err := json.Marshal(p)
	if err != nil {
		return nil, false, fmt.Errorf("session: add payment: encode: %w", err)
	}
	cctx, cancel, err := s.call(ctx, "add payment")
	defer cancel()
	if err != nil {
		return nil, false, err
	}
	added, err := s.be.setNX(cctx, s.paymentKey(p.TerminalID, p.TrackingID), record, s.opts.PaymentTTL)
	if err != nil {
		return nil, false, unavailable("add payment", err)
	}
	if !added {
		existing, err := s.GetPayment(ctx, p.TerminalID, p.TrackingID)
		if err != nil {
			return nil, false, err
		}
		// The add that stored it may have failed before indexing it (the store went away between the
		// two writes): index it now, or it would never be listed and its checkout id would find nothing.
		// Indexing twice changes nothing (the list keeps its first position).
		if err := s.indexPayment(ctx, existing, nil); err != nil {
			return nil, false, err
		}
		return existing, false, nil
	}
	if err := s.PutPayment(ctx, p); err != nil {
		return nil, false, err
	}
	return &p, true, nil
}

func (s *store) lockKey(name string) string { return s.opts.Prefix + "lock:" + name }

// Lock takes the named lock for ttl if no one holds it, and returns the token that releases it; "" when
// another holder has it. A lock expires by itself, so a crashed holder cannot keep it.
func (s *store) Lock(ctx context.Context, name string, ttl time.Duration) (string, error) {
	token, err := s.NewID()
	if err != nil {
		return "", err
	}
	ctx, cancel, err := s.call(ctx, "lock")
	defer cancel()
	if err != nil {
		return "", err
	}
	ok, err := s.be.setNX(ctx, s.lockKey(name), []byte(token), ttl)
	if err != nil {
		return "", unavailable("lock", err)
	}
	if !ok {
		return "", nil
	}
	return token, nil
}

// Unlock releases the named lock if token still holds it (never a lock that expired and was taken since).
func (s *store) Unlock(ctx context.Context, name, token string) error {
	if token == "" {
		return nil
	}
	ctx, cancel, err := s.call(ctx, "unlock")
	defer cancel()
	if err != nil {
		return err
	}
	if err := s.be.delIfEquals(ctx, s.lockKey(name), []byte(token)); err != nil {
		return unavailable("unlock", err)
	}
	return nil
}

// ExtendLock renews the named lock's lease to ttl from now if token still holds it, and says whether it
// does: a holder whose work outlasts the lease renews it, and stops when it has lost the lock.
func (s *store) ExtendLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if token == "" || ttl <= 0 {
		return false, nil
	}
	ctx, cancel, err := s.call(ctx, "extend lock")
	defer cancel()
	if err != nil {
		return false, err
	}
	ok, err := s.be.extendIfEquals(ctx, s.lockKey(name), []byte(token), ttl)
	if err != nil {
		return false, unavailable("extend lock", err)
	}
	return ok, nil
}

// PutPayment writes the record and its place in the terminal's list in one MULTI, then its checkout id.
// A zero CreatedAt is set to now, so that every listed payment has a place in the order. The list
// entry is added only if absent, which is what keeps a re-put payment at its first position.
func (s *store) PutPayment(ctx context.Context, p Payment) error {
	if p.TerminalID == "" || p.TrackingID == "" {
		return errors.New("session: put payment: terminal id and tracking id are required")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.opts.Now()
	}
	record, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("session: put payment: encode: %w", err)
	}
	return s.indexPayment(ctx, &p, record)
}

// indexPayment lists p in its terminal's list (keeping a first position it already has) and points its
// checkout id at it; with record, it writes the record too, in the same MULTI as the list.
func (s *store) indexPayment(ctx context.Context, p *Payment, record []byte) error {
	var ref []byte
	if p.CheckoutID != "" {
		var err error
		if ref, err = json.Marshal(checkoutRef{TerminalID: p.TerminalID, TrackingID: p.TrackingID}); err != nil {
			return fmt.Errorf("session: put payment: encode: %w", err)
		}
	}
	ctx, cancel, err := s.call(ctx, "put payment")
	defer cancel()
	if err != nil {
		return err
	}
	now := s.opts.Now()
	ttl := s.opts.PaymentTTL
	list := s.listKey(p.TerminalID)
	// The record and the terminal's list share the {terminal} hash tag, so they change together in one
	// MULTI even on a Redis Cluster. The checkout key cannot share it (a checkout is looked up by its id
	// alone), so it is written after: a checkout id never points at a record that is not there yet.
	err = s.be.atomically(ctx, func(b batch) {
		if record != nil {
			b.set(s.paymentKey(p.TerminalID, p.TrackingID), record, ttl)
		}
		b.addIfAbsent(list, score(p.CreatedAt), p.TrackingID)
		b.dropScoredBelow(list, score(now.Add(-ttl)))
		b.keepHighest(list, s.opts.MaxPayments)
		b.expire(list, ttl)
	})
	if err != nil {
		return unavailable("put payment", err)
	}
	if ref != nil {
		if err := s.be.set(ctx, s.checkoutKey(p.CheckoutID), ref, ttl); err != nil {
			return unavailable("put payment", err)
		}
	}
	return nil
}

func (s *store) GetPayment(ctx context.Context, terminalID, trackingID string) (*Payment, error) {
	ctx, cancel, err := s.call(ctx, "get payment")
	defer cancel()
	if err != nil {
		return nil, err
	}
	return s.getPayment(ctx, "get payment", terminalID, trackingID)
}

func (s *store) getPayment(ctx context.Context, op, terminalID, trackingID string) (*Payment, error) {
	raw, err := s.be.get(ctx, s.paymentKey(terminalID, trackingID))
	if err != nil {
		return nil, backendErr(op, err)
	}
	var p Payment
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("session: %s: %w: %w: %w", op, ErrNotFound, ErrUnreadable, err)
	}
	// The key already scopes the record to its terminal; this guards against a record written under
	// the wrong key by hand or by a bug, which must never leak to another terminal.
	if p.TerminalID != terminalID || p.TrackingID != trackingID {
		return nil, fmt.Errorf("session: %s: %w", op, ErrNotFound)
	}
	return &p, nil
}

// newestRecords reads the n newest members of the sorted set index, highest score first, and the value
// stored under keyOf(member) for each (nil where it is gone): an index and the records it points at, the
// shape of the payment list, the webhook queue and the secret registry alike.
func (s *store) newestRecords(ctx context.Context, op, index string, n int, keyOf func(string) string) ([]string, [][]byte, error) {
	members, err := s.be.newest(ctx, index, n)
	if err != nil {
		return nil, nil, unavailable(op, err)
	}
	if len(members) == 0 {
		return nil, nil, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = keyOf(m)
	}
	raws, err := s.be.getMany(ctx, keys)
	if err != nil {
		return nil, nil, unavailable(op, err)
	}
	return members, raws, nil
}

// ListPayments reads the newest ids of the terminal's list and their records in two round trips. A limit
// of 0 or less, or above MaxPayments, means MaxPayments. Records that have expired, or no longer decode,
// are left out rather than failing the whole dashboard.
func (s *store) ListPayments(ctx context.Context, terminalID string, limit int) ([]Payment, error) {
	if limit <= 0 || limit > s.opts.MaxPayments {
		limit = s.opts.MaxPayments
	}
	ctx, cancel, err := s.call(ctx, "list payments")
	defer cancel()
	if err != nil {
		return nil, err
	}
	_, raws, err := s.newestRecords(ctx, "list payments", s.listKey(terminalID), limit,
		func(id string) string { return s.paymentKey(terminalID, id) })
	if err != nil {
		return nil, err
	}
	payments := make([]Payment, 0, len(raws)) // never nil: the API answers [] rather than null
	for _, raw := range raws {
		var p Payment
		if raw == nil || json.Unmarshal(raw, &p) != nil || p.TerminalID != terminalID {
			continue
		}
		payments = append(payments, p)
	}
	return payments, nil
}

func (s *store) PaymentByCheckout(ctx context.Context, checkoutID string) (*Payment, error) {
	const op = "payment by checkout"
	if checkoutID == "" {
		return nil, fmt.Errorf("session: %s: %w", op, ErrNotFound)
	}
	ctx, cancel, err := s.call(ctx, op)
	defer cancel()
	if err != nil {
		return nil, err
	}
	raw, err := s.be.get(ctx, s.checkoutKey(checkoutID))
	if err != nil {
		return nil, backendErr(op, err)
	}
	var ref checkoutRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		return nil, fmt.Errorf("session: %s: %w: %w: %w", op, ErrNotFound, ErrUnreadable, err)
	}
	p, err := s.getPayment(ctx, op, ref.TerminalID, ref.TrackingID)
	if err != nil {
		return nil, err
	}
	// A re-put with a new checkout id leaves the old checkout key behind until it expires; it must not
	// keep opening the payment.
	if p.CheckoutID != checkoutID {
		return nil, fmt.Errorf("session: %s: %w", op, ErrNotFound)
	}
	return p, nil
}

func (s *store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.be.close(); err != nil {
		return fmt.Errorf("session: close: %w", err)
	}
	return nil
}
