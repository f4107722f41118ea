package bead

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeClaims(t *testing.T) {
	header := map[string]any{"alg": "RS256", "typ": "JWT", "kid": "key-1"}
	tests := []struct {
		name   string
		claims map[string]any
		want   Claims
	}{
		{
			name: "aud as a string, client_id absent falls back to azp, terminal from preferred_username",
			claims: map[string]any{
				"iss": "https://identity.beadpay.io/realms/nonprod", "sub": "u-1", "aud": "account",
				"azp": "bead-terminal", "scope": "openid profile email", "typ": "Bearer", "jti": "j-1", "sid": "s-1",
				"preferred_username": "0123456789abcdef01234567@beadpay.io", "email": "0123456789abcdef01234567@beadpay.io",
				"iat": 1772366400, "exp": 1772370000,
			},
			want: Claims{
				Issuer: "https://identity.beadpay.io/realms/nonprod", Subject: "u-1", Audience: []string{"account"},
				AuthorizedParty: "bead-terminal", ClientID: "bead-terminal", Scope: "openid profile email",
				PreferredUsername: "0123456789abcdef01234567@beadpay.io", Email: "0123456789abcdef01234567@beadpay.io",
				TerminalID: "0123456789abcdef01234567", SessionID: "s-1", TokenID: "j-1", Type: "Bearer",
				KeyID: "key-1", Algorithm: "RS256",
				IssuedAt: time.Unix(1772366400, 0).UTC(), ExpiresAt: time.Unix(1772370000, 0).UTC(),
			},
		},
		{
			name: "aud as an array, client_id present wins over azp, terminalId and merchantId claims",
			claims: map[string]any{
				"aud": []string{"account", "bead-api"}, "azp": "bead-terminal", "client_id": "bead-integrator",
				"terminalId": "aaaaaaaaaaaaaaaaaaaaaaaa", "merchantId": "bbbbbbbbbbbbbbbbbbbbbbbb",
				"preferred_username": "cccccccccccccccccccccccc@beadpay.io",
			},
			want: Claims{
				Audience: []string{"account", "bead-api"}, AuthorizedParty: "bead-terminal", ClientID: "bead-integrator",
				TerminalID: "aaaaaaaaaaaaaaaaaaaaaaaa", MerchantID: "bbbbbbbbbbbbbbbbbbbbbbbb",
				PreferredUsername: "cccccccccccccccccccccccc@beadpay.io", KeyID: "key-1", Algorithm: "RS256",
			},
		},
		{
			name:   "no preferred_username: terminal from email",
			claims: map[string]any{"email": "dddd@beadpay.io"},
			want:   Claims{Email: "dddd@beadpay.io", TerminalID: "dddd", KeyID: "key-1", Algorithm: "RS256"},
		},
		{
			name:   "fractional and string dates",
			claims: map[string]any{"iat": 1772366400.5, "exp": "1772370000", "nbf": nil},
			want: Claims{
				IssuedAt: time.Unix(1772366400, 500_000_000).UTC(), ExpiresAt: time.Unix(1772370000, 0).UTC(),
				KeyID: "key-1", Algorithm: "RS256",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeClaims(makeJWT(t, header, tt.claims))
			if err != nil {
				t.Fatalf("DecodeClaims: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeClaimsRefuses(t *testing.T) {
	header := map[string]any{"alg": "RS256"}
	tests := []struct {
		name     string
		token    string
		wantText string
	}{
		{"not a JWT", "opaque-token-value-without-dots", "1 dot-separated parts"},
		{"JWE has five parts", "a.b.c.d.e", "5 dot-separated parts"},
		{"payload not base64url", "eyJhbGciOiJSUzI1NiJ9.***.sig", "payload is not base64url"},
		{"payload not an object", "eyJhbGciOiJSUzI1NiJ9.WzEsMl0.sig", "payload is not a JSON object"},
		{"exp of the wrong type", makeJWT(t, header, map[string]any{"exp": true}), `claim "exp"`},
		{"aud of the wrong type", makeJWT(t, header, map[string]any{"aud": 7}), `claim "aud"`},
		{"scope of the wrong type", makeJWT(t, header, map[string]any{"scope": []string{"openid"}}), `claim "scope"`},
		{"too long", strings.Repeat("a", maxTokenLen+1), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeClaims(tt.token)
			if !errors.Is(err, ErrNotJWT) {
				t.Fatalf("error = %v, want ErrNotJWT", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestClaimsHasScope(t *testing.T) {
	c := Claims{Scope: "profile openid-like email"}
	if c.HasScope("openid") {
		t.Error(`HasScope("openid") = true for "openid-like": must match whole words`)
	}
	if !c.HasScope("email") {
		t.Error(`HasScope("email") = false`)
	}
}

// FuzzDecodeClaims guards against panics on any input and against errors that echo the token.
func FuzzDecodeClaims(f *testing.F) {
	for _, seed := range []string{
		"", ".", "..", "a.b.c",
		"eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsiYSIsMV19.x",
		"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjFlMzAwfQ.x",
		"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiItMSJ9.x",
		"eyJhbGciOiJSUzI1NiJ9.bnVsbA.x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		_, err := DecodeClaims(token)
		if err != nil && len(token) > 40 && strings.Contains(err.Error(), token) {
			t.Errorf("error %q contains the token", err)
		}
	})
}
