package bead

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bead's webhook signature (bead-api.md part A and §3):
//
//	x-webhook-signature: t=<unix ms>,s=<base64 HMAC-SHA256(key, t + "." + rawBody)>
//
// where key is the base64-decoded signingSecret and rawBody the exact bytes received: never a
// re-encoded, trimmed or decompressed copy, since any change of a byte changes the MAC. A timestamp more
// than WebhookTolerance away from now is refused, which bounds how long a captured delivery can be
// replayed. Older revisions of Bead's docs give t in seconds, which is tolerated (t itself is what is
// signed, so its unit does not change the MAC).
//
// An earlier scheme, a hex HMAC over the raw body alone with no timestamp in the message, is accepted only
// when WebhookVerifier.LegacyHex is set: without the timestamp inside the MAC a captured delivery can be
// replayed forever, so it must be an operator's explicit choice.

// WebhookSignatureHeader is the header Bead signs its callbacks in; LegacyWebhookSignatureHeader is the
// name an older revision of Bead's docs shows (read only with LegacyHex).
const (
	WebhookSignatureHeader       = "X-Webhook-Signature"
	LegacyWebhookSignatureHeader = "X-Bead-Signature"
)

// WebhookTolerance is how far a webhook's timestamp may be from this server's clock, either way.
const WebhookTolerance = 5 * time.Minute

// secondsBelow tells the two units of t apart: 1e11 ms is March 1973, 1e11 s is the year 5138, so a t
// below it can only be seconds.
const secondsBelow = 100_000_000_000

// maxSignatureHeader bounds what the parser looks at: a real header is about 70 bytes.
const maxSignatureHeader = 1024

// maxWebhookSignatures bounds the s= values of one header (a sender rotating its secret may send two).
const maxWebhookSignatures = 8

// WebhookReason names the check a webhook failed. The values are stable: they appear in the problem
// body, the refusal log and the metrics.
type WebhookReason string

const (
	WebhookHeaderMissing     WebhookReason = "header_missing"     // no signature header at all
	WebhookHeaderMalformed   WebhookReason = "header_malformed"   // not t=...,s=... (or too long)
	WebhookTimestampInvalid  WebhookReason = "timestamp_invalid"  // t is not a positive whole number
	WebhookSignatureEncoding WebhookReason = "signature_encoding" // s is not base64 (nor hex, with LegacyHex)
	WebhookSignatureLength   WebhookReason = "signature_length"   // s decodes to something other than 32 bytes
	WebhookNoSecrets         WebhookReason = "no_secrets"         // nothing to verify with
	WebhookSignatureMismatch WebhookReason = "signature_mismatch" // no secret gives s: another secret, or an altered body
	WebhookTimestampStale    WebhookReason = "timestamp_stale"    // the MAC is right but t is over 5 min old
	WebhookTimestampFuture   WebhookReason = "timestamp_future"   // the MAC is right but t is over 5 min ahead
)

// ErrWebhookSignature is what every *WebhookError matches with errors.Is.
var ErrWebhookSignature = errors.New("bead: webhook signature invalid")

// WebhookError is a failed webhook verification: which check failed, and in words what was wrong. Its
// text never holds a secret, a computed MAC or the body.
type WebhookError struct {
	Reason WebhookReason
	Detail string // one or two sentences for the operator, e.g. "t is 10m2s older than this server's clock"
}

func (e *WebhookError) Error() string {
	return "bead: webhook signature invalid: " + string(e.Reason) + ": " + e.Detail
}

// Is makes errors.Is(err, ErrWebhookSignature) hold.
func (e *WebhookError) Is(target error) bool { return target == ErrWebhookSignature }

func webhookErr(reason WebhookReason, format string, args ...any) *WebhookError {
	return &WebhookError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// WebhookSignature is a parsed signature header.
type WebhookSignature struct {
	T          string    // t exactly as sent: it is part of the signed message
	Timestamp  time.Time // t read as milliseconds, or as seconds when below 1e11; zero when absent
	Seconds    bool      // t was in seconds
	Signatures []string  // every s= value, as sent
	Legacy     bool      // the header had the legacy form sha256=<hex> or a bare hex MAC
}

// ParseWebhookSignature reads "t=<digits>,s=<signature>". Parts are separated by commas, may have spaces
// around them and come in any order; s may repeat (a sender in the middle of a secret rotation); other
// keys are ignored, so that a later version of the header still parses. A header without t, or without s,
// or with two t, is malformed.
func ParseWebhookSignature(header string) (WebhookSignature, error) {
	var sig WebhookSignature
	header = strings.TrimSpace(header)
	switch {
	case header == "":
		return sig, webhookErr(WebhookHeaderMissing, "the request has no %s header", WebhookSignatureHeader)
	case len(header) > maxSignatureHeader:
		return sig, webhookErr(WebhookHeaderMalformed, "the %s header is %d bytes long; a real one is under 100", WebhookSignatureHeader, len(header))
	}
	seenT := false
	for part := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sig, webhookErr(WebhookHeaderMalformed, "the header is not of the form t=<timestamp>,s=<signature> (a part has no '=')")
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "t":
			if seenT {
				return sig, webhookErr(WebhookHeaderMalformed, "the header has t= twice")
			}
			seenT = true
			sig.T = value
		case "s":
			if len(sig.Signatures) == maxWebhookSignatures {
				return sig, webhookErr(WebhookHeaderMalformed, "the header has more than %d signatures", maxWebhookSignatures)
			}
			sig.Signatures = append(sig.Signatures, value)
		}
	}
	switch {
	case !seenT && len(sig.Signatures) == 0:
		return sig, webhookErr(WebhookHeaderMalformed, "the header has neither t= nor s=; want t=<timestamp>,s=<signature>")
	case !seenT:
		return sig, webhookErr(WebhookHeaderMalformed, "the header has no timestamp t=")
	case len(sig.Signatures) == 0:
		return sig, webhookErr(WebhookHeaderMalformed, "the header has no signature s=")
	}
	ts, seconds, err := parseWebhookTime(sig.T)
	if err != nil {
		return sig, err
	}
	sig.Timestamp, sig.Seconds = ts, seconds
	return sig, nil
}

// parseWebhookTime reads t: 1 to 16 ASCII digits (no sign, no fraction), in milliseconds or, below 1e11,
// in seconds.
func parseWebhookTime(t string) (time.Time, bool, error) {
	if t == "" || len(t) > 16 || !allDigits(t) {
		return time.Time{}, false, webhookErr(WebhookTimestampInvalid, "t=%q is not a Unix time in milliseconds", shorten(t, 20))
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false, webhookErr(WebhookTimestampInvalid, "t=%q is not a positive Unix time", shorten(t, 20))
	}
	if n < secondsBelow {
		return time.Unix(n, 0), true, nil
	}
	return time.UnixMilli(n), false, nil
}

// parseLegacySignature reads the forms of the legacy hex scheme: "sha256=<hex>", a bare "<hex>", or
// "t=<seconds>,s=<hex>" (the timestamp then is not part of the MAC).
func parseLegacySignature(header string) (WebhookSignature, error) {
	header = strings.TrimSpace(header)
	if v, ok := strings.CutPrefix(header, "sha256="); ok {
		return WebhookSignature{Signatures: []string{strings.TrimSpace(v)}, Legacy: true}, nil
	}
	if len(header) == 2*sha256.Size && isHex(header) {
		return WebhookSignature{Signatures: []string{header}, Legacy: true}, nil
	}
	return ParseWebhookSignature(header)
}

// WebhookVerifier checks signature headers. The zero value checks Bead's canonical scheme with a 5-minute
// tolerance.
type WebhookVerifier struct {
	Tolerance time.Duration // 0: WebhookTolerance
	// LegacyHex also accepts a hex HMAC-SHA256 of the raw body alone (no timestamp in the MAC), as an
	// older revision of Bead's docs describes. Replays of such deliveries cannot be told apart.
	LegacyHex bool
}

// VerifiedWebhook says how a webhook passed.
type VerifiedWebhook struct {
	// Matched lists the index in secrets of every secret whose MAC matched (several when secrets repeat,
	// as when one secret is configured and also registered), so that the caller can require the one of
	// the terminal the body names.
	Matched   []int
	Timestamp time.Time // zero for a legacy signature without t
	Legacy    bool      // passed by the legacy hex scheme
}

// VerifyWebhook checks a delivery of Bead's canonical scheme against every secret (raw key bytes, the
// base64-decoded signingSecret) with a 5-minute window. It returns nil or a *WebhookError saying which
// check failed.
func VerifyWebhook(header string, body []byte, secrets [][]byte, now time.Time) error {
	_, err := WebhookVerifier{}.Verify(header, body, secrets, now)
	return err
}

// Verify checks header against body and secrets. The MACs are compared in constant time (hmac.Equal).
// The signature is checked before the timestamp, so that a stale or future t is reported only for a
// delivery that really came from a holder of the secret (a replay, or a clock that is off), and a wrong
// secret or an altered body is reported as such whatever its t.
func (v WebhookVerifier) Verify(header string, body []byte, secrets [][]byte, now time.Time) (*VerifiedWebhook, error) {
	parse := ParseWebhookSignature
	if v.LegacyHex {
		parse = parseLegacySignature
	}
	sig, err := parse(header)
	if err != nil {
		return nil, err
	}
	if len(secrets) == 0 {
		return nil, webhookErr(WebhookNoSecrets, "no webhook signing secret is configured here, so no delivery can be verified")
	}
	macs, legacyMACs, err := v.decodeSignatures(sig)
	if err != nil {
		return nil, err
	}
	out := &VerifiedWebhook{Timestamp: sig.Timestamp}
	if len(macs) > 0 {
		message := make([]byte, 0, len(sig.T)+1+len(body))
		message = append(append(append(message, sig.T...), '.'), body...)
		out.Matched = matching(secrets, message, macs)
	}
	if len(out.Matched) == 0 && len(legacyMACs) > 0 {
		out.Matched, out.Legacy = matching(secrets, body, legacyMACs), true
	}
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = WebhookTolerance
	}
	if len(out.Matched) == 0 {
		detail := "no configured secret produces this signature over t + \".\" + the body as received: " +
			"the delivery was signed with another secret (a rotated or another terminal's signingSecret, or " +
			"BEAD_WEBHOOK_SECRET is not the base64 signingSecret Bead returned), or the body was changed on the way " +
			"(a proxy that re-encodes JSON or decompresses it)"
		if off := skew(sig.Timestamp, now); !sig.Timestamp.IsZero() && (off > tolerance || off < -tolerance) {
			detail += "; t is also " + describeSkew(off) + ", beyond the 5-minute window"
		}
		return nil, webhookErr(WebhookSignatureMismatch, "%s", detail)
	}
	if sig.Timestamp.IsZero() {
		return out, nil // the legacy forms without t: nothing to check
	}
	switch off := skew(sig.Timestamp, now); {
	case off > tolerance:
		return nil, webhookErr(WebhookTimestampStale, "the signature is valid but t is %s, beyond the %s window: a replayed delivery, or this server's clock is off", describeSkew(off), tolerance)
	case off < -tolerance:
		return nil, webhookErr(WebhookTimestampFuture, "the signature is valid but t is %s, beyond the %s window: this server's clock or the sender's is off", describeSkew(off), tolerance)
	}
	return out, nil
}

// decodeSignatures decodes every s: base64 (standard, padded or not, or URL-safe) of 32 bytes for the
// canonical scheme; with LegacyHex also 64 hex digits. One s that is neither fails the whole header.
func (v WebhookVerifier) decodeSignatures(sig WebhookSignature) (macs, legacyMACs [][]byte, err error) {
	for _, s := range sig.Signatures {
		if v.LegacyHex && len(s) == 2*sha256.Size && isHex(s) {
			b, _ := hex.DecodeString(s)
			legacyMACs = append(legacyMACs, b)
			continue
		}
		if sig.Legacy {
			return nil, nil, webhookErr(WebhookSignatureEncoding, "the legacy signature is not 64 hex digits")
		}
		b, ok := decodeBase64(s)
		switch {
		case !ok:
			return nil, nil, webhookErr(WebhookSignatureEncoding, "s is not base64 (%d characters)", len(s))
		case len(b) != sha256.Size:
			return nil, nil, webhookErr(WebhookSignatureLength, "s decodes to %d bytes; an HMAC-SHA256 is %d", len(b), sha256.Size)
		}
		macs = append(macs, b)
	}
	return macs, legacyMACs, nil
}

// matching returns the index of every secret whose HMAC-SHA256 of message equals one of macs.
func matching(secrets [][]byte, message []byte, macs [][]byte) []int {
	var out []int
	for i, key := range secrets {
		m := hmac.New(sha256.New, key)
		m.Write(message)
		sum := m.Sum(nil)
		for _, mac := range macs {
			if hmac.Equal(sum, mac) {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// SignWebhook returns the signature header value for body at t with the raw key: what Bead sends. It is
// for tests and for operators reproducing a delivery (see README, "Webhooks").
func SignWebhook(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.UnixMilli(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",s=" + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// DecodeSigningSecret reads a signingSecret as Bead gives it (base64, standard or URL-safe, padded or
// not) into the raw key. The error never quotes the secret.
func DecodeSigningSecret(secret string) ([]byte, error) {
	b, ok := decodeBase64(strings.TrimSpace(secret))
	if !ok || len(b) == 0 {
		return nil, fmt.Errorf("bead: signing secret: not base64 (%d characters)", len(secret))
	}
	return b, nil
}

func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// skew is how far t lies behind now (negative: ahead).
func skew(t, now time.Time) time.Duration { return now.Sub(t) }

func describeSkew(d time.Duration) string {
	if d >= 0 {
		return d.Round(time.Second).String() + " older than this server's clock"
	}
	return (-d).Round(time.Second).String() + " ahead of this server's clock"
}

// Known reports whether s is a status Bead documents. A webhook announcing any other is not acted on:
// its meaning (final? paid?) cannot be known.
func (s Status) Known() bool { return knownStatus[s] }
