package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testKey returns a fixed 32-byte key, distinct per fill byte, so failures are reproducible.
func testKey(fill byte) []byte { return bytes.Repeat([]byte{fill}, KeySize) }

func mustKeyring(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func TestNewKeyringRejects(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
		want string
	}{
		{name: "no keys", keys: nil, want: "at least one key"},
		{name: "short key", keys: [][]byte{testKey(1)[:16]}, want: "key 1 is 16 bytes, want 32"},
		{name: "long second key", keys: [][]byte{testKey(1), append(testKey(2), 0)}, want: "key 2 is 33 bytes"},
		{name: "empty key", keys: [][]byte{{}}, want: "key 1 is 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeyring(tt.keys...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewKeyring error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	for _, plain := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("session"), 1000)} {
		blob := k.Seal("beadbff:sess:abc", plain)
		if got, want := len(blob), blobOverhead+len(plain); got != want {
			t.Errorf("len(blob) = %d, want %d", got, want)
		}
		got, err := k.Open("beadbff:sess:abc", blob)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("Open = %q, want %q", got, plain)
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	a, b := k.Seal("n", []byte("same")), k.Seal("n", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical: the nonce is not random")
	}
}

func TestOpenRejectsTamperedBlobs(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	const name = "beadbff:sess:abc"
	sealed := k.Seal(name, []byte(`{"tok":{"at":"secret"}}`))

	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   string // a phrase of the error, so each row proves which check caught it
	}{
		{name: "version byte", mutate: flipAt(0), want: "unknown format version"},
		{name: "key id", mutate: flipAt(1), want: "not in the keyring"},
		{name: "last key id byte", mutate: flipAt(headerSize - 1), want: "not in the keyring"},
		{name: "nonce", mutate: flipAt(headerSize), want: "authentication failed"},
		{name: "ciphertext", mutate: flipAt(headerSize + nonceSize), want: "authentication failed"},
		{name: "tag", mutate: func(b []byte) []byte { return flipAt(len(b) - 1)(b) }, want: "authentication failed"},
		{name: "truncated by one byte", mutate: func(b []byte) []byte { return b[:len(b)-1] }, want: "authentication failed"},
		{name: "extra byte", mutate: func(b []byte) []byte { return append(b, 0) }, want: "authentication failed"},
		{name: "short blob", mutate: func(b []byte) []byte { return b[:blobOverhead-1] }, want: "shorter than"},
		{name: "empty blob", mutate: func([]byte) []byte { return nil }, want: "shorter than"},
		{name: "plain JSON (a pre-sealing format)", mutate: func([]byte) []byte {
			return []byte(`{"tid":"t1","tok":{"at":"secret","rt":"secret"}}`)
		}, want: "unknown format version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob := tt.mutate(bytes.Clone(sealed))
			got, err := k.Open(name, blob)
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("Open = %q, %v; want an error wrapping ErrUnreadable", got, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q quotes the blob", err)
			}
		})
	}
}

func flipAt(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		b[i] ^= 0x01
		return b
	}
}

func TestOpenRejectsVersions(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	sealed := k.Seal("n", []byte("payload"))
	tests := []struct {
		name    string
		version byte
		wantErr bool
	}{
		{name: "0: before versioning", version: 0, wantErr: true},
		{name: "1: current", version: 1, wantErr: false},
		{name: "2: from a newer release", version: 2, wantErr: true},
		{name: "255", version: 255, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob := bytes.Clone(sealed)
			blob[0] = tt.version
			_, err := k.Open("n", blob)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Open with version %d: err = %v, want error %v", tt.version, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnreadable) {
				t.Errorf("err = %v, want it to wrap ErrUnreadable", err)
			}
		})
	}
}

func TestOpenRejectsOtherName(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	blob := k.Seal("beadbff:sess:aaa", []byte("payload"))
	for _, name := range []string{"beadbff:sess:bbb", "beadbff:sess:aa", "", "other:sess:aaa"} {
		if _, err := k.Open(name, blob); !errors.Is(err, ErrUnreadable) {
			t.Errorf("Open under %q = %v, want ErrUnreadable (a blob must not move to another key)", name, err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	a, b := testKey(0xa), testKey(0xb)
	oldRing := mustKeyring(t, a)
	rotated := mustKeyring(t, b, a)
	newOnly := mustKeyring(t, b)

	underA := oldRing.Seal("n", []byte("sealed under A"))
	if got, err := rotated.Open("n", underA); err != nil || string(got) != "sealed under A" {
		t.Fatalf("rotated ring Open(blob of A) = %q, %v; want it to open with the second key", got, err)
	}
	if _, err := newOnly.Open("n", underA); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("ring without A opened A's blob: err = %v", err)
	}

	underB := rotated.Seal("n", []byte("sealed under B"))
	if diff := cmp.Diff(keyID(b), [keyIDSize]byte(underB[1:headerSize])); diff != "" {
		t.Errorf("rotated ring sealed under the wrong key (-want B +got):\n%s", diff)
	}
	if got, err := newOnly.Open("n", underB); err != nil || string(got) != "sealed under B" {
		t.Errorf("ring of B Open(blob of B) = %q, %v", got, err)
	}
}

func TestKeyringWithDuplicateIDsTriesEach(t *testing.T) {
	// Two keys sharing an id (here: forged by editing the ring) must both be tried.
	a, b := mustKeyring(t, testKey(1)), mustKeyring(t, testKey(2))
	ring := &Keyring{keys: []sealingKey{{id: a.keys[0].id, aead: b.keys[0].aead}, a.keys[0]}}
	blob := a.Seal("n", []byte("payload"))
	if got, err := ring.Open("n", blob); err != nil || string(got) != "payload" {
		t.Fatalf("Open = %q, %v; want the second key with the same id to open it", got, err)
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	std := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		in      string
		want    [][]byte
		wantErr string
	}{
		{name: "one key", in: std(k1), want: [][]byte{k1}},
		{name: "two keys with spaces", in: std(k1) + " , " + std(k2), want: [][]byte{k1, k2}},
		{name: "unpadded", in: base64.RawStdEncoding.EncodeToString(k1), want: [][]byte{k1}},
		{name: "url-safe", in: base64.URLEncoding.EncodeToString(testKey(0xff)), want: [][]byte{testKey(0xff)}},
		{name: "empty", in: "  ", wantErr: "no keys"},
		{name: "stray comma", in: std(k1) + ",", wantErr: "key 2 is empty"},
		{name: "not base64", in: std(k1) + ",not*base64", wantErr: "key 2 is not valid base64"},
		{name: "16 bytes", in: std(k1[:16]), wantErr: "key 1 is 16 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeys error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseKeys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseKeysErrorsNeverQuoteKeys(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	_, err := ParseKeys(short)
	if err == nil {
		t.Fatal("ParseKeys accepted a 16-byte key")
	}
	if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), "sixteen") {
		t.Errorf("error %q reveals the key", err)
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || bytes.Equal(a, b) {
		t.Fatalf("GenerateKey gave %d bytes, equal to the next: %v", len(a), bytes.Equal(a, b))
	}
	if _, err := NewKeyring(a); err != nil {
		t.Errorf("a generated key does not make a keyring: %v", err)
	}
}

func TestKeyringStringShowsIDsNotKeys(t *testing.T) {
	k := mustKeyring(t, testKey('A'), testKey('B'))
	s := k.String()
	if strings.Contains(s, "AAAA") || strings.Contains(s, base64.StdEncoding.EncodeToString(testKey('A'))) {
		t.Errorf("String() = %q reveals a key", s)
	}
	if got := strings.Count(s, ","); got != 1 {
		t.Errorf("String() = %q, want two key ids", s)
	}
}
