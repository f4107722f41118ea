// Package session owns what beadbff keeps between requests: staff sessions (sealed with an AEAD under
// SESSION_KEYS, because they hold Bead tokens), the index of payments each terminal created through this
// server, and the checkout ids that point at them. It is the only package that knows Redis; the in-memory
// store behaves the same and passes the same contract suite.
package session

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound: no such session, payment or checkout (or it expired). A stored blob that cannot be opened
// (corrupt, unknown key, old format) is reported as ErrNotFound too, wrapped with ErrUnreadable.
var ErrNotFound = errors.New("session: not found")

// ErrUnreadable marks a stored session that exists but cannot be decrypted or decoded.
var ErrUnreadable = errors.New("session: stored session unreadable")

// ErrUnavailable wraps every failure of the backing store itself (Redis down, frozen, out of time).
var ErrUnavailable = errors.New("session: store unavailable")

// Token is a Bead token set: what a terminal's TerminalToken holds. Only this package's sealing ever writes
// it to a store.
type Token struct {
	AccessToken   string    `json:"at"`
	RefreshToken  string    `json:"rt"`
	IDToken       string    `json:"it,omitempty"`
	TokenType     string    `json:"tt,omitempty"`
	Scope         string    `json:"sc,omitempty"`
	Expiry        time.Time `json:"exp"`
	RefreshExpiry time.Time `json:"rexp,omitzero"`
	ObtainedAt    time.Time `json:"obt,omitzero"`
}

// Session is one logged-in staff member (or front-end app) of one terminal. It holds no token: it uses
// its terminal's (TerminalToken), for as long as that is of the lineage the session joined at login.
type Session struct {
	ID         string    `json:"-"` // the opaque cookie value; never stored in clear
	TerminalID string    `json:"tid"`
	MerchantID string    `json:"mid"`
	Username   string    `json:"usr"`
	Lineage    string    `json:"lin"`  // the TerminalToken lineage this session joined
	CSRFToken  string    `json:"csrf"` // per-session token for HTML forms
	CreatedAt  time.Time `json:"cat"`
	LastSeen   time.Time `json:"lst"` // when the session was saved or last touched
	// ExpiresAt is when the store stops keeping the session, as Save or Touch last set it. Kept in the
	// sealed session itself so that Load is one GET: no PTTL beside it.
	ExpiresAt time.Time `json:"exp,omitzero"`

	// ExpiresIn is how long the store will still keep the session (ExpiresAt from Load's clock; 0 when
	// unknown, for a session written before ExpiresAt was stored). Not stored.
	ExpiresIn time.Duration `json:"-"`
}

// Payment is a payment this server created, as listed on the dashboard and by GET /api/v1/payments.
// Amounts are decimal strings. It holds nothing secret and is stored unsealed.
type Payment struct {
	TrackingID   string    `json:"trackingId"`
	PaymentID    string    `json:"paymentId,omitempty"`
	CheckoutID   string    `json:"checkoutId"`
	TerminalID   string    `json:"terminalId"`
	MerchantID   string    `json:"merchantId"`
	PaymentURL   string    `json:"paymentUrl"`
	Amount       string    `json:"amount"`
	Currency     string    `json:"currency,omitempty"`
	PaidAmount   string    `json:"paidAmount,omitempty"`   // what the shopper paid, in PaidCurrency
	PaidCurrency string    `json:"paidCurrency,omitempty"` // the payment currency (e.g. USDC), once chosen
	Reference    string    `json:"reference"`
	Description  string    `json:"description,omitempty"`
	StatusCode   string    `json:"statusCode"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`

	// PendingStatus is a status a verified webhook announced that a status read from Bead has not yet
	// confirmed ("" when none). StatusCode only ever comes from Bead's own answers, so nothing is shown
	// as paid on a webhook's word alone.
	PendingStatus string `json:"pendingStatus,omitempty"`
}

// Store is what the web server needs to keep. Every method honours ctx's deadline; failures of the backend
// wrap ErrUnavailable.
type Store interface {
	// Ping checks the backend answers (for /readyz and the start-up check).
	Ping(ctx context.Context) error

	// NewID returns a fresh random session id (256 bits, URL-safe base64).
	NewID() (string, error)
	// Load opens the session with this id: ErrNotFound when absent, expired or unreadable. An id not of
	// NewID's shape is ErrNotFound at once, without a round trip.
	Load(ctx context.Context, id string) (*Session, error)
	// Save seals and stores s under s.ID for ttl (replacing what was there), setting s.ExpiresAt. s.ID
	// must come from NewID and ttl must be positive.
	Save(ctx context.Context, s *Session, ttl time.Duration) error
	// Touch is Save for a session that must still exist: it sets s.LastSeen to now and extends the
	// session's time to live to ttl, re-sealing it (under the first key), but never brings back a session
	// deleted meanwhile: then it returns ErrNotFound and leaves s as it was.
	Touch(ctx context.Context, s *Session, ttl time.Duration) error
	// Delete removes the session; deleting an absent one is not an error.
	Delete(ctx context.Context, id string) error

	// AddPayment records a newly created payment unless one with its terminal and tracking id exists;
	// it returns the stored payment and whether it is p.
	AddPayment(ctx context.Context, p Payment) (*Payment, bool, error)
	// PutPayment inserts or replaces p (keyed by terminal and tracking id) and indexes its CheckoutID.
	// ListPayments keeps the first CreatedAt order. A zero CreatedAt is set to the store's clock; a
	// replaced CheckoutID stops finding the payment.
	PutPayment(ctx context.Context, p Payment) error
	// GetPayment returns the payment of this terminal with this tracking id, or ErrNotFound.
	GetPayment(ctx context.Context, terminalID, trackingID string) (*Payment, error)
	// ListPayments returns at most limit payments of the terminal, newest first (never nil). A limit of 0
	// or less, or above Options.MaxPayments, means MaxPayments.
	ListPayments(ctx context.Context, terminalID string, limit int) ([]Payment, error)
	// PaymentByCheckout finds a payment by its checkout id, or ErrNotFound.
	PaymentByCheckout(ctx context.Context, checkoutID string) (*Payment, error)

	// Idempotency keys (idempotency.go): ClaimIdempotencyKey binds a terminal's key to the fingerprint of
	// the request first sent with it (SET NX) before Bead is asked, and returns the binding that stands;
	// SettleIdempotencyKey records the payment the key made; ReleaseIdempotencyKey frees a claim that made
	// none, so that it may be sent again with other details, only while no other attempt has joined it.
	ClaimIdempotencyKey(ctx context.Context, terminalID, key, fingerprint string, ttl time.Duration) (stored IdempotencyClaim, first bool, err error)
	SettleIdempotencyKey(ctx context.Context, terminalID, key, fingerprint, trackingID string, ttl time.Duration) error
	ReleaseIdempotencyKey(ctx context.Context, terminalID, key, fingerprint, attempt string) error

	// The terminal's token, shared by its sessions and the service account (terminal.go).
	ClaimTerminalToken(ctx context.Context, t TerminalToken, ttl time.Duration, holder string, until time.Time) (current, replaced *TerminalToken, err error)
	LoadTerminalToken(ctx context.Context, terminalID string) (*TerminalToken, error)
	SwapTerminalToken(ctx context.Context, prev *TerminalToken, next TerminalToken, ttl time.Duration) (*TerminalToken, bool, error)
	DropTerminalToken(ctx context.Context, prev *TerminalToken) error
	HoldTerminal(ctx context.Context, terminalID, holder string, until time.Time) error
	ReleaseTerminal(ctx context.Context, terminalID, holder string) (*TerminalToken, error)

	// Lock takes the named lock for ttl if it is free and returns its release token, or "" when another
	// holder has it; Unlock releases it only if token still holds it. Locks serialise work across every
	// process sharing the store (one token refresh at a time).
	Lock(ctx context.Context, name string, ttl time.Duration) (string, error)
	Unlock(ctx context.Context, name, token string) error
	// ExtendLock renews a held lock's lease (false once token no longer holds it).
	ExtendLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error)

	// TakeAttempt claims one of limit attempt slots of name for window (login throttling, shared by every
	// process on the store) and returns a ticket; when all are held it returns no ticket and how long
	// until one frees. ReturnAttempt gives a ticket's slot back: an attempt that should not count.
	TakeAttempt(ctx context.Context, name string, limit int, window time.Duration) (ticket string, retryAfter time.Duration, err error)
	ReturnAttempt(ctx context.Context, name, ticket string) error

	// SaveIncident keeps a diagnosed failure for ttl under the session that met it; LoadIncident finds
	// it only with that session's id (ErrNotFound otherwise).
	SaveIncident(ctx context.Context, sessionID, incidentID string, data []byte, ttl time.Duration) error
	LoadIncident(ctx context.Context, sessionID, incidentID string) ([]byte, error)

	// Webhooks (webhooks.go). ClaimWebhookEvent stores an accepted change unless it is stored (SET NX),
	// and says whether this call stored it; UpdateWebhookEvent records what processing did with it;
	// PendingWebhookEvents finds accepted changes not yet processed (after a crash).
	ClaimWebhookEvent(ctx context.Context, ev WebhookEvent) (stored *WebhookEvent, first bool, err error)
	UpdateWebhookEvent(ctx context.Context, ev WebhookEvent) error
	PendingWebhookEvents(ctx context.Context, receivedBefore time.Time, limit int) ([]WebhookEvent, error)
	// RecordWebhookDelivery and WebhookDeliveries keep the recent deliveries per terminal ("" is the
	// server-wide log of refusals), newest first.
	RecordWebhookDelivery(ctx context.Context, d WebhookDelivery) error
	WebhookDeliveries(ctx context.Context, terminalID string, limit int) ([]WebhookDelivery, error)
	// SaveWebhookSecret keeps a terminal's registered signing secret, sealed; WebhookSecrets lists them all.
	SaveWebhookSecret(ctx context.Context, terminalID string, secret []byte, url string) error
	WebhookSecrets(ctx context.Context) ([]WebhookSecret, error)

	// Close releases the backend's connections.
	Close() error
}
