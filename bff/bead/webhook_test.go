package bead

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A vector computed outside Go, so that this package and the sandbox cannot agree on a misreading:
//
//	KEY=YmVhZGJmZi10ZXN0LXNpZ25pbmctc2VjcmV0LTMyYnk=   (the base64 signingSecret)
//	printf '%s' "1781811428956.$BODY" | openssl dgst -sha256 -mac HMAC \
//	    -macopt hexkey:$(printf '%s' $KEY | base64 -d | xxd -p -c 256) -binary | base64
//
// The body has a unicode escape left as sent (\u00e9, \u2615) and a 1.0-style number: a receiver that
// re-encodes the JSON before checking would get other bytes and fail.
const (
	vectorSecret    = "YmVhZGJmZi10ZXN0LXNpZ25pbmctc2VjcmV0LTMyYnk="
	vectorBody      = `{"trackingId":"0123456789abcdef0123456789abcdef","statusCode":"completed","amounts":{"requested":{"inRequestedCurrency":{"amount":1.0,"currency":"USD"}}},"reference":"caf\u00e9 \u2615","terminalId":"aaaaaaaaaaaaaaaaaaaaaaaa"}`
	vectorT         = "1781811428956"
	vectorSig       = "2Z9NdWfUyKg326fNo/bmkVYA7qw72Z5sWmulMJ/OxOA="
	vectorSecondsT  = "1781811428"
	vectorSecondSig = "QoZQPfLnOqzpeO4smIg/drG4d54nYw4/cBN3bRKfoSU="
	vectorLegacyHex = "5977bec0c0dfeb7dce408e018f90149f96f473cc650d7582aa9cfcf91c006a35"
)

var vectorNow = time.UnixMilli(1781811428956).Add(30 * time.Second)

func vectorKey(t *testing.T) []byte {
	t.Helper()
	k, err := DecodeSigningSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign is an independent signer for the table below (not SignWebhook, which is under test too).
func sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestVerifyWebhook(t *testing.T) {
	key := vectorKey(t)
	other := []byte("another-secret-of-another-term!!")
	body := []byte(vectorBody)
	ms := func(d time.Duration) string { return strconv.FormatInt(vectorNow.Add(d).UnixMilli(), 10) }
	header := func(ts string, b []byte, k []byte) string { return "t=" + ts + ",s=" + sign(k, ts, b) }
	odd := []byte("{ \"trackingId\" :\t\"x\",\r\n  \"statusCode\":\"completed\"  }\n\n")
	gz := gzipped(t, body)

	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		want    WebhookReason // "" for accepted
		matched []int
	}{
		{"openssl vector", "t=" + vectorT + ",s=" + vectorSig, body, [][]byte{key}, "", []int{0}},
		{"openssl vector, t in seconds", "t=" + vectorSecondsT + ",s=" + vectorSecondSig, body, [][]byte{key}, "", []int{0}},
		{"spaces around parts and reversed order", " s = " + vectorSig + " , t = " + vectorT + " ", body, [][]byte{key}, "", []int{0}},
		{"unknown keys are ignored", "t=" + vectorT + ",v=2,s=" + vectorSig, body, [][]byte{key}, "", []int{0}},
		{"unpadded base64", "t=" + vectorT + ",s=" + strings.TrimRight(vectorSig, "="), body, [][]byte{key}, "", []int{0}},
		{"odd whitespace in the body, signed as sent", header(ms(0), odd, key), odd, [][]byte{key}, "", []int{0}},
		{"gzip body signed as sent", header(ms(0), gz, key), gz, [][]byte{key}, "", []int{0}},
		{"rotation: the second secret signs", header(ms(0), body, key), body, [][]byte{other, key}, "", []int{1}},
		{"rotation: two s values, the new one matches", "t=" + ms(0) + ",s=" + sign(other, ms(0), body) + ",s=" + sign(key, ms(0), body), body, [][]byte{key}, "", []int{0}},
		{"the same secret twice matches twice", header(ms(0), body, key), body, [][]byte{key, key}, "", []int{0, 1}},
		{"4 min old", header(ms(-4*time.Minute), body, key), body, [][]byte{key}, "", []int{0}},
		{"4 min ahead", header(ms(4*time.Minute), body, key), body, [][]byte{key}, "", []int{0}},

		{"no header", "", body, [][]byte{key}, WebhookHeaderMissing, nil},
		{"only spaces", "   ", body, [][]byte{key}, WebhookHeaderMissing, nil},
		{"no t", "s=" + vectorSig, body, [][]byte{key}, WebhookHeaderMalformed, nil},
		{"no s", "t=" + vectorT, body, [][]byte{key}, WebhookHeaderMalformed, nil},
		{"neither", "v1=abc", body, [][]byte{key}, WebhookHeaderMalformed, nil},
		{"part without =", "t=" + vectorT + ";s=" + vectorSig, body, [][]byte{key}, WebhookHeaderMalformed, nil},
		{"t twice", "t=" + vectorT + ",t=" + vectorT + ",s=" + vectorSig, body, [][]byte{key}, WebhookHeaderMalformed, nil},
		{"header far too long", "t=" + vectorT + ",s=" + strings.Repeat("A", 2000), body, [][]byte{key}, WebhookHeaderMalformed, nil},
		{"t not a number", "t=soon,s=" + vectorSig, body, [][]byte{key}, WebhookTimestampInvalid, nil},
		{"t negative", "t=-1781811428956,s=" + vectorSig, body, [][]byte{key}, WebhookTimestampInvalid, nil},
		{"t with a fraction", "t=1781811428.956,s=" + vectorSig, body, [][]byte{key}, WebhookTimestampInvalid, nil},
		{"t zero", "t=0,s=" + vectorSig, body, [][]byte{key}, WebhookTimestampInvalid, nil},
		{"t with 17 digits", "t=17818114289560000,s=" + vectorSig, body, [][]byte{key}, WebhookTimestampInvalid, nil},
		{"s not base64", "t=" + vectorT + ",s=not*base64!", body, [][]byte{key}, WebhookSignatureEncoding, nil},
		{"s too short", "t=" + vectorT + ",s=" + base64.StdEncoding.EncodeToString(make([]byte, 20)), body, [][]byte{key}, WebhookSignatureLength, nil},
		{"s too long", "t=" + vectorT + ",s=" + base64.StdEncoding.EncodeToString(make([]byte, 64)), body, [][]byte{key}, WebhookSignatureLength, nil},
		{"hex s without the legacy option", "t=" + vectorT + ",s=" + vectorLegacyHex, body, [][]byte{key}, WebhookSignatureLength, nil},
		{"empty s", "t=" + vectorT + ",s=", body, [][]byte{key}, WebhookSignatureLength, nil},
		{"no secrets", "t=" + vectorT + ",s=" + vectorSig, body, nil, WebhookNoSecrets, nil},
		{"wrong secret", header(ms(0), body, other), body, [][]byte{key}, WebhookSignatureMismatch, nil},
		{"secret used as base64 text, not decoded", header(ms(0), body, []byte(vectorSecret)), body, [][]byte{key}, WebhookSignatureMismatch, nil},
		{"altered body", header(ms(0), body, key), bytes.Replace(body, []byte("completed"), []byte("cancelled"), 1), [][]byte{key}, WebhookSignatureMismatch, nil},
		{"one byte appended", header(ms(0), body, key), append(bytes.Clone(body), ' '), [][]byte{key}, WebhookSignatureMismatch, nil},
		{"re-encoded JSON (escapes decoded)", header(ms(0), body, key), []byte(strings.ReplaceAll(vectorBody, `\u00e9`, "é")), [][]byte{key}, WebhookSignatureMismatch, nil},
		{"gzip body checked after decompression would be wrong", header(ms(0), body, key), gz, [][]byte{key}, WebhookSignatureMismatch, nil},
		{"t changed after signing", "t=" + ms(time.Second) + ",s=" + sign(key, ms(0), body), body, [][]byte{key}, WebhookSignatureMismatch, nil},
		{"stale: 10 min old, signature valid", header(ms(-10*time.Minute), body, key), body, [][]byte{key}, WebhookTimestampStale, nil},
		{"stale: seconds, 1 h old", header(strconv.FormatInt(vectorNow.Add(-time.Hour).Unix(), 10), body, key), body, [][]byte{key}, WebhookTimestampStale, nil},
		{"future: 6 min ahead", header(ms(6*time.Minute), body, key), body, [][]byte{key}, WebhookTimestampFuture, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WebhookVerifier{}.Verify(tt.header, tt.body, tt.secrets, vectorNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !equalInts(got.Matched, tt.matched) {
					t.Errorf("matched %v, want %v", got.Matched, tt.matched)
				}
				if VerifyWebhook(tt.header, tt.body, tt.secrets, vectorNow) != nil {
					t.Error("VerifyWebhook disagrees with WebhookVerifier{}.Verify")
				}
				return
			}
			var we *WebhookError
			if !errors.As(err, &we) || we.Reason != tt.want {
				t.Fatalf("err = %v, want reason %s", err, tt.want)
			}
			if !errors.Is(err, ErrWebhookSignature) {
				t.Error("a *WebhookError does not match ErrWebhookSignature")
			}
			if we.Detail == "" {
				t.Error("no detail: the operator is not told what was wrong")
			}
			for _, secret := range []string{vectorSecret, vectorSig, string(other)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error text %q shows a secret or a signature", err)
				}
			}
		})
	}
}

// A mismatch says so even when t is stale too, and adds that t is off; a valid signature with a stale
// t says the signature was valid (a replay or a clock problem, not a forgery).
func TestVerifyWebhookDetails(t *testing.T) {
	key := vectorKey(t)
	old := strconv.FormatInt(vectorNow.Add(-20*time.Minute).UnixMilli(), 10)
	_, err := WebhookVerifier{}.Verify("t="+old+",s="+sign([]byte("wrong"), old, []byte("{}")), []byte("{}"), [][]byte{key}, vectorNow)
	var we *WebhookError
	if !errors.As(err, &we) || we.Reason != WebhookSignatureMismatch || !strings.Contains(we.Detail, "20m0s older") {
		t.Errorf("err = %v, want a mismatch that also says t is 20m0s old", err)
	}
	_, err = WebhookVerifier{}.Verify("t="+old+",s="+sign(key, old, []byte("{}")), []byte("{}"), [][]byte{key}, vectorNow)
	if !errors.As(err, &we) || we.Reason != WebhookTimestampStale || !strings.Contains(we.Detail, "signature is valid") {
		t.Errorf("err = %v, want stale with the signature valid", err)
	}
	// A custom tolerance is honoured.
	recent := strconv.FormatInt(vectorNow.Add(-2*time.Minute).UnixMilli(), 10)
	_, err = WebhookVerifier{Tolerance: time.Minute}.Verify("t="+recent+",s="+sign(key, recent, []byte("{}")), []byte("{}"), [][]byte{key}, vectorNow)
	if !errors.As(err, &we) || we.Reason != WebhookTimestampStale {
		t.Errorf("err = %v, want stale with a 1-minute tolerance", err)
	}
}

func TestVerifyWebhookLegacyHex(t *testing.T) {
	key := vectorKey(t)
	body := []byte(vectorBody)
	secs := strconv.FormatInt(vectorNow.Unix(), 10)
	tests := []struct {
		name   string
		header string
		legacy bool
		want   WebhookReason
	}{
		{"sha256= form", "sha256=" + vectorLegacyHex, true, ""},
		{"bare hex", vectorLegacyHex, true, ""},
		{"upper-case hex", strings.ToUpper(vectorLegacyHex), true, ""},
		{"t in seconds, s hex", "t=" + secs + ",s=" + vectorLegacyHex, true, ""},
		{"t stale, s hex", "t=" + strconv.FormatInt(vectorNow.Add(-time.Hour).Unix(), 10) + ",s=" + vectorLegacyHex, true, WebhookTimestampStale},
		{"canonical still works with the option", "t=" + vectorT + ",s=" + vectorSig, true, ""},
		{"wrong hex", "sha256=" + strings.Repeat("ab", 32), true, WebhookSignatureMismatch},
		{"sha256= with junk", "sha256=xyz", true, WebhookSignatureEncoding},
		{"sha256= without the option", "sha256=" + vectorLegacyHex, false, WebhookHeaderMalformed},
		{"bare hex without the option", vectorLegacyHex, false, WebhookHeaderMalformed},
		{"t + hex without the option", "t=" + secs + ",s=" + vectorLegacyHex, false, WebhookSignatureLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WebhookVerifier{LegacyHex: tt.legacy}.Verify(tt.header, body, [][]byte{key}, vectorNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.Legacy != (tt.header != "t="+vectorT+",s="+vectorSig) {
					t.Errorf("Legacy = %v", got.Legacy)
				}
				return
			}
			var we *WebhookError
			if !errors.As(err, &we) || we.Reason != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestSignWebhookRoundTrip(t *testing.T) {
	key := vectorKey(t)
	at := time.UnixMilli(1781811428956)
	if got, want := SignWebhook(key, at, []byte(vectorBody)), "t="+vectorT+",s="+vectorSig; got != want {
		t.Errorf("SignWebhook = %q, want the openssl vector %q", got, want)
	}
	// The legacy vector is the hex HMAC of the body alone.
	m := hmac.New(sha256.New, key)
	m.Write([]byte(vectorBody))
	if hex.EncodeToString(m.Sum(nil)) != vectorLegacyHex {
		t.Error("legacy vector does not match")
	}
}

func TestParseWebhookSignature(t *testing.T) {
	sig, err := ParseWebhookSignature("t=" + vectorSecondsT + ",s=a,s=b")
	if err != nil {
		t.Fatal(err)
	}
	if !sig.Seconds || !sig.Timestamp.Equal(time.Unix(1781811428, 0)) || sig.T != vectorSecondsT || len(sig.Signatures) != 2 {
		t.Errorf("parsed %+v", sig)
	}
	sig, err = ParseWebhookSignature("t=" + vectorT + ",s=a")
	if err != nil || sig.Seconds || !sig.Timestamp.Equal(time.UnixMilli(1781811428956)) {
		t.Errorf("parsed %+v, %v; want milliseconds", sig, err)
	}
	if _, err := ParseWebhookSignature("t=1,s=" + strings.Repeat("s=x,", maxWebhookSignatures+1)); err == nil {
		t.Error("more than maxWebhookSignatures signatures accepted")
	}
}

func TestDecodeSigningSecret(t *testing.T) {
	for _, s := range []string{vectorSecret, strings.TrimRight(vectorSecret, "="), " " + vectorSecret + "\n"} {
		if k, err := DecodeSigningSecret(s); err != nil || string(k) != "beadbff-test-signing-secret-32by" {
			t.Errorf("DecodeSigningSecret(%q) = %q, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "not base64!", "%%%"} {
		if _, err := DecodeSigningSecret(s); err == nil {
			t.Errorf("DecodeSigningSecret(%q) accepted", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q quotes the secret", err)
		}
	}
}

// The parser and the verifier take whatever arrives on the wire: they must never panic, and what the
// parser accepts must be well-formed.
func FuzzParseWebhookSignature(f *testing.F) {
	for _, seed := range []string{
		"t=" + vectorT + ",s=" + vectorSig, "t=" + vectorSecondsT + ",s=" + vectorSecondSig, "s=x,t=1",
		"", "t=", "s=", ",", "t=1,s=a,s=b,v=c", "sha256=" + vectorLegacyHex, vectorLegacyHex, "t=99999999999999999,s=a",
		"t=１２３,s=a", "t=1\x00,s=a", " t = 1 , s = a ",
	} {
		f.Add(seed, []byte(vectorBody))
	}
	key := []byte("beadbff-test-signing-secret-32by")
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		sig, err := ParseWebhookSignature(header)
		if err == nil {
			if !allDigits(sig.T) || sig.T == "" || len(sig.T) > 16 || sig.Timestamp.IsZero() || len(sig.Signatures) == 0 || len(sig.Signatures) > maxWebhookSignatures {
				t.Fatalf("accepted a malformed header %q as %+v", header, sig)
			}
		} else {
			var we *WebhookError
			if !errors.As(err, &we) || we.Reason == "" {
				t.Fatalf("parse error %v is not a *WebhookError with a reason", err)
			}
		}
		for _, legacy := range []bool{false, true} {
			v, err := WebhookVerifier{LegacyHex: legacy}.Verify(header, body, [][]byte{key}, vectorNow)
			if err == nil && len(v.Matched) == 0 {
				t.Fatalf("accepted %q without a matching secret", header)
			}
		}
		// Whatever the header held, a fresh signature of this body verifies, and one byte more does not.
		good := SignWebhook(key, vectorNow, body)
		if VerifyWebhook(good, body, [][]byte{key}, vectorNow) != nil {
			t.Fatalf("own signature refused for body %q", body)
		}
		if VerifyWebhook(good, append(bytes.Clone(body), 'x'), [][]byte{key}, vectorNow) == nil {
			t.Fatal("an extended body verified")
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkVerifyWebhook: one delivery of a realistic body checked against two secrets (a rotation).
func BenchmarkVerifyWebhook(b *testing.B) {
	key, _ := DecodeSigningSecret(vectorSecret)
	secrets := [][]byte{[]byte("the-old-secret-still-configured!"), key}
	body := []byte(vectorBody)
	header := SignWebhook(key, vectorNow, body)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyWebhook(header, body, secrets, vectorNow); err != nil {
			b.Fatal(err)
		}
	}
}
