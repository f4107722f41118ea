package bead

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxTokenLen bounds the work DecodeClaims does. Keycloak access tokens are one to a few KiB; a token of
// more than 64 KiB would not fit in the headers Bead accepts anyway.
const maxTokenLen = 64 << 10

// DecodeClaims reads the header and claims of a JWT access token without verifying its signature (see
// Claims for why that is enough here). It is tolerant where Keycloak varies: aud may be a string or an
// array, dates may be whole or fractional numbers or numeric strings, client_id falls back to azp, and the
// terminal comes from the terminalId claim or else from preferred_username (or email) before the "@".
// A claim of the wrong type is an error naming the claim; errors never contain the token.
func DecodeClaims(accessToken string) (Claims, error) {
	if len(accessToken) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: %d bytes is too long", ErrNotJWT, len(accessToken))
	}
	parts := strings.Split(accessToken, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: %d dot-separated parts, want 3", ErrNotJWT, len(parts))
	}
	header, err := decodeSegment("header", parts[0])
	if err != nil {
		return Claims{}, err
	}
	payload, err := decodeSegment("payload", parts[1])
	if err != nil {
		return Claims{}, err
	}

	var c Claims
	r := claimReader{}
	c.Algorithm = r.str(header, "alg")
	c.KeyID = r.str(header, "kid")
	c.Issuer = r.str(payload, "iss")
	c.Subject = r.str(payload, "sub")
	c.Audience = r.audience(payload, "aud")
	c.AuthorizedParty = r.str(payload, "azp")
	c.ClientID = r.str(payload, "client_id")
	c.Scope = r.str(payload, "scope")
	c.PreferredUsername = r.str(payload, "preferred_username")
	c.Email = r.str(payload, "email")
	c.TerminalID = r.str(payload, "terminalId")
	c.MerchantID = r.str(payload, "merchantId")
	c.SessionID = r.str(payload, "sid")
	c.TokenID = r.str(payload, "jti")
	c.Type = r.str(payload, "typ")
	c.IssuedAt = r.date(payload, "iat")
	c.ExpiresAt = r.date(payload, "exp")
	c.NotBefore = r.date(payload, "nbf")
	if r.err != nil {
		return Claims{}, r.err
	}

	// A password-grant token names its client in azp; client_id appears only with a mapper or on
	// service-account tokens (bead-api.md §1).
	if c.ClientID == "" {
		c.ClientID = c.AuthorizedParty
	}
	if c.TerminalID == "" {
		c.TerminalID = localPart(c.PreferredUsername)
	}
	if c.TerminalID == "" {
		c.TerminalID = localPart(c.Email)
	}
	return c, nil
}

// HasScope reports whether the token's space-separated scope contains want.
func (c Claims) HasScope(want string) bool {
	for _, s := range strings.Fields(c.Scope) {
		if s == want {
			return true
		}
	}
	return false
}

// localPart is the name before the "@" ({terminalId}@beadpay.io), or the whole name when it has none.
// Keycloak lower-cases usernames, so the terminal id read this way is lower case.
func localPart(name string) string {
	local, _, _ := strings.Cut(name, "@")
	return local
}

// decodeSegment base64url-decodes one JWT segment (padding tolerated) into a JSON object.
func decodeSegment(name, seg string) (map[string]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64url", ErrNotJWT, name)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object", ErrNotJWT, name)
	}
	return m, nil
}

// claimReader reads typed claims and keeps the first problem, so that DecodeClaims reads as a list.
type claimReader struct{ err error }

func (r *claimReader) fail(name, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: claim %q is not %s", ErrNotJWT, name, want)
	}
}

func (r *claimReader) str(m map[string]json.RawMessage, name string) string {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		r.fail(name, "a string")
	}
	return s
}

func (r *claimReader) audience(m map[string]json.RawMessage, name string) []string {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		r.fail(name, "a string or an array of strings")
		return nil
	}
	return many
}

// date reads a NumericDate: seconds since the epoch, whole or fractional, or the same in a string.
func (r *claimReader) date(m map[string]json.RawMessage, name string) time.Time {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return time.Time{}
	}
	text := string(bytes.TrimSpace(raw))
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(raw, &text); err != nil {
			r.fail(name, "a date")
			return time.Time{}
		}
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if n < 0 || n > maxUnixSeconds {
			r.fail(name, "a sane date")
			return time.Time{}
		}
		return time.Unix(n, 0).UTC()
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxUnixSeconds {
		r.fail(name, "a date in seconds")
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// maxUnixSeconds is the year 9999: later dates are junk and would overflow time arithmetic elsewhere.
const maxUnixSeconds = 253402300799

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
