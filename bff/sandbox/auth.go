package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// This file checks the Bearer tokens the payments API receives, in the order and with the words
// of ASP.NET Core's JwtBearer handler over Microsoft.IdentityModel: that is what runs in front
// of Bead's API, and the product's 403/401 diagnosis reads these answers.

// principal is the caller of the payments API as its access token describes it.
type principal struct {
	terminalID string
	merchantID string
	client     string
}

// authFailure is a refused request: 401 with a WWW-Authenticate challenge, or 403.
type authFailure struct {
	status int
	// challenge is the WWW-Authenticate value of a 401.
	challenge string
}

// bearerToken extracts the token as JwtBearer does: the scheme is matched case-insensitively and
// the rest trimmed. No header, another scheme, or nothing after "Bearer " count as no token,
// which gets a bare "Bearer" challenge rather than error="invalid_token".
func bearerToken(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}

// aspnetTime is how IdentityModel prints times in its messages: DateTime.ToString() in the
// invariant culture, in UTC.
const aspnetTime = "01/02/2006 15:04:05"

// validateBearer checks a JWT's signature, lifetime and issuer. A failure returns ok false and
// the error_description JwtBearer would put in its challenge ("" for a token it cannot read at
// all). When the signature does not verify, IdentityModel still validates lifetime and issuer
// first so as to report the more useful problem; so does this. faulted applies the
// expire_tokens fault, which concerns the payments API only.
func (s *Sandbox) validateBearer(raw string, faulted bool, validIssuer func(string) bool) (claims jwt.MapClaims, description string, ok bool) {
	claims = jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &s.signingKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if errors.Is(err, jwt.ErrTokenMalformed) || tok == nil {
		return nil, "", false
	}
	signatureProblem := ""
	if err != nil {
		// Only the nonprod key is published to the API. A kid it knows with a bad signature
		// is tampering; a kid it does not know is a token from somewhere else.
		if kid, _ := tok.Header["kid"].(string); kid == s.realms["nonprod"].kid {
			signatureProblem = "The signature is invalid"
		} else {
			signatureProblem = "The signature key was not found"
		}
	}

	now := s.now()
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, "The token has no expiration", false
	}
	if nbf, _ := claims.GetNotBefore(); nbf != nil && now.Before(nbf.Time) {
		return nil, fmt.Sprintf("The token is not valid before '%s'", nbf.UTC().Format(aspnetTime)), false
	}
	if now.After(exp.Time) {
		return nil, fmt.Sprintf("The token expired at '%s'", exp.UTC().Format(aspnetTime)), false
	}
	if faulted && signatureProblem == "" {
		if cutoff, expired := s.expiredByFault(claims); expired {
			return nil, fmt.Sprintf("The token expired at '%s'", cutoff.UTC().Format(aspnetTime)), false
		}
	}
	if iss, _ := claims["iss"].(string); !validIssuer(iss) {
		return nil, fmt.Sprintf("The issuer '%s' is invalid", iss), false
	}
	if signatureProblem != "" {
		return nil, signatureProblem, false
	}
	return claims, "", true
}

// expiredByFault reports whether the expire_tokens fault has ended this token, and when.
func (s *Sandbox) expiredByFault(claims jwt.MapClaims) (time.Time, bool) {
	jti, _ := claims["jti"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	issued := time.Time{}
	if rec, ok := s.state.accessTokens[jti]; ok {
		issued = rec.issued
	} else if iat, _ := claims.GetIssuedAt(); iat != nil {
		issued = iat.Time
	}
	cutoff := s.state.faults.accessCutoff
	return cutoff, s.state.faults.accessExpired(issued)
}

// authenticate runs the API's authentication and authorization: a valid token of this sandbox's
// nonprod realm, issued to one of the allowed clients, with the openid scope. stripped is the
// strip_authorization fault: the header is treated as absent, as a proxy that drops it would.
func (s *Sandbox) authenticate(r *http.Request, stripped bool, clients []string) (principal, *authFailure) {
	header := r.Header.Get("Authorization")
	if stripped {
		header = ""
	}
	raw, present := bearerToken(header)
	if !present {
		return principal{}, &authFailure{status: http.StatusUnauthorized, challenge: "Bearer"}
	}
	claims, description, ok := s.validateBearer(raw, true, s.isNonprodIssuer)
	if !ok {
		challenge := `Bearer error="invalid_token"`
		if description != "" {
			challenge += fmt.Sprintf(`, error_description="%s"`, description)
		}
		return principal{}, &authFailure{status: http.StatusUnauthorized, challenge: challenge}
	}

	// Authorization policy: Keycloak names the client in azp; a client_id claim (added only by
	// some mappers) wins when present, as Bead's troubleshooting page reads it.
	client, _ := claims["client_id"].(string)
	if client == "" {
		client, _ = claims["azp"].(string)
	}
	scope, _ := claims["scope"].(string)
	allowed := false
	for _, c := range clients {
		allowed = allowed || c == client
	}
	if !allowed || !hasScope(scope, "openid") {
		return principal{}, &authFailure{status: http.StatusForbidden}
	}
	p := principal{client: client}
	p.terminalID, _ = claims["terminalId"].(string)
	p.merchantID, _ = claims["merchantId"].(string)
	if p.terminalID == "" {
		return principal{}, &authFailure{status: http.StatusForbidden}
	}
	return p, nil
}

// isNonprodIssuer accepts the nonprod realm of this sandbox under any host name it has signed
// tokens with (127.0.0.1 and localhost are the same sandbox), and nothing else.
func (s *Sandbox) isNonprodIssuer(iss string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.nonprodIssuers[iss]
}
