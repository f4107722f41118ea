package diagnose

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultBodySummary is how many characters of a remote body an evidence line quotes.
const DefaultBodySummary = 300

// maxHeaderQuote bounds a header value quoted in evidence: enough for a WWW-Authenticate challenge.
const maxHeaderQuote = 240

// BodySummary renders a remote body for a person to read, whatever it holds: at most max characters
// (DefaultBodySummary when max <= 0) of valid UTF-8 on one line, with control and invisible formatting
// characters escaped (a body must not forge log lines or reorder text with bidi controls) and bytes that
// are not UTF-8 shown as \xNN. A body that is mostly not text is described by its size and first bytes
// instead. A cut is marked with "…" and the full size. It never panics.
func BodySummary(b []byte, max int) string {
	if max <= 0 {
		max = DefaultBodySummary
	}
	trimmed := trimSpaceBytes(b)
	if len(trimmed) == 0 {
		if len(b) == 0 {
			return "(empty)"
		}
		return fmt.Sprintf("(%d bytes of white space)", len(b))
	}
	if looksBinary(trimmed) {
		n := min(len(trimmed), 16)
		return fmt.Sprintf("(%d bytes of binary data, starting % x)", len(b), trimmed[:n])
	}
	s, cut := escapeText(trimmed, max)
	if cut {
		return s + fmt.Sprintf("… (%d bytes in all)", len(b))
	}
	return s
}

// quote renders a short remote string (a header value, a claim) for evidence.
func quote(s string, max int) string {
	if s == "" {
		return ""
	}
	out, cut := escapeText([]byte(strings.TrimSpace(s)), max)
	if cut {
		return out + "…"
	}
	return out
}

// escapeText writes b as at most max characters of escaped text, and reports whether it cut.
func escapeText(b []byte, max int) (string, bool) {
	var sb strings.Builder
	chars := 0
	for i := 0; i < len(b); {
		if chars >= max {
			return sb.String(), true
		}
		r, size := utf8.DecodeRune(b[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = fmt.Sprintf(`\x%02x`, b[i])
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			piece = strconv.QuoteToASCII(string(r))
			piece = piece[1 : len(piece)-1]
		default:
			piece = string(r)
		}
		sb.WriteString(piece)
		chars += utf8.RuneCountInString(piece)
		i += size
	}
	return sb.String(), false
}

// looksBinary: a NUL byte, or more than a tenth of the first KiB (and more than two bytes: a short
// message with a stray escape is still text) not decoding as text.
func looksBinary(b []byte) bool {
	head := b[:min(len(b), 1024)]
	bad := 0
	for i := 0; i < len(head); {
		r, size := utf8.DecodeRune(head[i:])
		switch {
		case r == 0:
			return true
		case r == utf8.RuneError && size <= 1 && i+utf8.UTFMax <= len(head):
			bad++ // a rune cut by the head's end is not counted
		case r < ' ' && r != '\n' && r != '\r' && r != '\t':
			bad++
		}
		i += size
	}
	return bad > 2 && bad*10 > len(head)
}

func trimSpaceBytes(b []byte) []byte {
	start, end := 0, len(b)
	for start < end && isASCIISpace(b[start]) {
		start++
	}
	for end > start && isASCIISpace(b[end-1]) {
		end--
	}
	return b[start:end]
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

// stamp is how evidence writes a moment: UTC, to the second, with its zone.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// span writes a duration for a person: "4 min 12 s", "2 h 5 min", "850 ms". Negative durations are
// written as their magnitude; the sentence around says before or after.
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		m, s := int(d/time.Minute), int((d%time.Minute)/time.Second)
		if s == 0 {
			return fmt.Sprintf("%d min", m)
		}
		return fmt.Sprintf("%d min %d s", m, s)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int((d%time.Hour)/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d days", int(d.Round(time.Hour)/(24*time.Hour)))
}

// beforeOrAfter says how a moment stands to a reference: "4 min 12 s before", "57 min after".
func beforeOrAfter(t, ref time.Time) string {
	if t.Before(ref) {
		return span(ref.Sub(t)) + " before"
	}
	return span(t.Sub(ref)) + " after"
}
