package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of every session key: AES-256.
const KeySize = 32

// The sealed blob format, version 1:
//
//	offset 0      1 byte   format version (blobVersion)
//	offset 1      4 bytes  key id: the first 4 bytes of SHA-256(key), so Open picks the right key at once
//	offset 5     12 bytes  random nonce
//	offset 17     rest     AES-256-GCM ciphertext and its 16-byte tag
//
// The additional data is the 5-byte header followed by the caller's name for the blob (the storage key),
// so a blob copied under another name, or with its version or key id edited, fails authentication.
const (
	blobVersion  byte = 1
	keyIDSize         = 4
	nonceSize         = 12
	tagSize           = 16
	headerSize        = 1 + keyIDSize
	blobOverhead      = headerSize + nonceSize + tagSize
)

// Keyring seals and opens session blobs under SESSION_KEYS. The first key seals; every key opens, so a new
// key is rolled out by putting it first and keeping the old ones until the sessions they sealed have
// expired. A Keyring is safe for concurrent use. It keeps no raw key bytes, only the ciphers built from
// them, and never prints them.
type Keyring struct {
	keys []sealingKey // keys[0] seals
}

type sealingKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewKeyring builds a keyring from one or more 32-byte keys, the sealing key first.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: keyring: at least one key is required")
	}
	k := &Keyring{keys: make([]sealingKey, 0, len(keys))}
	for i, key := range keys {
		if len(key) != KeySize {
			// The position, never the key: this message may reach a log.
			return nil, fmt.Errorf("session: keyring: key %d is %d bytes, want %d", i+1, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("session: keyring: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("session: keyring: key %d: %w", i+1, err)
		}
		k.keys = append(k.keys, sealingKey{id: keyID(key), aead: aead})
	}
	return k, nil
}

// ParseKeys decodes SESSION_KEYS: comma-separated base64 keys of 32 bytes each. Standard and URL-safe
// alphabets are accepted, padded or not, because operators paste keys from different tools
// (`openssl rand -base64 32` pads, others do not). Errors name the key by position, never by value.
func ParseKeys(commaSeparatedBase64 string) ([][]byte, error) {
	if strings.TrimSpace(commaSeparatedBase64) == "" {
		return nil, errors.New("session: no keys given")
	}
	parts := strings.Split(commaSeparatedBase64, ",")
	keys := make([][]byte, 0, len(parts))
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("session: key %d is empty (stray comma?)", i+1)
		}
		key, err := decodeBase64(part)
		if err != nil {
			return nil, fmt.Errorf("session: key %d is not valid base64", i+1)
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("session: key %d is %d bytes, want %d", i+1, len(key), KeySize)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// GenerateKey returns a fresh random 32-byte key, for SESSION_KEYS or a process-local keyring.
func GenerateKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("session: generate key: %w", err)
	}
	return key, nil
}

// Seal encrypts plaintext under the first key. name is the storage key the blob will live under; Open must
// be given the same name.
func (k *Keyring) Seal(name string, plaintext []byte) []byte {
	key := k.keys[0]
	out := make([]byte, headerSize+nonceSize, blobOverhead+len(plaintext))
	out[0] = blobVersion
	copy(out[1:headerSize], key.id[:])
	nonce := out[headerSize : headerSize+nonceSize]
	// crypto/rand.Read never fails since Go 1.24 (it crashes the program instead), so there is no error
	// to return. A random 96-bit nonce is safe for far more sessions than one key will ever seal
	// (NIST's bound is 2^32 messages per key).
	_, _ = rand.Read(nonce)
	return key.aead.Seal(out, nonce, plaintext, additionalData(out[:headerSize], name))
}

// Open decrypts a blob made by Seal under the same name with any key of the ring. Every failure (truncated,
// unknown version, unknown key, tampered, wrong name) wraps ErrUnreadable; the message never quotes the
// blob.
func (k *Keyring) Open(name string, blob []byte) ([]byte, error) {
	if len(blob) < blobOverhead {
		return nil, fmt.Errorf("session: open: %w: blob is %d bytes, shorter than the %d of any sealed blob",
			ErrUnreadable, len(blob), blobOverhead)
	}
	if blob[0] != blobVersion {
		return nil, fmt.Errorf("session: open: %w: unknown format version %d", ErrUnreadable, blob[0])
	}
	id := blob[1:headerSize]
	nonce := blob[headerSize : headerSize+nonceSize]
	ciphertext := blob[headerSize+nonceSize:]
	aad := additionalData(blob[:headerSize], name)
	known := false
	// Several keys can share an id only by a 1-in-2^32 accident (or a key listed twice): try each of them.
	for _, key := range k.keys {
		if string(key.id[:]) != string(id) {
			continue
		}
		known = true
		if plaintext, err := key.aead.Open(nil, nonce, ciphertext, aad); err == nil {
			return plaintext, nil
		}
	}
	if !known {
		return nil, fmt.Errorf("session: open: %w: sealed under key %s, which is not in the keyring",
			ErrUnreadable, hex.EncodeToString(id))
	}
	return nil, fmt.Errorf("session: open: %w: authentication failed (tampered, or stored under another name)",
		ErrUnreadable)
}

// String lists the key ids (not the keys), sealing key first, so a keyring can be logged while rotating.
func (k *Keyring) String() string {
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = hex.EncodeToString(key.id[:])
	}
	return "session.Keyring[" + strings.Join(ids, ",") + "]"
}

// GoString keeps %#v from printing the cipher internals.
func (k *Keyring) GoString() string { return k.String() }

func keyID(key []byte) [keyIDSize]byte {
	sum := sha256.Sum256(key)
	var id [keyIDSize]byte
	copy(id[:], sum[:keyIDSize])
	return id
}

func additionalData(header []byte, name string) []byte {
	aad := make([]byte, 0, len(header)+len(name))
	aad = append(aad, header...)
	return append(aad, name...)
}
