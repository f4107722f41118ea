// Package diagnose works out why one call to Bead (or one request to this server) failed, the way Bead's
// 403 article asks a person to: dump the headers, decode the JWT, call a simple endpoint, compare the
// token's terminal with the request's, look for middle-boxes. It owns the causes of CONTRACT.md, the
// rules that pick one, the evidence lines that justify it and the checklist that shows each step.
//
// It is pure: an Incident (what was sent, what came back, the token's claims, the configuration, the
// recovery already tried, the clock) goes in, a Diagnosis comes out. No I/O, no clock reads, no Fiber,
// no Redis; the server and `beadbff doctor` gather the facts and render the result. Nothing here ever
// sees a whole token or a password: tokens arrive as TokenInfo (claims, length, the 50-character prefix
// Bead's support asks for) and requests as bead.SentRequest, already redacted by the Bead client.
package diagnose

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"beadbff/bff/bead"
)

// DefaultClockTolerance is how far clocks may disagree before it counts as clock skew: the leeway
// ASP.NET's JwtBearer and most OAuth libraries allow is of this order (five minutes at most).
const DefaultClockTolerance = 60 * time.Second

// PaymentsClient is the OAuth client Bead's payments API accepts tokens of (bead-api.md part A).
const PaymentsClient = "bead-terminal"

// Ops the server and doctor name incidents with; the Bead client uses the same words in its errors.
const (
	OpCreatePayment   = "create payment"
	OpTracking        = "tracking"
	OpProbe           = "probe"
	OpPasswordGrant   = "password grant"
	OpRefreshGrant    = "refresh grant"
	OpDiscovery       = "discover"
	OpLogout          = "logout"
	OpRegisterWebhook = "register webhook"
)

// Refusals made by this server before anything went to Bead (Incident.Local).
const (
	LocalCSRFHeaderMissing       = "csrf_header_missing"
	LocalCORSOriginNotAllowed    = "cors_origin_not_allowed"
	LocalTerminalMismatch        = "terminal_mismatch_local"
	LocalWebhookSignatureInvalid = "webhook_signature_invalid"
	LocalSessionStoreUnavailable = "session_store_unavailable"
	LocalNotAuthenticated        = "not_authenticated"
	LocalInvalidRequest          = "invalid_request"
	// LocalTokenMissing: the session held no usable access token, so the call was not made.
	LocalTokenMissing = "token_missing_local"
)

// Incident is everything known about one failure.
type Incident struct {
	// Op names the call: OpCreatePayment, OpTracking, OpProbe, OpPasswordGrant, OpRefreshGrant, OpDiscovery,
	// or a page or API route of this server for a Local refusal.
	Op string
	// Request is the call as sent, redacted. When Err is a *bead.APIError, *bead.TokenError or
	// *bead.TransportError, the request recorded in the error is used and this may stay empty.
	Request bead.SentRequest
	// Err is the failure of the last attempt (nil when the call succeeded, as in a healthy doctor run).
	Err error
	// Token is what this server knew of the access token the call used; nil for token grants.
	Token *TokenInfo
	// Config is the configuration the call was made with.
	Config Config
	// Recovery is what this server already tried.
	Recovery Recovery
	// Probe is the simple-endpoint probe (GET /currencies with the same token), when one was made.
	Probe *ProbeResult
	// Resource is what the request was about, as far as the caller knows; ids the request itself shows
	// (terminalId and merchantId of the body, the ids in the path) are read from it when these are empty.
	Resource Resource
	// Local is a refusal made here before anything went to Bead (a Local* constant); LocalDetail says what
	// was refused in a few words (the Origin, the header missing, ...).
	Local       string
	LocalDetail string
	// Now is the clock when the answer came (or when the refusal was made).
	Now time.Time
}

// TokenInfo is what the server knew of an access token, without the token itself.
type TokenInfo struct {
	Claims      *bead.Claims // decoded without verification; nil when the token is not a readable JWT
	ClaimsError string       // why it could not be decoded
	Prefix      string       // the first 50 characters (fewer for a short token), for Bead's support
	Length      int
	Scope       string    // the scope the token response granted
	ObtainedAt  time.Time // this server's clock when it asked for the token
	Expiry      time.Time // ObtainedAt + expires_in, by this server's clock
}

// tokenPrefixLen is what Bead's support asks for: "the first 50 characters of the JWT".
const tokenPrefixLen = 50

// NewTokenInfo describes an access token. The token itself is not kept: only its claims, its length and
// its first 50 characters (at most a third of it, so that a short opaque token is never shown whole).
func NewTokenInfo(accessToken, scope string, obtainedAt, expiry time.Time) *TokenInfo {
	ti := &TokenInfo{
		Prefix:     accessToken[:min(tokenPrefixLen, len(accessToken)/3)],
		Length:     len(accessToken),
		Scope:      scope,
		ObtainedAt: obtainedAt,
		Expiry:     expiry,
	}
	if accessToken == "" {
		ti.ClaimsError = "no access token"
		return ti
	}
	c, err := bead.DecodeClaims(accessToken)
	if err != nil {
		ti.ClaimsError = err.Error() // DecodeClaims never puts the token in its errors
		return ti
	}
	ti.Claims = &c
	return ti
}

// TokenInfoOf describes a token the Bead client returned.
func TokenInfoOf(t *bead.Token) *TokenInfo {
	if t == nil {
		return nil
	}
	return NewTokenInfo(t.AccessToken, t.Scope, t.ObtainedAt, t.Expiry)
}

// Config is the configuration a call was made with, and what the session expected.
type Config struct {
	ClientID    string   // BEAD_CLIENT_ID
	Scopes      []string // BEAD_SCOPE
	IdentityURL string   // BEAD_IDENTITY_URL: the realm, which is also the iss tokens must carry
	APIURL      string   // BEAD_API_URL
	// PaymentsClient is the client Bead's payments API accepts; PaymentsClient ("bead-terminal") when empty.
	PaymentsClient string
	// TerminalID and MerchantID are the session's: the terminal its token was issued for.
	TerminalID string
	MerchantID string
	// ClockTolerance: DefaultClockTolerance when zero.
	ClockTolerance time.Duration
}

// Recovery is what the server tried before giving up (Bead's "refresh_token(); retry_once()"). Each
// answer is recorded with who gave it (AnswerOf), because the first and the retry's need not share an
// owner: Bead's own 401 for an expired token, then a firewall's 403 for the retry.
type Recovery struct {
	Refreshed   bool   // a refresh grant was made after the first refusal
	RefreshErr  error  // its failure, when it failed
	Retried     bool   // the call was made a second time, with the refreshed token; Err is that attempt's
	FirstStatus int    // the status of the first attempt (0: no answer)
	FirstBy     string // who gave the first answer (an AnsweredBy* word; "" when none came or it was not recorded)
	RetryStatus int    // the status of the retry's answer (0: no retry, or no answer to it)
	RetryBy     string // who gave the retry's answer
}

// Who wrote an answer: Diagnosis.AnsweredBy, Recovery.FirstBy and Recovery.RetryBy.
const (
	// AnsweredByBead: Bead's API or its identity realm, by its own signs (Server: Kestrel, an echoed
	// x-request-id, a bearer challenge, one of Bead's error bodies).
	AnsweredByBead = "bead"
	// AnsweredByProxy: a firewall, proxy or load balancer in front of Bead (an HTML page, a foreign Server
	// header or a proxy's own header, none of Bead's signs): the signs that make a refusal
	// blocked_before_bead.
	AnsweredByProxy = "proxy"
	// AnsweredByUnknown: an answer with no sign either way, such as an empty body with no telling headers.
	AnsweredByUnknown = "unknown"
)

// AnswerOf is the status of a failed call's answer and who gave it, judged as Diagnose judges
// Diagnosis.AnsweredBy; 0 and "" when no answer came. The server records it for each attempt.
func AnswerOf(err error) (status int, by string) {
	f := newFacts(Incident{Err: err})
	return f.status, f.answeredBy()
}

// ProbeResult is the answer to the simple-endpoint probe (bead.Client.Probe: GET /currencies).
type ProbeResult struct {
	Err    error // nil: the probe passed
	Status int   // 0 when there was no answer, 200 when it passed
	Shape  string
}

// NewProbeResult describes what bead.Client.Probe returned.
func NewProbeResult(err error) *ProbeResult {
	p := &ProbeResult{Err: err}
	var ae *bead.APIError
	switch {
	case err == nil:
		p.Status = http.StatusOK
	case errors.As(err, &ae):
		p.Status, p.Shape = ae.Status, ae.Shape
	}
	return p
}

// Passed reports whether Bead accepted the probe.
func (p *ProbeResult) Passed() bool { return p != nil && p.Err == nil }

// Resource is what a request is about.
type Resource struct {
	TerminalID string // the terminal the request names (body or path)
	MerchantID string
	TrackingID string
	// TrackingOwner is the terminal known to have created TrackingID ("" when this server does not know).
	TrackingOwner string
	// TrackingIndexed says that this server's payment index was read for TrackingID under the session's
	// terminal (Config.TerminalID): with TrackingOwner set, that terminal created the payment through this
	// server; with TrackingOwner "", it did not (or the record has expired). The server reads no other
	// terminal's index: an incident page must not tell one terminal about another's payments.
	TrackingIndexed bool
}

// Diagnosis is the answer: a cause, why, and what to do.
type Diagnosis struct {
	// Cause is one of the Cause* constants; "" when nothing failed and every check passed (Healthy).
	Cause      string `json:"cause"`
	Confidence string `json:"confidence,omitempty"`
	// AnsweredBy says who wrote the answer the diagnosis read (an AnsweredBy* word), from the same signs
	// that decide its cause; "" when no answer came (nothing was sent, no connection, no answer in time).
	// Whatever names who answered (a page, a summary) follows it, not the cause: a proxy's 502 is
	// bead_unavailable, yet Bead did not write it.
	AnsweredBy string `json:"answeredBy,omitempty"`
	// Summary is one sentence: what happened.
	Summary string `json:"summary"`
	// Evidence comes in order of weight: the facts that decided the cause first, then the context.
	Evidence        []Evidence `json:"evidence"`
	Fix             []string   `json:"fix,omitempty"`
	AutoRecoverable bool       `json:"autoRecoverable"`
	Checks          []Check    `json:"checks"`
}

// Healthy reports whether nothing failed.
func (d Diagnosis) Healthy() bool { return d.Cause == "" }

// Evidence is one fact and where it came from ("response header Server", "token claim exp", ...).
type Evidence struct {
	Fact   string `json:"fact"`
	Source string `json:"source"`
}

// Check statuses.
const (
	CheckPassed        = "passed"
	CheckFailed        = "failed"
	CheckNotApplicable = "not_applicable"
)

// Check is one step of the article's debug checklist, as performed on this incident.
type Check struct {
	ID      string `json:"id"`   // headers, jwt, probe, resource, middlebox (doctor adds discovery, token)
	Name    string `json:"name"` // what the step looks at, for a person
	Status  string `json:"status"`
	Finding string `json:"finding"`
}

// The checklist of Bead's 403 article, section 2, in its order.
const (
	CheckHeaders   = "headers"
	CheckJWT       = "jwt"
	CheckProbe     = "probe"
	CheckResource  = "resource"
	CheckMiddlebox = "middlebox"
)

// maxEvidence bounds the evidence list, so that a hostile answer cannot make a diagnosis huge.
const maxEvidence = 40

// Diagnose picks the cause of an incident, with its evidence, fix and checklist. It never panics,
// whatever the bodies and headers hold.
func Diagnose(in Incident) Diagnosis {
	// Whatever Bead echoed of a token is cut to its prefix before any fact is drawn from it.
	var ae *bead.APIError
	var ke *bead.TokenError
	switch {
	case errors.As(in.Err, &ae):
		in.Err = ae.Redacted()
	case errors.As(in.Err, &ke):
		in.Err = ke.Redacted()
	}
	f := newFacts(in)
	v := f.decide()
	d := Diagnosis{Cause: v.cause, Confidence: v.confidence, Summary: v.summary, AnsweredBy: f.answeredBy()}
	if info, ok := LookupCause(v.cause); ok {
		d.AutoRecoverable = info.AutoRecoverable
		// Steps written for this incident replace the cause's general ones, which would repeat them
		// or (for a header stripped on the way) point at the wrong side.
		d.Fix = v.fix
		if len(d.Fix) == 0 {
			d.Fix = info.Fix
		}
	}
	if v.auto != nil {
		d.AutoRecoverable = *v.auto
	}
	if d.Healthy() {
		d.Fix = nil
	}
	d.Evidence = dedupe(append(v.key, f.context()...))
	d.Checks = f.checklist()
	return d
}

func dedupe(ev []Evidence) []Evidence {
	seen := map[Evidence]bool{}
	out := make([]Evidence, 0, len(ev))
	for _, e := range ev {
		if e.Fact == "" || seen[e] {
			continue
		}
		seen[e] = true
		out = append(out, e)
		if len(out) == maxEvidence {
			break
		}
	}
	return out
}

// facts is an Incident read once: the typed error, the answer, the token, and derived judgements.
type facts struct {
	in             Incident
	tol            time.Duration
	paymentsClient string

	api       *bead.APIError
	grant     *bead.TokenError
	transport *bead.TransportError

	sent     bead.SentRequest
	answered bool
	status   int
	header   http.Header
	body     []byte
	shape    string
	at       time.Time // when the answer came (or Now)

	challenge challenge
	origin    origin
	claims    *bead.Claims
	res       Resource
	probe     *ProbeResult
}

func newFacts(in Incident) *facts {
	f := &facts{in: in, tol: in.Config.ClockTolerance, paymentsClient: in.Config.PaymentsClient, at: in.Now, header: http.Header{}}
	if f.tol <= 0 {
		f.tol = DefaultClockTolerance
	}
	if f.paymentsClient == "" {
		f.paymentsClient = PaymentsClient
	}
	f.sent = in.Request
	switch {
	case errors.As(in.Err, &f.api):
		f.answered = true
		f.status, f.header, f.body, f.shape = f.api.Status, f.api.Header, f.api.Body, f.api.Shape
		f.sent = pickSent(f.api.Request, in.Request)
		if !f.api.ReceivedAt.IsZero() {
			f.at = f.api.ReceivedAt
		}
	case errors.As(in.Err, &f.grant):
		f.answered = f.grant.Status != 0
		f.status, f.header, f.body, f.shape = f.grant.Status, f.grant.Header, f.grant.Body, f.grant.Shape
		f.sent = pickSent(f.grant.Request, in.Request)
		if !f.grant.ReceivedAt.IsZero() {
			f.at = f.grant.ReceivedAt
		}
	case errors.As(in.Err, &f.transport):
		f.sent = pickSent(f.transport.Request, in.Request)
	}
	if f.header == nil {
		f.header = http.Header{}
	}
	f.challenge = parseChallenge(f.header)
	if f.answered {
		f.origin = readOrigin(f.header, f.shape, f.body, f.sent.RequestID)
	}
	if in.Token != nil {
		f.claims = in.Token.Claims
	}
	f.res = ResourceOf(in.Resource, f.sent)
	f.probe = in.Probe
	if f.probe == nil && in.Op == OpProbe && in.Local == "" {
		f.probe = NewProbeResult(in.Err)
	}
	return f
}

func pickSent(fromErr, given bead.SentRequest) bead.SentRequest {
	if fromErr.Method != "" || fromErr.URL != "" {
		return fromErr
	}
	return given
}

// grantOp reports whether the incident is a call to the realm rather than the payments API.
func (f *facts) grantOp() bool {
	if f.grant != nil {
		return true
	}
	switch f.in.Op {
	case OpPasswordGrant, OpRefreshGrant, OpLogout:
		return true
	}
	return false
}

// apiCall reports whether the incident is a call to Bead's payments API (whatever its outcome).
func (f *facts) apiCall() bool {
	if f.in.Local != "" || f.grantOp() || f.in.Op == OpDiscovery {
		return false
	}
	if f.api != nil && f.api.Op == OpDiscovery {
		return false
	}
	return f.sent.Method != "" || f.api != nil || f.in.Op == OpProbe
}

// sentAuth is the credential the request carried, as recorded (redacted).
type sentAuth struct {
	kind  string // "bearer", "apikey", "other", "none"
	value string // the redacted header value
}

func (f *facts) sentAuth() sentAuth {
	h := f.sent.Header
	if h == nil {
		return sentAuth{kind: "none"}
	}
	if v := h.Get("Authorization"); v != "" {
		scheme, rest, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(rest) != "" {
			return sentAuth{kind: "bearer", value: v}
		}
		return sentAuth{kind: "other", value: v}
	}
	if v := h.Get("X-Api-Key"); v != "" {
		return sentAuth{kind: "apikey", value: v}
	}
	return sentAuth{kind: "none"}
}

// requestLine is "POST /payments/crypto" (path only: the host is in the configuration).
func (f *facts) requestLine() string {
	u := f.sent.URL
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			u = u[i+3+j:]
		} else {
			u = "/"
		}
	}
	return strings.TrimSpace(f.sent.Method + " " + quote(u, 200))
}
