package diagnose_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

func TestBodySummary(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		max  int
		want string
	}{
		{"empty", nil, 0, "(empty)"},
		{"white space only", []byte(" \r\n\t "), 0, "(5 bytes of white space)"},
		{"JSON kept as it is", []byte(`{"title":"Forbidden","status":403}`), 0, `{"title":"Forbidden","status":403}`},
		{"line breaks escaped, not kept", []byte("<html>\r\n<title>403</title>\n</html>"), 0, `<html>\r\n<title>403</title>\n</html>`},
		{"cut at max characters, size given", []byte(strings.Repeat("ab", 10)), 5, "ababa… (20 bytes in all)"},
		{"cut counts characters, not bytes", []byte("ééééé"), 3, "ééé… (10 bytes in all)"},
		{"latin-1 bytes shown as \\x", []byte("caf\xe9 cr\xe8me"), 0, `caf\xe9 cr\xe8me`},
		{"control characters escaped", []byte("ok\x1b[31mred\x07"), 0, `ok\x1b[31mred\a`},
		{"bidi override escaped", []byte("abc\u202edef"), 0, `abc\u202edef`},
		{"binary described, not quoted", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\x00\x01\x02\x03\x04\x05\x06"), 0,
			"(18 bytes of binary data, starting 1f 8b 08 00 00 00 00 00 00 03 ff 00 01 02 03 04)"},
		{"an escape is never cut in half", []byte("\x01\x01\x01\x01" + strings.Repeat("a", 200)), 6, `\x01\x01… (204 bytes in all)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diagnose.BodySummary(tt.body, tt.max); got != tt.want {
				t.Errorf("BodySummary = %q, want %q", got, tt.want)
			}
		})
	}
}

// Bodies Bead (or whatever answers in its place) may send: the diagnosis completes and quotes a bounded,
// valid, single-line summary.
func TestDiagnoseStrangeBodies(t *testing.T) {
	huge := append([]byte("<html><head><title>Blocked</title></head><body>"), bytes.Repeat([]byte("<p>denied</p>\n"), 5<<20/14)...)
	tests := []struct {
		name  string
		shape string
		body  []byte
		want  string // the response-body evidence line
	}{
		{"a 5 MiB HTML page", bead.ShapeHTML, huge, `<html><head><title>Blocked</title></head><body><p>denied</p>\n<p>denied</p>\n`},
		{"gzip bytes", bead.ShapeBinary, []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9\x07\x00\x86\xa6\x106\x05\x00\x00\x00"), "(25 bytes of binary data, starting 1f 8b 08 00 00 00 00 00 00 03 cb 48 cd c9 c9 07)"},
		{"Windows-1252 text", bead.ShapeText, []byte("Acc\xe8s refus\xe9 \x96 contactez l\x92administrateur"), `Acc\xe8s refus\xe9 \x96 contactez l\x92administrateur`},
		{"a JSON error cut in the middle of a character", bead.ShapeText, []byte(`{"error":"forbidden","message":"Zugriff verweigert \xc3`), `{"error":"forbidden","message":"Zugriff verweigert \xc3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), 403,
				http.Header{"Server": {"nginx"}, "Content-Type": {"text/html"}}, tt.shape, string(tt.body))
			d := diagnose.Diagnose(in)
			var line string
			for _, e := range d.Evidence {
				if e.Source == "response body" && !strings.HasPrefix(e.Fact, "the body is") {
					line = e.Fact
				}
			}
			if !strings.HasPrefix(line, tt.want) {
				t.Errorf("body evidence = %q, want it to start %q", line, tt.want)
			}
			if n := utf8.RuneCountInString(line); n > diagnose.DefaultBodySummary+40 {
				t.Errorf("body evidence is %d characters long", n)
			}
			assertPrintable(t, d)
		})
	}
}

// assertPrintable: every string of a diagnosis is valid UTF-8 on one line, bounded, and marshals.
func assertPrintable(t *testing.T, d diagnose.Diagnosis) {
	t.Helper()
	check := func(what, s string) {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", what, s)
		}
		if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
			t.Errorf("%s holds a control or formatting character: %q", what, s)
		}
		if len(s) > 4096 {
			t.Errorf("%s is %d bytes long", what, len(s))
		}
	}
	check("summary", d.Summary)
	for _, e := range d.Evidence {
		check("evidence fact", e.Fact)
		check("evidence source", e.Source)
	}
	for _, c := range d.Checks {
		check("check "+c.ID, c.Finding)
	}
	for _, f := range d.Fix {
		check("fix", f)
	}
	if len(d.Evidence) > 40 {
		t.Errorf("%d evidence lines", len(d.Evidence))
	}
	if _, err := json.Marshal(d); err != nil {
		t.Errorf("marshal: %v", err)
	}
}

// FuzzDiagnose throws arbitrary answers at the rules: any status, body, headers and recorded request.
func FuzzDiagnose(f *testing.F) {
	f.Add(403, []byte(""), "Kestrel", "", "application/json", createBody(terminal2, merchant2), "")
	f.Add(401, []byte(""), "Kestrel", `Bearer error="invalid_token", error_description="The token expired at '05/01/2026 10:02:11'"`, "", "", "")
	f.Add(401, []byte(""), "", `Bearer error="invalid_token", error_description="IDX10223: Lifetime validation failed. The token is expired. ValidTo (UTC): '5/1/2026 10:02:11 AM', Current time (UTC): '5/1/2026 10:06:23 AM'."`, "", "", "")
	f.Add(403, []byte(wafPage), "awselb/2.0", "", "text/html", "", "")
	f.Add(429, []byte(`{"code":429,"error":"rate_limit_exceeded"}`), "Kestrel", "", "application/json", "", "30")
	f.Add(502, []byte("\x1f\x8b\x08\x00\xff\xfe"), "cloudflare", `Basic realm="x\"`, "", `{"terminalId":`, "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(401, []byte("caf\xe9"), "", `Bearer ,,,="=,error="`, "text/plain", "\x00", "-1")
	f.Fuzz(func(t *testing.T, status int, body []byte, server, wwwAuth, contentType, sentBody, retryAfter string) {
		h := http.Header{}
		for k, v := range map[string]string{"Server": server, "WWW-Authenticate": wwwAuth, "Content-Type": contentType, "Retry-After": retryAfter, "Date": retryAfter} {
			if v != "" {
				h.Set(k, v)
			}
		}
		shape := bead.ShapeText
		switch {
		case len(body) == 0:
			shape = bead.ShapeEmpty
		case !utf8.Valid(body):
			shape = bead.ShapeBinary
		case bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")):
			shape = bead.ShapeHTML
		}
		in := paymentIncident(diagnose.OpCreatePayment, claims(), func(tok string) bead.SentRequest {
			return sent(http.MethodPost, "/payments/crypto/"+server, redactedBearer(tok), sentBody)
		}, status, h, shape, string(body))
		in.Resource.TrackingOwner = retryAfter
		d := diagnose.Diagnose(in)
		if _, ok := diagnose.LookupCause(d.Cause); !ok {
			t.Fatalf("cause %q is not in the table", d.Cause)
		}
		assertPrintable(t, d)
		s := diagnose.BodySummary(body, 50)
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 50+40 {
			t.Fatalf("BodySummary(%q) = %q", body, s)
		}
	})
}

// BenchmarkDiagnose: a typical refusal, and the largest body the client keeps (64 KiB of HTML).
func BenchmarkDiagnose(b *testing.B) {
	typical := paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal2, merchant2), 403, beadHeaders(), bead.ShapeEmpty, "")
	page := "<html><head><title>Blocked</title></head><body>" + strings.Repeat("<p>denied</p>\n", 64<<10/14)
	largest := paymentIncident(diagnose.OpCreatePayment, claims(), createReq(terminal1, merchant1), 403,
		http.Header{"Server": {"cloudflare"}}, bead.ShapeHTML, page[:64<<10])
	for _, bc := range []struct {
		name string
		in   diagnose.Incident
	}{{"typical 403", typical}, {"64 KiB HTML body", largest}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				diagnose.Diagnose(bc.in)
			}
		})
	}
}
