package bead

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Sentinels for the failures this package detects before or after talking to Bead. They are wrapped
// with the operation ("bead: tracking: invalid id: ...") and matched with errors.Is.
var (
	// ErrInvalidID: an id that fails ValidID; nothing was sent.
	ErrInvalidID = errors.New("invalid id")
	// ErrInvalidAmount: an amount that is not positive, has more than two decimals or exceeds 999,999,999.99.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrNoAccessToken: the access token is empty or not a well-formed bearer token (quotes, spaces,
	// "null" pasted in); nothing was sent, because Bead would answer a bare 403.
	ErrNoAccessToken = errors.New("no usable access token")
	// ErrInvalidRequest: some other part of a request failed validation before it was sent.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnexpectedAnswer: Bead answered 2xx with a body this client cannot read (not JSON, too large,
	// a required field missing or malformed).
	ErrUnexpectedAnswer = errors.New("unexpected answer")
	// ErrUnknownStatus: a statusCode word or number that Bead has not documented.
	ErrUnknownStatus = errors.New("unknown status")
	// ErrNotJWT: DecodeClaims was given something that is not a readable JWT.
	ErrNotJWT = errors.New("bead: decode claims: not a JWT")
	// ErrDiscoveryMismatch: the realm's discovery document names another issuer, or no token endpoint.
	ErrDiscoveryMismatch = errors.New("discovery document does not match the configuration")
)

// SentRequest is what the client put on the wire, with secrets taken out: the Authorization header is
// reduced to its scheme and the first 50 characters of the token plus its length ("Bearer eyJhbGciOi…
// (1187 chars)"; a token shorter than 150 characters shows only its first third), an X-Api-Key to its
// length, form passwords and tokens to "[redacted]".
type SentRequest struct {
	Method      string
	URL         string // scheme, host and path; the query without secret values
	Header      http.Header
	BodySummary string // JSON bodies as sent (they hold no secrets), form bodies with secrets redacted; at most 2 KiB
	RequestID   string // the x-request-id sent
	SentAt      time.Time
}

// Body shapes an error answer can have.
const (
	ShapeProblem      = "problem"       // RFC 9457 / ASP.NET ProblemDetails: type, title, status, detail, traceId, errors
	ShapeCodeError    = "code_error"    // {code, error, message, details}
	ShapeErrorMessage = "error_message" // {error, message, requestId} (also {error, error_description} of the realm)
	ShapeEmpty        = "empty"         // no body at all (Bead's bare 403)
	ShapeHTML         = "html"          // an HTML page: a WAF or reverse proxy, not Bead's API
	ShapeText         = "text"          // some other text
	ShapeJSON         = "json"          // JSON of no known shape
	ShapeBinary       = "binary"        // not UTF-8 text
)

// APIError is a non-2xx answer of Bead's payments API.
type APIError struct {
	Op          string // "create payment", "tracking"
	Request     SentRequest
	Status      int
	Header      http.Header // the response headers as received (they hold no secrets of ours)
	Body        []byte      // at most the first 64 KiB
	BodyTrunc   bool        // the body was longer than what Body keeps
	Shape       string      // one of the Shape constants
	Title       string      // ProblemDetails title
	Detail      string      // ProblemDetails detail, or message of the other shapes
	Code        string      // the machine code: {error} or {code} of the other shapes, or ProblemDetails type
	TraceID     string      // ProblemDetails traceId
	RequestID   string      // Bead's x-request-id header or requestId field, when it sent one
	FieldErrors map[string][]string
	RetryAfter  time.Duration // from Retry-After (seconds or a date), 0 when absent
	ReceivedAt  time.Time
}

// TokenError is a refusal of the token endpoint ({error, error_description}); Keycloak answers bad
// credentials and dead refresh tokens with invalid_grant (HTTP 400 or 401).
type TokenError struct {
	Op          string // "password grant", "refresh grant", "logout"
	Request     SentRequest
	Status      int
	Code        string // invalid_grant, invalid_client, unauthorized_client, invalid_scope, ...
	Description string
	Header      http.Header
	Body        []byte // at most the first 64 KiB
	Shape       string // one of the Shape constants: a WAF in front of the realm answers html, not JSON
	ReceivedAt  time.Time
}

// TransportError is a call that got no HTTP answer: refused, reset, DNS, or out of time.
type TransportError struct {
	Op      string
	Request SentRequest
	Timeout bool
	Err     error
}

// maxSummary bounds the part of Bead's own words that goes into an Error() string.
const maxSummary = 160

// Error is short and single-line: "bead: create payment: 403 (empty body)". The full evidence stays in
// the fields.
func (e *APIError) Error() string {
	return RedactJWTs("bead: " + e.Op + ": " + strconv.Itoa(e.Status) + " " + summary(e.Shape, e.Title, e.Detail, e.Code))
}

// Error reads "bead: password grant: 401 invalid_grant: Invalid user credentials".
func (e *TokenError) Error() string {
	s := "bead: " + e.Op + ": " + strconv.Itoa(e.Status) + " "
	switch {
	case e.Code != "" && e.Description != "":
		return RedactJWTs(s + oneLine(e.Code) + ": " + oneLine(e.Description))
	case e.Code != "":
		return RedactJWTs(s + oneLine(e.Code))
	}
	return RedactJWTs(s + summary(e.Shape, "", e.Description, ""))
}

// Redacted is a copy of the error with every JWT in what Bead answered cut to its first 50 characters
// (the client does this to every answer it reads; this is for errors made elsewhere).
func (e *APIError) Redacted() *APIError {
	c := *e
	c.Body, c.Header = redactJWTs(e.Body), redactAnswerHeader(e.Header)
	c.Title, c.Detail, c.Code = RedactJWTs(e.Title), RedactJWTs(e.Detail), RedactJWTs(e.Code)
	return &c
}

// Redacted: as APIError.Redacted.
func (e *TokenError) Redacted() *TokenError {
	c := *e
	c.Body, c.Header, c.Description = redactJWTs(e.Body), redactAnswerHeader(e.Header), RedactJWTs(e.Description)
	return &c
}

// Error reads "bead: tracking: timeout: ..." or "bead: tracking: <the net/http error>". The URL inside
// the net/http error holds no secret: ids are in the path, credentials only in headers and bodies.
func (e *TransportError) Error() string {
	s := "bead: " + e.Op + ": "
	if e.Timeout {
		s += "timeout: "
	}
	if e.Err == nil {
		return s + "no answer"
	}
	return s + oneLine(e.Err.Error())
}

// Unwrap gives the underlying net/http or context error.
func (e *TransportError) Unwrap() error { return e.Err }

// summary picks the most telling words of an error answer.
func summary(shape, title, detail, code string) string {
	switch {
	case shape == ShapeHTML && title != "":
		return "html page " + strconv.Quote(oneLine(title))
	case title != "" && detail != "":
		return oneLine(title + ": " + detail)
	case title != "":
		return oneLine(title)
	case detail != "":
		return oneLine(detail)
	case code != "":
		return oneLine(code)
	case shape != "":
		return "(" + shape + " body)"
	}
	return "(no body)"
}

// oneLine keeps an error string to one short line: control characters from a remote body could
// otherwise forge log lines.
func oneLine(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	return shorten(s, maxSummary)
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// IsInvalidGrant reports whether err is the realm refusing a grant with invalid_grant: wrong
// credentials on a password grant, or an expired, revoked or reused refresh token (log in again).
func IsInvalidGrant(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Code == "invalid_grant"
}

// IsAuthFailure reports whether err is Bead's payments API answering 401 or 403: the answer that is
// worth one refresh of the token and one retry. A 429 is not an auth failure (wait, do not refresh).
func IsAuthFailure(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden)
}
