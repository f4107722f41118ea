package bead

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxErrorBody is how much of an error answer is kept: enough for any JSON error or the top of a WAF
// page, little enough to hold in a session's incident record.
const maxErrorBody = 64 << 10

// errorFields is what the body of an error answer says, whatever its shape.
type errorFields struct {
	Shape       string
	Title       string
	Detail      string
	Code        string
	TraceID     string
	RequestID   string
	FieldErrors map[string][]string
}

// classifyErrorBody recognises the shape of an error body and pulls out its fields. The order matters
// and follows bead-api.md part A: empty, binary, HTML, then the JSON shapes from the most specific
// (ProblemDetails) to the least, then plain text. body may have been cut at maxErrorBody (truncated);
// nothing here assumes it is well-formed, and nothing here panics on any input.
func classifyErrorBody(contentType string, body []byte, truncated bool) errorFields {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errorFields{Shape: ShapeEmpty}
	}
	text := body
	if truncated {
		text = dropPartialRune(text)
	}
	if !utf8.Valid(text) || bytes.IndexByte(text, 0) >= 0 {
		return errorFields{Shape: ShapeBinary}
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if strings.Contains(mediaType, "html") || trimmed[0] == '<' {
		return errorFields{Shape: ShapeHTML, Title: htmlTitle(trimmed)}
	}
	if trimmed[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(trimmed, &obj) == nil {
			return classifyObject(obj)
		}
	} else if json.Valid(trimmed) {
		return errorFields{Shape: ShapeJSON}
	}
	line, _, _ := strings.Cut(string(bytes.TrimSpace(text)), "\n")
	return errorFields{Shape: ShapeText, Detail: shorten(strings.TrimSpace(line), maxSummary)}
}

// classifyObject names the JSON error shapes Bead's pages document:
//   - ProblemDetails (RFC 9457 / ASP.NET): title, type or traceId, or a status without an error field
//     (the {error, message, requestId, status} shape has a status too, and is not ProblemDetails);
//   - {code: <number>, error, message, details}: a numeric code with error or message;
//   - {error, message, requestId} and the realm's {error, error_description}: an error string;
//   - anything else is plain JSON, still mined for a message.
func classifyObject(obj map[string]json.RawMessage) errorFields {
	f := errorFields{
		TraceID:     jsonString(obj, "traceId"),
		RequestID:   jsonString(obj, "requestId"),
		FieldErrors: fieldErrors(obj),
	}
	errWord := jsonString(obj, "error")
	message := firstNonEmpty(jsonString(obj, "message"), jsonString(obj, "error_description"))
	_, hasStatus := obj["status"]
	_, hasError := obj["error"]
	switch {
	case jsonString(obj, "title") != "" || jsonString(obj, "type") != "" || f.TraceID != "" || (hasStatus && !hasError):
		f.Shape = ShapeProblem
		f.Title = jsonString(obj, "title")
		f.Detail = firstNonEmpty(jsonString(obj, "detail"), message)
		f.Code = firstNonEmpty(jsonString(obj, "type"), errWord)
	case isJSONNumber(obj["code"]) && (errWord != "" || message != ""):
		f.Shape = ShapeCodeError
		f.Detail = message
		f.Code = firstNonEmpty(errWord, string(bytes.TrimSpace(obj["code"])))
	case errWord != "":
		f.Shape = ShapeErrorMessage
		f.Detail = message
		f.Code = errWord
	default:
		f.Shape = ShapeJSON
		f.Detail = firstNonEmpty(message, jsonString(obj, "detail"))
	}
	f.Title, f.Detail, f.Code = shorten(f.Title, 512), shorten(f.Detail, 1024), shorten(f.Code, 256)
	return f
}

// fieldErrors gathers per-field messages from every documented form: ASP.NET's errors{field:[msg]},
// {details:[{field, issue}]} and {fieldErrors:[{field, message}]} (or a map under either name).
func fieldErrors(obj map[string]json.RawMessage) map[string][]string {
	out := map[string][]string{}
	for _, key := range []string{"errors", "details", "fieldErrors"} {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		var byField map[string]json.RawMessage
		if json.Unmarshal(raw, &byField) == nil {
			for field, msgs := range byField {
				var list []string
				if json.Unmarshal(msgs, &list) != nil {
					var one string
					if json.Unmarshal(msgs, &one) != nil {
						continue
					}
					list = []string{one}
				}
				out[field] = append(out[field], list...)
			}
			continue
		}
		var items []map[string]json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			continue
		}
		for _, item := range items {
			field := firstNonEmpty(jsonString(item, "field"), jsonString(item, "name"), jsonString(item, "property"))
			issue := firstNonEmpty(jsonString(item, "issue"), jsonString(item, "message"), jsonString(item, "error"), jsonString(item, "code"))
			if field == "" && issue == "" {
				continue
			}
			out[field] = append(out[field], issue)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// retryAfter reads Retry-After (seconds or an HTTP date) and, failing that, X-RateLimit-Reset (an epoch
// time per Bead's rate-limit page, or a number of seconds when it is too small to be one).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			return clampWait(time.Duration(secs) * time.Second)
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampWait(t.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			const epochFloor = 1_000_000_000 // September 2001: smaller numbers are durations
			if n >= epochFloor {
				return clampWait(time.Unix(n, 0).Sub(now))
			}
			return clampWait(time.Duration(n) * time.Second)
		}
	}
	return 0
}

// clampWait keeps a wait within [0, 1 day]: a date in the past means "now", and a far-off one is junk.
func clampWait(d time.Duration) time.Duration {
	const maxWait = 24 * time.Hour
	if d < 0 {
		return 0
	}
	return min(d, maxWait)
}

// htmlTitle is the text of the page's <title>, which names the WAF or proxy more often than not.
func htmlTitle(page []byte) string {
	lower := bytes.ToLower(page)
	start := bytes.Index(lower, []byte("<title"))
	if start < 0 {
		return ""
	}
	open := bytes.IndexByte(lower[start:], '>')
	if open < 0 {
		return ""
	}
	from := start + open + 1
	end := bytes.Index(lower[from:], []byte("</title"))
	if end < 0 {
		return ""
	}
	return shorten(strings.Join(strings.Fields(string(page[from:from+end])), " "), maxSummary)
}

// dropPartialRune removes a UTF-8 sequence cut in half at the end of b, so that a body truncated at
// maxErrorBody is not mistaken for binary.
func dropPartialRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

func jsonString(obj map[string]json.RawMessage, key string) string {
	raw, ok := obj[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func isJSONNumber(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || (t[0] != '-' && (t[0] < '0' || t[0] > '9')) {
		return false
	}
	return json.Valid(t)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
