package bead

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// maxBodySummary bounds SentRequest.BodySummary.
const maxBodySummary = 2 << 10

// tokenPrefixLen is how much of a bearer token the evidence keeps: Bead's support asks for "the first 50
// characters of the JWT", which is the JWT header (algorithm, type, key id) and the start of the claims,
// enough to find the token in their logs and useless for calling the API.
const tokenPrefixLen = 50

// secretFormFields are form fields whose values never leave this process in evidence.
var secretFormFields = []string{"password", "refresh_token", "client_secret", "access_token", "id_token_hint", "code"}

// describeRequest records req as it goes on the wire, with every secret taken out (see SentRequest).
// It reads the body through GetBody, so the request itself is left untouched.
func describeRequest(req *http.Request, requestID string, at time.Time) SentRequest {
	return SentRequest{
		Method:      req.Method,
		URL:         redactURL(req.URL),
		Header:      redactHeader(req.Header),
		BodySummary: summarizeBody(req),
		RequestID:   requestID,
		SentAt:      at,
	}
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.Fragment = ""
	if c.RawQuery != "" {
		q := c.Query()
		for _, k := range secretFormFields {
			if q.Has(k) {
				q.Set(k, "redacted")
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

func redactHeader(h http.Header) http.Header {
	out := h.Clone()
	if v := out.Get("Authorization"); v != "" {
		out.Set("Authorization", redactAuthorization(v))
	}
	if v := out.Get("X-Api-Key"); v != "" {
		out.Set("X-Api-Key", fmt.Sprintf("[redacted, %d chars]", len(v)))
	}
	if out.Get("Cookie") != "" {
		out.Set("Cookie", "[redacted]")
	}
	return out
}

// redactAuthorization keeps the scheme and, for a bearer token, a prefix and the length, which is what
// diagnosis needs to see that a token was sent, well-formed, and which one it was.
func redactAuthorization(v string) string {
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return fmt.Sprintf("[redacted, %d chars]", len(v))
	}
	return scheme + " " + tokenPrefix(cred) + fmt.Sprintf("… (%d chars)", len(cred))
}

// tokenPrefix is the first tokenPrefixLen characters of a JWT, but never more than a third of a token:
// a short opaque token would otherwise be shown almost whole.
func tokenPrefix(token string) string {
	n := min(tokenPrefixLen, len(token)/3)
	return token[:n]
}

func summarizeBody(req *http.Request) string {
	if req.GetBody == nil || req.ContentLength == 0 {
		return ""
	}
	rc, err := req.GetBody()
	if err != nil {
		return "(body not recorded)"
	}
	defer rc.Close()
	// A form body is re-encoded, so read all of it (forms here are a few hundred bytes); JSON and anything
	// else only up to what is kept.
	limit := int64(maxBodySummary + 1)
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mediaType == "application/x-www-form-urlencoded" {
		limit = 64 << 10
	}
	body, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return "(body not recorded)"
	}
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		return cutSummary(redactForm(body))
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		return cutSummary(string(body))
	}
	return fmt.Sprintf("(%d bytes of %s)", req.ContentLength, mediaType)
}

// redactForm rewrites a form body with secret values replaced by "[redacted]", keys sorted.
func redactForm(body []byte) string {
	form, err := url.ParseQuery(string(bytes.TrimSpace(body)))
	if err != nil {
		return "(form body not recorded: unreadable)"
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range form[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			if slices.Contains(secretFormFields, k) {
				b.WriteString("[redacted]")
			} else {
				b.WriteString(url.QueryEscape(v))
			}
		}
	}
	return b.String()
}

// cutSummary keeps at most maxBodySummary bytes, cut on a rune boundary.
func cutSummary(s string) string {
	if len(s) <= maxBodySummary {
		return s
	}
	cut := maxBodySummary
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// jwtShaped matches a JWT (or the header and payload of one) wherever it stands in text.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*)?`)

// redactJWTs cuts every JWT in an answer to its first 50 characters. Bead's bearer check may echo the
// token it refused (ASP.NET's IDX messages with PII shown do), and what Bead answers ends up in errors,
// logs, incidents and support bundles, where the first 50 characters are the most a token may show.
func redactJWTs(b []byte) []byte {
	if !bytes.Contains(b, []byte("eyJ")) {
		return b
	}
	return jwtShaped.ReplaceAllFunc(b, func(m []byte) []byte {
		if len(m) <= 50 {
			return m
		}
		return []byte(fmt.Sprintf("%s… (%d chars)", m[:50], len(m)))
	})
}

// RedactJWTs is redactJWTs for text.
func RedactJWTs(s string) string {
	if !strings.Contains(s, "eyJ") {
		return s
	}
	return string(redactJWTs([]byte(s)))
}

// redactAnswerHeader applies redactJWTs to every header value of an answer.
func redactAnswerHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := h.Clone()
	for k, vs := range out {
		for i, v := range vs {
			out[k][i] = RedactJWTs(v)
		}
	}
	return out
}
