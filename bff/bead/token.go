package bead

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Login runs the password grant for one terminal. A username without "@" gets the configured suffix
// ("abc123" -> "abc123@beadpay.io"), because Bead's terminal logins are e-mail shaped. Bad credentials
// come back as a *TokenError for which IsInvalidGrant is true.
func (c *Client) Login(ctx context.Context, username, password string) (*Token, error) {
	const op = "password grant"
	if username == "" || password == "" {
		return nil, fmt.Errorf("bead: %s: %w: username and password are required", op, ErrInvalidRequest)
	}
	if !strings.Contains(username, "@") {
		username += c.cfg.UsernameSuffix
	}
	cl := c.newCall(ctx, op)
	defer cl.cancel()
	tok, err := c.oauth.PasswordCredentialsToken(cl.oauthContext(), username, password)
	if err != nil {
		return nil, cl.tokenFailure(err)
	}
	t := c.token(tok, cl.start)
	if t.Scope == "" {
		// RFC 6749 §5.1: an answer without scope granted the scope asked for.
		t.Scope = strings.Join(c.cfg.Scopes, " ")
	}
	return t, nil
}

// Refresh runs the refresh grant. Keycloak rotates refresh tokens; when an answer carries none, the old
// one stays valid and is kept in the returned Token. An expired, revoked or reused refresh token gives a
// *TokenError for which IsInvalidGrant is true: the terminal must log in again.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	const op = "refresh grant"
	if refreshToken == "" {
		return nil, fmt.Errorf("bead: %s: %w: no refresh token", op, ErrInvalidRequest)
	}
	cl := c.newCall(ctx, op)
	defer cl.cancel()
	// An access-less token makes the source refresh at once; the source is used for this one grant only,
	// because token caching and "one refresher at a time" belong to the session's terminal record.
	tok, err := c.oauth.TokenSource(cl.oauthContext(), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, cl.tokenFailure(err)
	}
	t := c.token(tok, cl.start)
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// token converts the library's token, timing lifetimes from obtained (taken before the request went
// out, so that the expiry this side computes is never later than the realm's).
func (c *Client) token(tok *oauth2.Token, obtained time.Time) *Token {
	t := &Token{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		IDToken:      extraString(tok, "id_token"),
		TokenType:    tok.TokenType,
		Scope:        extraString(tok, "scope"),
		Expiry:       tok.Expiry,
		ObtainedAt:   obtained,
	}
	if tok.ExpiresIn > 0 {
		t.Expiry = obtained.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	// Keycloak sends refresh_expires_in 0 for offline tokens, which do not expire by time.
	if secs, ok := extraSeconds(tok, "refresh_expires_in"); ok && secs > 0 {
		t.RefreshExpiry = obtained.Add(time.Duration(secs) * time.Second)
	}
	return t
}

func extraString(tok *oauth2.Token, key string) string {
	s, _ := tok.Extra(key).(string)
	return s
}

// extraSeconds reads a number of seconds that JSON decoding left as float64 (or a form answer as int64),
// or that a realm sent as a string.
func extraSeconds(tok *oauth2.Token, key string) (int64, bool) {
	const maxSeconds = 10 * 365 * 24 * 3600 // longer lifetimes are junk and would overflow a Duration
	var n int64
	switch v := tok.Extra(key).(type) {
	case float64:
		n = int64(v)
	case int64:
		n = v
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			return 0, false
		}
		n = i
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false
		}
		n = i
	default:
		return 0, false
	}
	if n < 0 || n > maxSeconds {
		return 0, false
	}
	return n, true
}

// tokenFailure sorts an error of golang.org/x/oauth2: the realm's refusal becomes a *TokenError, no
// answer a *TransportError, and a 2xx the library could not read an ErrUnexpectedAnswer.
func (cl *call) tokenFailure(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenError{
			Op:          cl.op,
			Request:     cl.rec.sent,
			Code:        re.ErrorCode,
			Description: re.ErrorDescription,
			ReceivedAt:  cl.rec.now(),
		}
		body, truncated := re.Body, false
		if len(body) > maxErrorBody {
			body, truncated = body[:maxErrorBody], true
		}
		te.Body = redactJWTs(body)
		te.Description = RedactJWTs(te.Description)
		contentType := ""
		if re.Response != nil {
			te.Status = re.Response.StatusCode
			te.Header = re.Response.Header.Clone()
			contentType = re.Response.Header.Get("Content-Type")
		}
		te.Shape = classifyErrorBody(contentType, body, truncated).Shape
		return te
	}
	if cl.rec.roundTripErr != nil || !cl.rec.gotResponse || errors.Is(cl.ctx.Err(), context.DeadlineExceeded) {
		return cl.transportError(err)
	}
	return fmt.Errorf("bead: %s: %w: %v", cl.op, ErrUnexpectedAnswer, err)
}

// Logout ends the realm session of refreshToken (Keycloak's RP logout with client_id and
// refresh_token), so that the refresh token cannot be used again. An empty refresh token has no session
// to end: Logout returns nil without a call. A refusal comes back as a *TokenError.
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	const op = "logout"
	if refreshToken == "" {
		return nil
	}
	form := url.Values{"client_id": {c.cfg.ClientID}, "refresh_token": {refreshToken}}
	if c.cfg.ClientSecret != "" {
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	cl := c.newCall(ctx, op)
	defer cl.cancel()
	req, err := http.NewRequestWithContext(cl.ctx, http.MethodPost, c.identityURL+"/protocol/openid-connect/logout",
		strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("bead: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	a, err := cl.do(req)
	if err != nil {
		return err
	}
	if a.ok() {
		return nil
	}
	f := classifyErrorBody(a.header.Get("Content-Type"), a.body, a.truncated)
	return &TokenError{
		Op:          op,
		Request:     cl.rec.sent,
		Status:      a.status,
		Code:        f.Code,
		Description: RedactJWTs(f.Detail),
		Header:      redactAnswerHeader(a.header),
		Body:        redactJWTs(a.body),
		Shape:       f.Shape,
		ReceivedAt:  a.receivedAt,
	}
}

// Discover fetches the realm's OpenID discovery document and checks that it describes the configured
// realm: its issuer must be IdentityURL (the tokens' iss, which diagnosis compares against) and it must
// name a token endpoint. The server runs it before listening, so a wrong realm URL fails at start.
func (c *Client) Discover(ctx context.Context) error {
	const op = "discover"
	cl := c.newCall(ctx, op)
	defer cl.cancel()
	req, err := http.NewRequestWithContext(cl.ctx, http.MethodGet, c.identityURL+"/.well-known/openid-configuration", nil)
	if err != nil {
		return fmt.Errorf("bead: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	a, err := cl.do(req)
	if err != nil {
		return err
	}
	if !a.ok() {
		return cl.apiError(a)
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := decodeAnswer(a, &doc); err != nil {
		return fmt.Errorf("bead: %s: %w", op, err)
	}
	if strings.TrimRight(doc.Issuer, "/") != c.identityURL {
		return fmt.Errorf("bead: %s: %w: issuer is %q, configured realm is %q", op, ErrDiscoveryMismatch,
			shorten(doc.Issuer, 200), c.identityURL)
	}
	if doc.TokenEndpoint == "" {
		return fmt.Errorf("bead: %s: %w: no token_endpoint", op, ErrDiscoveryMismatch)
	}
	return nil
}
