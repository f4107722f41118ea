package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPasswordGrantIssuesKeycloakTokens(t *testing.T) {
	f := newFixture(t, Options{AccessTokenTTL: 90 * time.Second, RefreshTokenTTL: 600 * time.Second})
	term := f.terminal(0)
	ans := f.login(t, "nonprod", "bead-terminal", term, "openid profile email")

	gotResponse := map[string]any{
		"expires_in": ans.ExpiresIn, "refresh_expires_in": ans.RefreshExpiresIn, "token_type": ans.TokenType,
		"scope": ans.Scope, "not-before-policy": ans.NotBeforePolicy != nil,
		"has refresh_token": ans.RefreshToken != "", "has id_token": ans.IDToken != "", "has session_state": ans.SessionState != "",
	}
	wantResponse := map[string]any{
		"expires_in": 90, "refresh_expires_in": 600, "token_type": "Bearer",
		"scope": "openid profile email", "not-before-policy": true,
		"has refresh_token": true, "has id_token": true, "has session_state": true,
	}
	if diff := cmp.Diff(wantResponse, gotResponse); diff != "" {
		t.Errorf("token response (-want +got):\n%s", diff)
	}

	claims := f.verifyJWT(t, "nonprod", ans.AccessToken)
	iss := f.base + "/realms/nonprod"
	got := map[string]any{}
	for _, k := range []string{"iss", "aud", "azp", "typ", "scope", "preferred_username", "email", "terminalId", "merchantId", "sid"} {
		got[k] = claims[k]
	}
	want := map[string]any{
		"iss": iss, "aud": "account", "azp": "bead-terminal", "typ": "Bearer", "scope": "openid profile email",
		"preferred_username": term.Username, "email": term.Username,
		"terminalId": term.TerminalID, "merchantId": term.MerchantID, "sid": ans.SessionState,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access-token claims (-want +got):\n%s", diff)
	}
	if _, ok := claims["client_id"]; ok {
		t.Error("access token has a client_id claim; Keycloak names the client in azp only")
	}
	for _, k := range []string{"jti", "sub"} {
		if s, _ := claims[k].(string); s == "" {
			t.Errorf("claim %s missing", k)
		}
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if iat == nil || exp == nil || exp.Sub(iat.Time) != 90*time.Second {
		t.Errorf("exp - iat = %v, want 90s", exp.Sub(iat.Time))
	}

	id := f.verifyJWT(t, "nonprod", ans.IDToken)
	if id["typ"] != "ID" || id["aud"] != "bead-terminal" || id["sub"] != claims["sub"] {
		t.Errorf("id token typ %v aud %v sub %v; want ID, bead-terminal, the access token's sub", id["typ"], id["aud"], id["sub"])
	}
}

func TestDiscoveryNamesThisRealm(t *testing.T) {
	f := newFixture(t, Options{})
	for _, realm := range []string{"nonprod", "prod"} {
		t.Run(realm, func(t *testing.T) {
			resp, raw := f.call(t, http.MethodGet, "/realms/"+realm+"/.well-known/openid-configuration", nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			type endpoints struct {
				Issuer   string `json:"issuer"`
				Token    string `json:"token_endpoint"`
				JWKS     string `json:"jwks_uri"`
				Logout   string `json:"end_session_endpoint"`
				Userinfo string `json:"userinfo_endpoint"`
			}
			var got endpoints
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("discovery: %v", err)
			}
			iss := f.base + "/realms/" + realm
			oidc := iss + "/protocol/openid-connect"
			want := endpoints{iss, oidc + "/token", oidc + "/certs", oidc + "/logout", oidc + "/userinfo"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("discovery (-want +got):\n%s", diff)
			}
		})
	}
	resp, raw := f.call(t, http.MethodGet, "/realms/staging/.well-known/openid-configuration", nil, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(raw), "Realm does not exist") {
		t.Errorf("unknown realm: %d %s, want 404 Realm does not exist", resp.StatusCode, raw)
	}
}

func TestRealmsPublishDistinctKeyIDs(t *testing.T) {
	f := newFixture(t, Options{})
	nonprod, prod := f.jwks(t, "nonprod"), f.jwks(t, "prod")
	for kid := range nonprod {
		if _, shared := prod[kid]; shared {
			t.Errorf("kid %s is published by both realms", kid)
		}
	}
	if len(nonprod) != 1 || len(prod) != 1 {
		t.Errorf("keys: nonprod %d, prod %d; want one each", len(nonprod), len(prod))
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(0)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{"wrong password", url.Values{"grant_type": {"password"}, "client_id": {"bead-terminal"}, "username": {term.Username}, "password": {"nope"}},
			401, "invalid_grant", "Invalid user credentials"},
		{"unknown user", url.Values{"grant_type": {"password"}, "client_id": {"bead-terminal"}, "username": {"ffffffffffffffffffffffff@beadpay.io"}, "password": {term.Password}},
			401, "invalid_grant", "Invalid user credentials"},
		{"terminal id without the @beadpay.io suffix", url.Values{"grant_type": {"password"}, "client_id": {"bead-terminal"}, "username": {term.TerminalID}, "password": {term.Password}},
			401, "invalid_grant", "Invalid user credentials"},
		{"empty password", url.Values{"grant_type": {"password"}, "client_id": {"bead-terminal"}, "username": {term.Username}, "password": {""}},
			401, "invalid_grant", "Invalid user credentials"},
		{"unknown client", url.Values{"grant_type": {"password"}, "client_id": {"bead-pos"}, "username": {term.Username}, "password": {term.Password}},
			401, "invalid_client", "Invalid client or Invalid client credentials"},
		{"no client", url.Values{"grant_type": {"password"}, "username": {term.Username}, "password": {term.Password}},
			401, "invalid_client", "Invalid client or Invalid client credentials"},
		{"no grant type", url.Values{"client_id": {"bead-terminal"}},
			400, "invalid_request", "Missing form parameter: grant_type"},
		{"client credentials on a public client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"bead-terminal"}},
			400, "unauthorized_client", "Public client not allowed to retrieve service account"},
		{"unknown grant", url.Values{"grant_type": {"magic"}, "client_id": {"bead-terminal"}},
			400, "unsupported_grant_type", "Unsupported grant_type"},
		{"refresh with garbage", url.Values{"grant_type": {"refresh_token"}, "client_id": {"bead-terminal"}, "refresh_token": {"not-a-token"}},
			400, "invalid_grant", "Invalid refresh token"},
		{"refresh without a token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"bead-terminal"}},
			400, "invalid_request", "Missing parameter: refresh_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ans := f.postForm(t, "nonprod", "token", tt.form)
			got := []any{status, ans.Error, ans.ErrorDescription}
			want := []any{tt.wantStatus, tt.wantError, tt.wantDesc}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsernameIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(1)
	term.Username = strings.ToUpper(term.Username)
	ans := f.login(t, "nonprod", "bead-terminal", term, "")
	if got := f.verifyJWT(t, "nonprod", ans.AccessToken)["terminalId"]; got != f.terminal(1).TerminalID {
		t.Errorf("terminalId %v, want %s", got, f.terminal(1).TerminalID)
	}
}

func TestScopeIsWhatWasAskedAmongKnownScopes(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		name, asked, wantScope string
		wantIDToken            bool
	}{
		{"absent means Bead's default", "", "openid profile email", true},
		{"all three, any order", "email openid profile", "openid profile email", true},
		{"openid only", "openid", "openid", true},
		{"without openid", "profile email", "profile email", false},
		{"unknown words ignored", "openid offline_access payments", "openid", true},
		{"nothing known falls back to Keycloak's defaults", "payments", "profile email", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := f.login(t, "nonprod", "bead-terminal", f.terminal(0), tt.asked)
			claims := f.verifyJWT(t, "nonprod", ans.AccessToken)
			got := []any{ans.Scope, claims["scope"], ans.IDToken != ""}
			want := []any{tt.wantScope, tt.wantScope, tt.wantIDToken}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[response scope, claim scope, id token] (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefreshRotatesAndCountsReuse(t *testing.T) {
	f := newFixture(t, Options{})
	first := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")

	status, second := f.refresh(t, "nonprod", "bead-terminal", first.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("first refresh: %d %s", status, second.ErrorDescription)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if second.SessionState != first.SessionState {
		t.Errorf("session_state changed on refresh: %s -> %s", first.SessionState, second.SessionState)
	}

	// The rotated-out token is dead and its use is counted; its successor still works.
	status, reused := f.refresh(t, "nonprod", "bead-terminal", first.RefreshToken)
	if status != http.StatusBadRequest || reused.Error != "invalid_grant" {
		t.Errorf("reuse: %d %s, want 400 invalid_grant", status, reused.Error)
	}
	if got := f.stats(t).RefreshTokenReuse; got != 1 {
		t.Errorf("refreshTokenReuse = %d, want 1", got)
	}
	if status, _ := f.refresh(t, "nonprod", "bead-terminal", second.RefreshToken); status != http.StatusOK {
		t.Errorf("successor refresh: %d, want 200", status)
	}

	got := f.stats(t).TokenRequests
	if diff := cmp.Diff(map[string]int{"password": 1, "refresh_token": 3}, got); diff != "" {
		t.Errorf("tokenRequests (-want +got):\n%s", diff)
	}
}

func TestRefreshRefusals(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, Options{RefreshTokenTTL: time.Minute, Now: clock.Now})
	tests := []struct {
		name     string
		do       func(t *testing.T, ans tokenAnswer) (int, tokenAnswer)
		wantDesc string
	}{
		{"another client than the one it was issued to", func(t *testing.T, ans tokenAnswer) (int, tokenAnswer) {
			return f.refresh(t, "nonprod", "bead-integrator", ans.RefreshToken)
		}, "Invalid refresh token. Token client and authorized client don't match"},
		{"expired", func(t *testing.T, ans tokenAnswer) (int, tokenAnswer) {
			clock.Advance(61 * time.Second)
			return f.refresh(t, "nonprod", "bead-terminal", ans.RefreshToken)
		}, "Token is not active"},
		{"after logout", func(t *testing.T, ans tokenAnswer) (int, tokenAnswer) {
			status, _ := f.postForm(t, "nonprod", "logout", url.Values{"client_id": {"bead-terminal"}, "refresh_token": {ans.RefreshToken}})
			if status != http.StatusNoContent {
				t.Fatalf("logout: %d, want 204", status)
			}
			return f.refresh(t, "nonprod", "bead-terminal", ans.RefreshToken)
		}, "Session not active"},
		{"at the other realm", func(t *testing.T, ans tokenAnswer) (int, tokenAnswer) {
			return f.refresh(t, "prod", "bead-terminal", ans.RefreshToken)
		}, "Invalid token issuer. Expected realm 'prod'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
			status, got := tt.do(t, ans)
			if diff := cmp.Diff([]any{400, "invalid_grant", tt.wantDesc}, []any{status, got.Error, got.ErrorDescription}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogoutEndsOnlyItsSession(t *testing.T) {
	f := newFixture(t, Options{})
	a := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	b := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	if status, _ := f.postForm(t, "nonprod", "logout", url.Values{"client_id": {"bead-terminal"}, "refresh_token": {a.RefreshToken}}); status != http.StatusNoContent {
		t.Fatalf("logout: %d", status)
	}
	if status, _ := f.refresh(t, "nonprod", "bead-terminal", b.RefreshToken); status != http.StatusOK {
		t.Errorf("other session's refresh: %d, want 200", status)
	}
	// Bead's API checks access tokens offline, so logging out does not end them early.
	if resp, _ := f.call(t, http.MethodGet, "/currencies", nil, bearer(a.AccessToken)); resp.StatusCode != http.StatusOK {
		t.Errorf("access token after logout: %d, want 200 until it expires", resp.StatusCode)
	}
	if status, ans := f.postForm(t, "nonprod", "logout", url.Values{"client_id": {"bead-terminal"}, "refresh_token": {a.RefreshToken}}); status != http.StatusBadRequest || ans.ErrorDescription != "Session not active" {
		t.Errorf("second logout: %d %q, want 400 Session not active", status, ans.ErrorDescription)
	}
}

func TestUserinfo(t *testing.T) {
	f := newFixture(t, Options{})
	term := f.terminal(2)
	ans := f.login(t, "nonprod", "bead-terminal", term, "")
	resp, raw := f.call(t, http.MethodGet, "/realms/nonprod/protocol/openid-connect/userinfo", nil, bearer(ans.AccessToken))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %s", resp.StatusCode, raw)
	}
	m := decodeMap(t, raw)
	if m["terminalId"] != term.TerminalID || m["preferred_username"] != term.Username {
		t.Errorf("userinfo %v", m)
	}
	resp, _ = f.call(t, http.MethodGet, "/realms/prod/protocol/openid-connect/userinfo", nil, bearer(ans.AccessToken))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("nonprod token at prod userinfo: %d, want 401", resp.StatusCode)
	}
}

func TestSweepDropsOnlyDeadRecords(t *testing.T) {
	now := time.Now()
	st := state{
		sessions: map[string]*session{"live": {id: "live"}, "dead": {id: "dead"}},
		refreshTokens: map[string]*refreshRecord{
			"fresh":   {sid: "live", exp: now.Add(time.Minute)},
			"expired": {sid: "dead", exp: now.Add(-time.Second)},
		},
		accessTokens: map[string]accessRecord{
			"fresh":   {exp: now.Add(time.Minute)},
			"expired": {exp: now.Add(-time.Second)},
		},
		sweepAt: 4,
	}
	st.sweepLocked(now)
	var sessions, refresh, access []string
	for k := range st.sessions {
		sessions = append(sessions, k)
	}
	for k := range st.refreshTokens {
		refresh = append(refresh, k)
	}
	for k := range st.accessTokens {
		access = append(access, k)
	}
	got := [][]string{sessions, refresh, access}
	want := [][]string{{"live"}, {"fresh"}, {"fresh"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("[sessions, refresh, access] after sweep (-want +got):\n%s", diff)
	}
	if st.sweepAt != sweepMinimum {
		t.Errorf("next sweep at %d, want %d", st.sweepAt, sweepMinimum)
	}
}
