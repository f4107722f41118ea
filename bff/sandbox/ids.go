package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Identifiers come from crypto/rand: they are bearer-ish (a page id is the whole capability to
// see a payment page), and guessable ids would let one test's traffic collide with another's.

// randomHex returns n random bytes as 2n lower-case hex digits: 12 bytes give the 24-hex
// ObjectId-like ids Bead uses for payments and pages, 16 bytes the 32-hex tracking ids.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID, the form Keycloak uses for jti, sid and sub.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newTraceID returns a W3C traceparent, the value ASP.NET Core puts in ProblemDetails.traceId.
func newTraceID() string {
	return "00-" + randomHex(16) + "-" + randomHex(8) + "-00"
}

// newPaymentCode returns a short mixed-case code like Bead's "bAKbqtcuP5".
func newPaymentCode() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	code := make([]byte, 0, 10)
	buf := make([]byte, 1)
	for len(code) < cap(code) {
		rand.Read(buf)
		// Reject the top of the byte range so every letter is equally likely.
		if int(buf[0]) >= 256/len(alphabet)*len(alphabet) {
			continue
		}
		code = append(code, alphabet[int(buf[0])%len(alphabet)])
	}
	return string(code)
}
