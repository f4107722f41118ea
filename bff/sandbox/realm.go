package sandbox

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// This file is the identity side: two Keycloak realms (nonprod, whose tokens the payments API
// accepts, and prod, whose tokens it refuses as Bead's sandbox API refuses production tokens),
// the password and refresh_token grants of the public clients bead-terminal and
// bead-integrator, discovery, JWKS, logout and userinfo. Answers, field names and error texts
// are Keycloak's.

// realm is one Keycloak realm. Both realms sign with the sandbox's one RSA key but publish it
// under their own kid, as two realms of one Keycloak publish different keys.
type realm struct {
	name string
	kid  string
}

func newRealms(pub *rsa.PublicKey) map[string]realm {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an *rsa.PublicKey
	out := map[string]realm{}
	for _, name := range []string{"nonprod", "prod"} {
		sum := sha256.Sum256(append([]byte(name+"\x00"), der...))
		out[name] = realm{name: name, kid: base64.RawURLEncoding.EncodeToString(sum[:])}
	}
	return out
}

func (rl realm) issuer(r *http.Request) string { return baseURL(r) + "/realms/" + rl.name }

// Clients both realms know. Both are public (no secret), as the integrator samples show.
const (
	clientTerminal   = "bead-terminal"
	clientIntegrator = "bead-integrator"
)

func knownClient(id string) bool { return id == clientTerminal || id == clientIntegrator }

// session is one Keycloak user session: a password login and every refresh that follows it.
type session struct {
	id         string
	realm      string
	client     string
	terminalID string
	scope      string
	authTime   time.Time
	ended      bool // logged out
}

// refreshRecord is the realm's memory of one refresh token, for rotation and revocation.
type refreshRecord struct {
	sid    string
	issued time.Time
	exp    time.Time
	used   bool // already exchanged: presenting it again is reuse
}

// accessRecord remembers when an access token was issued, to the nanosecond. The iat claim has
// whole seconds only, too coarse for expire_tokens: a token minted in the same second right
// after the fault must stay valid.
type accessRecord struct {
	issued time.Time
	exp    time.Time
}

// sweepMinimum is the token-map size below which expired records are not worth sweeping.
const sweepMinimum = 4096

// tokenResponse is Keycloak's AccessTokenResponse, field for field.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	IDToken          string `json:"id_token,omitempty"`
	NotBeforePolicy  int    `json:"not-before-policy"`
	SessionState     string `json:"session_state"`
	Scope            string `json:"scope"`
}

func (s *Sandbox) realmRoutes() http.Handler {
	mux := http.NewServeMux()
	const oidc = "/realms/{realm}/protocol/openid-connect"
	mux.HandleFunc("GET /realms/{realm}/.well-known/openid-configuration", s.inRealm(s.handleDiscovery))
	mux.HandleFunc("POST "+oidc+"/token", s.inRealm(s.handleToken))
	mux.HandleFunc("GET "+oidc+"/certs", s.inRealm(s.handleCerts))
	mux.HandleFunc("POST "+oidc+"/logout", s.inRealm(s.handleLogout))
	mux.HandleFunc("GET "+oidc+"/userinfo", s.inRealm(s.handleUserinfo))
	mux.HandleFunc("POST "+oidc+"/userinfo", s.inRealm(s.handleUserinfo))
	return mux
}

// inRealm resolves {realm} and answers an unknown one as Keycloak does.
func (s *Sandbox) inRealm(h func(http.ResponseWriter, *http.Request, realm)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rl, ok := s.realms[r.PathValue("realm")]
		if !ok {
			writeJSON(w, http.StatusNotFound, "application/json", map[string]string{"error": "Realm does not exist"})
			return
		}
		h(w, r, rl)
	}
}

func (s *Sandbox) handleDiscovery(w http.ResponseWriter, r *http.Request, rl realm) {
	iss := rl.issuer(r)
	oidc := iss + "/protocol/openid-connect"
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"issuer": iss,
		// Listed because clients such as AppAuth expect it; the sandbox serves only the
		// grants below, so it answers 404.
		"authorization_endpoint":                oidc + "/auth",
		"token_endpoint":                        oidc + "/token",
		"userinfo_endpoint":                     oidc + "/userinfo",
		"end_session_endpoint":                  oidc + "/logout",
		"jwks_uri":                              oidc + "/certs",
		"grant_types_supported":                 []string{"password", "refresh_token"},
		"response_types_supported":              []string{"code", "token", "id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      knownScopes,
		"claims_supported": []string{"aud", "sub", "iss", "auth_time", "name", "preferred_username",
			"email", "email_verified", "acr", "azp", "sid", "terminalId", "merchantId"},
	})
}

func (s *Sandbox) handleCerts(w http.ResponseWriter, r *http.Request, rl realm) {
	pub := &s.signingKey.PublicKey
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"keys": []map[string]string{{
			"kid": rl.kid,
			"kty": "RSA",
			"alg": "RS256",
			"use": "sig",
			"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}},
	})
}

// oauthError is Keycloak's error body.
type oauthError struct {
	status      int
	code        string
	description string
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, "application/json", map[string]string{"error": e.code, "error_description": e.description})
}

// The errors Keycloak answers on the token and logout endpoints, with its wording. Bad
// credentials are 401, not the RFC's 400: a client that branches on the status must cope.
var (
	errMissingGrantType   = &oauthError{http.StatusBadRequest, "invalid_request", "Missing form parameter: grant_type"}
	errUnsupportedGrant   = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type"}
	errInvalidClient      = &oauthError{http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials"}
	errPublicClientGrant  = &oauthError{http.StatusBadRequest, "unauthorized_client", "Public client not allowed to retrieve service account"}
	errBadCredentials     = &oauthError{http.StatusUnauthorized, "invalid_grant", "Invalid user credentials"}
	errMissingRefresh     = &oauthError{http.StatusBadRequest, "invalid_request", "Missing parameter: refresh_token"}
	errInvalidRefresh     = &oauthError{http.StatusBadRequest, "invalid_grant", "Invalid refresh token"}
	errRefreshExpired     = &oauthError{http.StatusBadRequest, "invalid_grant", "Token is not active"}
	errRefreshWrongClient = &oauthError{http.StatusBadRequest, "invalid_grant", "Invalid refresh token. Token client and authorized client don't match"}
	errSessionNotActive   = &oauthError{http.StatusBadRequest, "invalid_grant", "Session not active"}
	errRefreshRevoked     = &oauthError{http.StatusBadRequest, "invalid_grant", "Stale token"}
	errRefreshReused      = &oauthError{http.StatusBadRequest, "invalid_grant", "Maximum allowed refresh token reuse exceeded"}
)

func (s *Sandbox) handleToken(w http.ResponseWriter, r *http.Request, rl realm) {
	rec := &statusRecorder{ResponseWriter: w}
	w = rec
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	// ParseForm reads the body only for form-encoded requests, so a JSON body ends up as
	// "missing grant_type", which is what Keycloak answers to it too.
	_ = r.ParseForm()
	grant := r.PostForm.Get("grant_type")
	defer func() { s.countTokenRequest(grant, rec.code()) }()
	if s.takeFault(faultSlowToken) && !s.stall(r, func(f *faults) time.Duration { return f.slowTokenDelay }) {
		rec.status = statusClientClosed
		return
	}

	if grant == "" {
		writeOAuthError(w, errMissingGrantType)
		return
	}
	client := r.PostForm.Get("client_id")
	if user, _, ok := r.BasicAuth(); client == "" && ok {
		client = user // client authentication by HTTP Basic, which Keycloak also accepts
	}
	if !knownClient(client) {
		writeOAuthError(w, errInvalidClient)
		return
	}

	var resp tokenResponse
	var err error
	switch grant {
	case "password":
		resp, err = s.passwordGrant(r, rl, client)
	case "refresh_token":
		resp, err = s.refreshGrant(r, rl, client)
	case "client_credentials":
		err = errPublicClientGrant
	default:
		err = errUnsupportedGrant
	}
	if oe, ok := errors.AsType[*oauthError](err); ok {
		s.log.Info("sandbox token refused", "realm", rl.name, "grant", grant, "client", client, "error", oe.description)
		writeOAuthError(w, oe)
		return
	}
	if err != nil {
		s.log.Error("sandbox token", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, "application/json", resp)
}

func (s *Sandbox) passwordGrant(r *http.Request, rl realm, client string) (tokenResponse, error) {
	// Keycloak stores user names in lower case and matches them case-insensitively. A bare
	// terminal id without the @beadpay.io suffix is not a user name, so it fails.
	t, ok := s.byUsername[strings.ToLower(r.PostForm.Get("username"))]
	password := r.PostForm.Get("password")
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(t.Password)) != 1 {
		return tokenResponse{}, errBadCredentials
	}
	now := s.now()
	sess := session{
		id:         newUUID(),
		realm:      rl.name,
		client:     client,
		terminalID: t.TerminalID,
		scope:      grantedScope(r.PostForm.Get("scope")),
		authTime:   now,
	}
	s.mu.Lock()
	s.state.sessions[sess.id] = &sess
	s.mu.Unlock()
	return s.mintTokens(r, rl, sess, now)
}

// refreshGrant exchanges a refresh token for new tokens. Rotation is on, as in a Keycloak realm
// with "Revoke Refresh Token" and a reuse count of 0: each refresh token works once, and the
// answer carries its successor.
func (s *Sandbox) refreshGrant(r *http.Request, rl realm, client string) (tokenResponse, error) {
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		return tokenResponse{}, errMissingRefresh
	}
	claims, err := s.parseRefreshToken(raw)
	if err != nil {
		return tokenResponse{}, errInvalidRefresh
	}
	now := s.now()
	if exp, _ := claims.GetExpirationTime(); exp == nil || !now.Before(exp.Time) {
		return tokenResponse{}, errRefreshExpired
	}
	if azp, _ := claims["azp"].(string); azp != client {
		return tokenResponse{}, errRefreshWrongClient
	}
	jti, _ := claims["jti"].(string)

	s.mu.Lock()
	sess, err := s.state.takeRefreshLocked(jti, rl)
	var snapshot session
	if err == nil {
		snapshot = *sess
	}
	s.mu.Unlock()
	if err != nil {
		return tokenResponse{}, err
	}
	return s.mintTokens(r, rl, snapshot, now)
}

// takeRefreshLocked checks a refresh token's record and marks it used. Marking happens under
// the lock, so of two concurrent refreshes with one token exactly one wins.
func (st *state) takeRefreshLocked(jti string, rl realm) (*session, error) {
	rec := st.refreshTokens[jti]
	if rec == nil {
		return nil, errInvalidRefresh
	}
	sess := st.sessions[rec.sid]
	switch {
	case sess == nil || sess.ended:
		return nil, errSessionNotActive
	case sess.realm != rl.name:
		return nil, &oauthError{http.StatusBadRequest, "invalid_grant", "Invalid token issuer. Expected realm '" + rl.name + "'"}
	case st.faults.refreshRevoked(rec.issued):
		return nil, errRefreshRevoked
	case rec.used:
		st.stats.refreshTokenReuse++
		return nil, errRefreshReused
	}
	rec.used = true
	return sess, nil
}

func (s *Sandbox) handleLogout(w http.ResponseWriter, r *http.Request, rl realm) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	client := r.PostForm.Get("client_id")
	if !knownClient(client) {
		writeOAuthError(w, errInvalidClient)
		return
	}
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		writeOAuthError(w, errMissingRefresh)
		return
	}
	claims, err := s.parseRefreshToken(raw)
	if err != nil {
		writeOAuthError(w, errInvalidRefresh)
		return
	}
	if azp, _ := claims["azp"].(string); azp != client {
		writeOAuthError(w, errRefreshWrongClient)
		return
	}
	sid, _ := claims["sid"].(string)

	s.mu.Lock()
	sess := s.state.sessions[sid]
	active := sess != nil && !sess.ended && sess.realm == rl.name
	if active {
		// Ending the session kills every refresh token of it, rotated or not. Access tokens
		// stay valid until they expire: Bead's API checks them offline.
		sess.ended = true
		s.state.stats.logouts++
	}
	s.mu.Unlock()
	if !active {
		writeOAuthError(w, errSessionNotActive)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) handleUserinfo(w http.ResponseWriter, r *http.Request, rl realm) {
	fail := func() {
		desc := "Token verification failed"
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q, error="invalid_token", error_description=%q`, rl.name, desc))
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]string{"error": "invalid_token", "error_description": desc})
	}
	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		fail()
		return
	}
	c, _, ok := s.validateBearer(raw, false, func(iss string) bool { return iss == rl.issuer(r) })
	if !ok {
		fail()
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"sub":                c["sub"],
		"email_verified":     false,
		"preferred_username": c["preferred_username"],
		"email":              c["email"],
		"terminalId":         c["terminalId"],
		"merchantId":         c["merchantId"],
	})
}

// knownScopes are the client scopes the realms define; other requested words are ignored.
var knownScopes = []string{"openid", "profile", "email"}

// grantedScope answers what was asked among openid, profile and email, in that order. No scope
// parameter means all three, the value Bead documents. A request naming none of them gets
// Keycloak's default client scopes, "profile email", which notably lack openid.
func grantedScope(requested string) string {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(knownScopes, " ")
	}
	asked := strings.Fields(requested)
	var granted []string
	for _, sc := range knownScopes {
		if slices.Contains(asked, sc) {
			granted = append(granted, sc)
		}
	}
	if len(granted) == 0 {
		return "profile email"
	}
	return strings.Join(granted, " ")
}

func hasScope(scope, want string) bool { return slices.Contains(strings.Fields(scope), want) }

// mintTokens signs an access token, a refresh token and, with openid, an ID token for sess.
// Signing happens outside the lock: RSA signatures are the slowest thing the sandbox does.
func (s *Sandbox) mintTokens(r *http.Request, rl realm, sess session, now time.Time) (tokenResponse, error) {
	s.mu.Lock()
	accessTTL, refreshTTL := s.state.cfg.accessTTL, s.state.cfg.refreshTTL
	s.mu.Unlock()

	t := s.byID[sess.terminalID]
	iss := rl.issuer(r)
	iat := now.Unix()
	accessSeconds, refreshSeconds := ceilSeconds(accessTTL), ceilSeconds(refreshTTL)
	accessExp, refreshExp := iat+accessSeconds, iat+refreshSeconds
	accessJTI, refreshJTI := newUUID(), newUUID()
	sub := subjectOf(t.TerminalID)

	access := jwt.MapClaims{
		"exp": accessExp,
		"iat": iat,
		"jti": accessJTI,
		"iss": iss,
		"aud": "account",
		"sub": sub,
		"typ": "Bearer",
		"azp": sess.client,
		"sid": sess.id,
		"acr": "1",
		"realm_access": map[string]any{
			"roles": []string{"default-roles-" + rl.name, "offline_access", "uma_authorization"},
		},
		"resource_access": map[string]any{
			"account": map[string]any{"roles": []string{"manage-account", "view-profile"}},
		},
		"scope": sess.scope,
		// A protocol mapper of the clients adds these two, scope or no scope.
		"terminalId": t.TerminalID,
		"merchantId": t.MerchantID,
	}
	// As in Keycloak, the profile scope maps the user name and the email scope the address.
	if hasScope(sess.scope, "profile") {
		access["preferred_username"] = strings.ToLower(t.Username)
	}
	if hasScope(sess.scope, "email") {
		access["email"] = strings.ToLower(t.Username)
		access["email_verified"] = false
	}
	accessJWT, err := s.signRS256(rl.kid, access)
	if err != nil {
		return tokenResponse{}, err
	}

	refresh := jwt.MapClaims{
		"exp":   refreshExp,
		"iat":   iat,
		"jti":   refreshJTI,
		"iss":   iss,
		"aud":   iss,
		"sub":   sub,
		"typ":   "Refresh",
		"azp":   sess.client,
		"sid":   sess.id,
		"scope": sess.scope,
	}
	rt := jwt.NewWithClaims(jwt.SigningMethodHS512, refresh)
	rt.Header["kid"] = s.refreshKid
	refreshJWT, err := rt.SignedString(s.refreshKey)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("sign refresh token: %w", err)
	}

	resp := tokenResponse{
		AccessToken:      accessJWT,
		ExpiresIn:        accessSeconds,
		RefreshExpiresIn: refreshSeconds,
		RefreshToken:     refreshJWT,
		TokenType:        "Bearer",
		SessionState:     sess.id,
		Scope:            sess.scope,
	}
	if hasScope(sess.scope, "openid") {
		sum := sha256.Sum256([]byte(accessJWT))
		id := jwt.MapClaims{
			"exp":        accessExp,
			"iat":        iat,
			"auth_time":  sess.authTime.Unix(),
			"jti":        newUUID(),
			"iss":        iss,
			"aud":        sess.client,
			"sub":        sub,
			"typ":        "ID",
			"azp":        sess.client,
			"sid":        sess.id,
			"at_hash":    base64.RawURLEncoding.EncodeToString(sum[:16]),
			"acr":        "1",
			"terminalId": t.TerminalID,
			"merchantId": t.MerchantID,
		}
		for _, k := range []string{"preferred_username", "email", "email_verified"} {
			if v, ok := access[k]; ok {
				id[k] = v
			}
		}
		if resp.IDToken, err = s.signRS256(rl.kid, id); err != nil {
			return tokenResponse{}, err
		}
	}

	s.mu.Lock()
	st := &s.state
	st.accessTokens[accessJTI] = accessRecord{issued: now, exp: time.Unix(accessExp, 0)}
	st.refreshTokens[refreshJTI] = &refreshRecord{sid: sess.id, issued: now, exp: time.Unix(refreshExp, 0)}
	if rl.name == "nonprod" {
		st.nonprodIssuers[iss] = true
	}
	st.sweepLocked(now)
	s.mu.Unlock()
	return resp, nil
}

func (s *Sandbox) signRS256(kid string, claims jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(s.signingKey)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// parseRefreshToken checks a refresh token's HS512 signature and type. Expiry and state are the
// caller's, so that each failure gets Keycloak's own message.
func (s *Sandbox) parseRefreshToken(raw string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.refreshKey, nil },
		jwt.WithValidMethods([]string{"HS512"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return nil, err
	}
	if typ, _ := claims["typ"].(string); typ != "Refresh" {
		return nil, errors.New("not a refresh token")
	}
	return claims, nil
}

// sweepLocked drops token records and sessions that can no longer matter, once the maps have
// doubled since the last sweep, so a long demo run does not grow without bound.
func (st *state) sweepLocked(now time.Time) {
	if len(st.accessTokens)+len(st.refreshTokens) < st.sweepAt {
		return
	}
	for jti, rec := range st.accessTokens {
		if now.After(rec.exp) {
			delete(st.accessTokens, jti)
		}
	}
	live := map[string]bool{}
	for jti, rec := range st.refreshTokens {
		if now.After(rec.exp) {
			delete(st.refreshTokens, jti)
			continue
		}
		live[rec.sid] = true
	}
	for sid := range st.sessions {
		if !live[sid] {
			delete(st.sessions, sid)
		}
	}
	st.sweepAt = max(sweepMinimum, 2*(len(st.accessTokens)+len(st.refreshTokens)))
}

// subjectOf is the stable user id (sub) of a terminal's realm user, UUID-shaped like Keycloak's.
func subjectOf(terminalID string) string {
	b := sha256.Sum256([]byte("bead-sandbox-user:" + terminalID))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
