package session

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options tune a store. The zero value of every field but Keyring means "the default".
type Options struct {
	// Keyring seals sessions. NewRedis requires one (sessions outlive the process and are shared between
	// replicas); NewMemory generates a process-local one when it is nil.
	Keyring *Keyring
	// Prefix starts every key this store writes, so one Redis can serve several deployments or tests.
	// Default "beadbff:".
	Prefix string
	// PaymentTTL is how long payment records and checkout ids are kept after their last PutPayment, and
	// how far back the per-terminal list reaches (by CreatedAt). Default 30 days.
	PaymentTTL time.Duration
	// MaxPayments bounds each terminal's list; the oldest drop off it (their records stay readable by
	// GetPayment until PaymentTTL). Default 500.
	MaxPayments int
	// CallTimeout is the budget of one store call when ctx has no earlier deadline. Default 500ms: a
	// session lookup sits in front of every request, and a slow Redis must fail it rather than stall it.
	CallTimeout time.Duration
	// Now is the clock (memory TTLs, list trimming, a zero Payment.CreatedAt). Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultPrefix      = "beadbff:"
	DefaultPaymentTTL  = 30 * 24 * time.Hour
	DefaultMaxPayments = 500
	DefaultCallTimeout = 500 * time.Millisecond
)

// withDefaults fills the zero fields and rejects negative ones (a negative TTL or timeout is a wiring
// mistake, not a wish to disable something).
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.PaymentTTL < 0 {
		errs = append(errs, fmt.Errorf("PaymentTTL %v is negative", o.PaymentTTL))
	}
	if o.MaxPayments < 0 {
		errs = append(errs, fmt.Errorf("MaxPayments %d is negative", o.MaxPayments))
	}
	if o.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("CallTimeout %v is negative", o.CallTimeout))
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		// A brace would start a Redis Cluster hash tag of its own, and a terminal's keys (which share
		// the {terminal} tag) would land in different slots: CROSSSLOT in every script over two of them.
		errs = append(errs, fmt.Errorf("key prefix (Prefix) %q contains { or }", o.Prefix))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("session: options: %w", errors.Join(errs...))
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.PaymentTTL == 0 {
		o.PaymentTTL = DefaultPaymentTTL
	}
	if o.MaxPayments == 0 {
		o.MaxPayments = DefaultMaxPayments
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}
