package sandbox

import (
	"sort"
	"time"
)

// Fault kinds accepted by POST /_sandbox/faults. Each reproduces a failure the product must
// diagnose: see CONTRACT.md "Sandbox control" and the causes table.
const (
	// expire_tokens: every access token issued so far now counts as expired, whatever its exp.
	faultExpireTokens = "expire_tokens"
	// revoke_refresh_tokens: every refresh token issued so far is dead (invalid_grant).
	faultRevokeRefreshTokens = "revoke_refresh_tokens"
	// waf_block: the next N API calls get an HTML 403 from a front proxy, not from Bead.
	faultWAFBlock = "waf_block"
	// strip_authorization: the next N API calls arrive without their Authorization header.
	faultStripAuthorization = "strip_authorization"
	// rate_limit: the next N API calls get 429.
	faultRateLimit = "rate_limit"
	// slow: the next N API calls wait delayMs before being handled.
	faultSlow = "slow"
	// slow_token: the next N requests to a realm's token endpoint wait delayMs (a realm under load).
	faultSlowToken = "slow_token"
	// webhook_bad_secret, webhook_old_timestamp, webhook_altered_body: the next N webhook
	// attempts are signed with another key, carry a timestamp 10 minutes old, or have their
	// body changed after signing.
	faultWebhookBadSecret    = "webhook_bad_secret"
	faultWebhookOldTimestamp = "webhook_old_timestamp"
	faultWebhookAlteredBody  = "webhook_altered_body"
)

// countedFaults are the kinds that apply to the next N calls or attempts.
var countedFaults = map[string]bool{
	faultWAFBlock: true, faultStripAuthorization: true, faultRateLimit: true, faultSlow: true, faultSlowToken: true,
	faultWebhookBadSecret: true, faultWebhookOldTimestamp: true, faultWebhookAlteredBody: true,
}

const (
	defaultSlowDelay = time.Second
	maxSlowDelay     = 2 * time.Minute
)

// faults is the injected-failure state. It lives in state, behind Sandbox.mu.
type faults struct {
	remaining      map[string]int // counted kind -> calls or attempts still to fault
	slowDelay      time.Duration
	slowTokenDelay time.Duration
	// Tokens issued at or before these moments are expired or revoked; zero: no cut-off.
	accessCutoff  time.Time
	refreshCutoff time.Time
}

func newFaults() faults { return faults{remaining: map[string]int{}} }

// take consumes one use of a counted fault and reports whether it applies.
func (f *faults) take(kind string) bool {
	n := f.remaining[kind]
	if n <= 0 {
		return false
	}
	if n == 1 {
		delete(f.remaining, kind)
	} else {
		f.remaining[kind] = n - 1
	}
	return true
}

func (f *faults) accessExpired(issued time.Time) bool {
	return !f.accessCutoff.IsZero() && !issued.After(f.accessCutoff)
}

func (f *faults) refreshRevoked(issued time.Time) bool {
	return !f.refreshCutoff.IsZero() && !issued.After(f.refreshCutoff)
}

// faultsView is the JSON answer of the fault endpoints.
type faultsView struct {
	Pending              map[string]int `json:"pending"`
	SlowDelayMs          int64          `json:"slowDelayMs,omitempty"`
	SlowTokenDelayMs     int64          `json:"slowTokenDelayMs,omitempty"`
	TokensExpiredAt      *time.Time     `json:"tokensExpiredAt,omitempty"`
	RefreshTokensRevoked *time.Time     `json:"refreshTokensRevokedAt,omitempty"`
	Kinds                []string       `json:"kinds"`
}

func (f *faults) view() faultsView {
	v := faultsView{Pending: map[string]int{}}
	for k, n := range f.remaining {
		v.Pending[k] = n
	}
	if f.remaining[faultSlow] > 0 {
		v.SlowDelayMs = f.slowDelay.Milliseconds()
	}
	if f.remaining[faultSlowToken] > 0 {
		v.SlowTokenDelayMs = f.slowTokenDelay.Milliseconds()
	}
	if !f.accessCutoff.IsZero() {
		t := f.accessCutoff.UTC()
		v.TokensExpiredAt = &t
	}
	if !f.refreshCutoff.IsZero() {
		t := f.refreshCutoff.UTC()
		v.RefreshTokensRevoked = &t
	}
	v.Kinds = []string{faultExpireTokens, faultRevokeRefreshTokens}
	for k := range countedFaults {
		v.Kinds = append(v.Kinds, k)
	}
	sort.Strings(v.Kinds)
	return v
}

// takeFault consumes one use of a counted fault, counting it in the statistics.
func (s *Sandbox) takeFault(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.state.faults.take(kind) {
		return false
	}
	s.state.stats.faultsApplied[kind]++
	return true
}
