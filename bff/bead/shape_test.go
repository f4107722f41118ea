package bead

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClassifyErrorBody(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		truncated   bool
		want        errorFields
	}{
		{name: "empty", want: errorFields{Shape: ShapeEmpty}},
		{name: "only whitespace", body: " \r\n ", want: errorFields{Shape: ShapeEmpty}},
		{
			name: "HTML by content type, title kept", contentType: "text/html; charset=UTF-8",
			body: "<!DOCTYPE html><html><head><TITLE>Attention Required! |\n Cloudflare</TITLE></head></html>",
			want: errorFields{Shape: ShapeHTML, Title: "Attention Required! | Cloudflare"},
		},
		{
			name: "HTML sent as text/plain", contentType: "text/plain", body: "  <html><body>403 Forbidden</body></html>",
			want: errorFields{Shape: ShapeHTML},
		},
		{
			name: "ASP.NET validation problem", contentType: "application/problem+json",
			body: `{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"One or more validation errors occurred.",` +
				`"status":400,"errors":{"RequestedAmount":["The field RequestedAmount must be positive."],"Reference":"too long"},` +
				`"traceId":"00-abc-def-00"}`,
			want: errorFields{
				Shape: ShapeProblem, Title: "One or more validation errors occurred.",
				Code: "https://tools.ietf.org/html/rfc9110#section-15.5.1", TraceID: "00-abc-def-00",
				FieldErrors: map[string][]string{
					"RequestedAmount": {"The field RequestedAmount must be positive."},
					"Reference":       {"too long"},
				},
			},
		},
		{
			name: "problem with only status and detail", body: `{"status":403,"detail":"terminal mismatch"}`,
			want: errorFields{Shape: ShapeProblem, Detail: "terminal mismatch"},
		},
		{
			name: "code, error, message, details",
			body: `{"code":400,"error":"validation_error","message":"Invalid body","details":[{"field":"requestedAmount","issue":"out_of_range"}]}`,
			want: errorFields{
				Shape: ShapeCodeError, Code: "validation_error", Detail: "Invalid body",
				FieldErrors: map[string][]string{"requestedAmount": {"out_of_range"}},
			},
		},
		{
			name: "rate limit body", body: `{"code":429,"error":"rate_limit_exceeded","message":"Slow down"}`,
			want: errorFields{Shape: ShapeCodeError, Code: "rate_limit_exceeded", Detail: "Slow down"},
		},
		{
			name: "numeric code with a message only", body: `{"code":403,"message":"Forbidden"}`,
			want: errorFields{Shape: ShapeCodeError, Code: "403", Detail: "Forbidden"},
		},
		{
			name: "error, message, requestId, status is not a problem",
			body: `{"error":"forbidden","message":"Token does not match terminal","requestId":"req-9","status":403,` +
				`"fieldErrors":[{"field":"terminalId","message":"mismatch"}]}`,
			want: errorFields{
				Shape: ShapeErrorMessage, Code: "forbidden", Detail: "Token does not match terminal", RequestID: "req-9",
				FieldErrors: map[string][]string{"terminalId": {"mismatch"}},
			},
		},
		{
			name: "realm error", body: `{"error":"invalid_grant","error_description":"Invalid user credentials"}`,
			want: errorFields{Shape: ShapeErrorMessage, Code: "invalid_grant", Detail: "Invalid user credentials"},
		},
		{
			name: "gateway JSON of no known shape", body: `{"message":"Forbidden"}`,
			want: errorFields{Shape: ShapeJSON, Detail: "Forbidden"},
		},
		{name: "JSON array", body: `["nope"]`, want: errorFields{Shape: ShapeJSON}},
		{name: "JSON string", body: `"nope"`, want: errorFields{Shape: ShapeJSON}},
		{
			name: "text, first line kept", contentType: "text/plain", body: "upstream connect error\nreset reason: overflow",
			want: errorFields{Shape: ShapeText, Detail: "upstream connect error"},
		},
		{
			name: "broken JSON is text", body: `{"title": "cut`,
			want: errorFields{Shape: ShapeText, Detail: `{"title": "cut`},
		},
		{name: "not UTF-8", body: "\xff\xfe\x00\x01gzip?", want: errorFields{Shape: ShapeBinary}},
		{name: "NUL byte", body: "abc\x00def", want: errorFields{Shape: ShapeBinary}},
		{
			name: "truncated in the middle of a rune is still text", body: "Zugriff verweigert: " + "\xc3", truncated: true,
			want: errorFields{Shape: ShapeText, Detail: "Zugriff verweigert:"},
		},
		{
			name: "the same cut without truncation is binary", body: "Zugriff verweigert: " + "\xc3",
			want: errorFields{Shape: ShapeBinary},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyErrorBody(tt.contentType, []byte(tt.body), tt.truncated)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("classifyErrorBody (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{"HTTP date", http.Header{"Retry-After": {testNow.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"date in the past", http.Header{"Retry-After": {testNow.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"rate-limit reset as epoch", http.Header{"X-Ratelimit-Reset": {"1772366460"}}, 60 * time.Second},
		{"rate-limit reset as seconds", http.Header{"X-Ratelimit-Reset": {"12"}}, 12 * time.Second},
		{"Retry-After wins", http.Header{"Retry-After": {"5"}, "X-Ratelimit-Reset": {"12"}}, 5 * time.Second},
		{"absurd wait is capped", http.Header{"Retry-After": {"99999999"}}, 24 * time.Hour},
		{"junk", http.Header{"Retry-After": {"soon"}}, 0},
		{"absent", http.Header{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, testNow); got != tt.want {
				t.Errorf("retryAfter = %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzClassifyErrorBody guards the error-shape parser against panics and against shapes outside the
// documented set, whatever a server or a middle box sends.
func FuzzClassifyErrorBody(f *testing.F) {
	for _, seed := range []string{
		"", "<html>", `{"title":1,"errors":{"a":[1]}}`, `{"code":"x","error":5}`, `{"details":[{"field":1}]}`,
		`{"fieldErrors":{"a":"b"}}`, "\xff", "\xe2\x82", `{"errors":null,"traceId":"t"}`, "<title>x",
	} {
		f.Add("application/json", []byte(seed), false)
	}
	known := map[string]bool{ShapeEmpty: true, ShapeBinary: true, ShapeHTML: true, ShapeProblem: true,
		ShapeCodeError: true, ShapeErrorMessage: true, ShapeJSON: true, ShapeText: true}
	f.Fuzz(func(t *testing.T, contentType string, body []byte, truncated bool) {
		got := classifyErrorBody(contentType, body, truncated)
		if !known[got.Shape] {
			t.Fatalf("shape %q is not one of the documented shapes", got.Shape)
		}
		if len(bytes.TrimSpace(body)) > 0 && got.Shape == ShapeEmpty {
			t.Fatalf("a non-blank body classified as empty")
		}
		if strings.ContainsAny(got.Title, "\n\r") && got.Shape == ShapeHTML {
			t.Fatalf("HTML title %q spans lines", got.Title)
		}
	})
}
