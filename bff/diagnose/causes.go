package diagnose

// The causes of CONTRACT.md, the `cause` of problem+json and the anchors of /help/403.
const (
	CauseTokenMissing            = "token_missing"
	CauseTokenExpired            = "token_expired"
	CauseWrongClientOrScope      = "wrong_client_or_scope"
	CauseTerminalMismatch        = "terminal_mismatch"
	CauseRealmMismatch           = "realm_mismatch"
	CauseClockSkew               = "clock_skew"
	CauseRefreshTokenInvalid     = "refresh_token_invalid"
	CauseBlockedBeforeBead       = "blocked_before_bead"
	CauseWebhookSignatureInvalid = "webhook_signature_invalid"
	CauseCORSOriginNotAllowed    = "cors_origin_not_allowed"
	CauseCSRFHeaderMissing       = "csrf_header_missing"
	CauseRateLimited             = "rate_limited"
	CauseBeadUnavailable         = "bead_unavailable"
	CauseSessionStoreUnavailable = "session_store_unavailable"
	CauseNotAuthenticated        = "not_authenticated"
	CauseInvalidRequest          = "invalid_request"
	CauseUnknown                 = "unknown"

	// Causes README adds to CONTRACT.md's list, which the server already answers with.
	CauseInvalidCredentials = "invalid_credentials" // the realm refused the terminal's username or password
	CauseNotFound           = "not_found"           // Bead does not know the payment (or the realm does not exist)
)

// Confidence of a diagnosis: high when Bead's own words or a refusal made here say it, medium when it is
// inferred from several facts that fit no other cause, low when the evidence is thin.
const (
	ConfidenceHigh   = "high"
	ConfidenceMedium = "medium"
	ConfidenceLow    = "low"
)

// CauseInfo explains one cause in general terms, for the troubleshooting guide. A Diagnosis carries fix
// steps made for its incident; these are the ones that hold for every incident of the cause.
type CauseInfo struct {
	Code    string   `json:"code"`
	Title   string   `json:"title"`
	Meaning string   `json:"meaning"`
	Fix     []string `json:"fix"`
	// AutoRecoverable says whether this server's own recovery (refresh, retry, waiting) can cure the cause.
	AutoRecoverable bool `json:"autoRecoverable"`
}

// causeTable is in the order a person meets the causes: the token first, then the request, then the
// network, then this server's own refusals.
var causeTable = []CauseInfo{
	{CauseTokenMissing, "No usable Authorization header reached Bead",
		"Bead received no Authorization header, or one it could not read (such as \"Bearer null\" or a token in quotes).",
		[]string{"Look at proxies, API gateways and WAFs between this server and Bead: they must pass the Authorization header unchanged.",
			"If this server did not send the header, that is a bug here: report it with the incident."}, false},
	{CauseTokenExpired, "The access token had expired",
		"The token's exp had passed when Bead checked it, and a refresh did not cure it.",
		[]string{"Refresh the token (this server does so ahead of expiry and once more on a refusal) or log in again.",
			"If it keeps happening, compare this server's clock with the realm's and check the realm's token lifetimes."}, true},
	{CauseWrongClientOrScope, "Wrong OAuth client or scope",
		"The token was issued to another client than bead-terminal, the one Bead's payments API accepts, or its scope lacks openid.",
		[]string{"Set BEAD_CLIENT_ID=bead-terminal and BEAD_SCOPE=\"openid profile email\".",
			"Use the terminal credentials Bead Support issued for bead-terminal, then log in again."}, false},
	{CauseTerminalMismatch, "Another terminal or merchant",
		"Every Bead token belongs to one terminal. The request named a terminal or merchant other than the token's, or another terminal's payment.",
		[]string{"Send only the session's own terminalId and merchantId (this server fills them in).",
			"Read a payment with the terminal that created it: log in as that terminal."}, false},
	{CauseRealmMismatch, "Token from another realm or environment",
		"The token was issued by a realm the API does not trust, for example a production token sent to the sandbox API.",
		[]string{"Point BEAD_IDENTITY_URL and BEAD_API_URL at the same environment: the nonprod realm with the sandbox API, the prod realm with production.",
			"Log in again after changing them: tokens of the old realm stay refused."}, false},
	{CauseClockSkew, "Clocks disagree",
		"This server's clock and the token's iat or exp (or Bead's Date) disagree by more than the tolerance, so a fresh token looks expired or not yet valid.",
		[]string{"Synchronise this server's clock with NTP (timedatectl, chrony) and check the time zone is not applied twice.",
			"Log in again once the clock is right."}, false},
	{CauseRefreshTokenInvalid, "The Bead session ended",
		"The realm refused the refresh token (invalid_grant): it expired, was revoked, or was used twice.",
		[]string{"Log in again.",
			"If it happens often, check the realm's session lifetimes and that only one process refreshes a session at a time."}, false},
	{CauseBlockedBeforeBead, "Blocked before reaching Bead",
		"The refusal came from a firewall, IP filter or reverse proxy in front of Bead (an HTML page, another Server header, none of Bead's headers), not from Bead's API.",
		[]string{"Allow this server's outgoing address in the WAF or proxy that answered, or ask its operator; Bead never saw the request.",
			"Check proxies on this side (HTTPS_PROXY, an egress gateway) as well as Bead's side."}, false},
	{CauseWebhookSignatureInvalid, "A webhook failed its signature check",
		"A callback claiming to come from Bead did not carry a valid x-webhook-signature for the configured secret.",
		[]string{"Set BEAD_WEBHOOK_SECRET to the terminal's current signingSecret (both old and new during a rotation).",
			"Check that nothing between Bead and this server rewrites the body, and that this server's clock is right."}, false},
	{CauseCORSOriginNotAllowed, "Origin not allowed",
		"A browser page on an origin not listed in CORS_ALLOWED_ORIGINS called this server's API.",
		[]string{"Add the front end's exact origin (scheme, host and port) to CORS_ALLOWED_ORIGINS."}, false},
	{CauseCSRFHeaderMissing, "CSRF header missing",
		"A state-changing API call made with a session cookie lacked X-CSRF: 1. Nothing was done.",
		[]string{"Send the header X-CSRF: 1 on every POST, PUT, PATCH and DELETE."}, false},
	{CauseRateLimited, "Rate limited by Bead",
		"Bead answered 429 Too Many Requests. This is not an authorisation problem.",
		[]string{"Wait as long as Retry-After says, then try again.", "Spread bursts of calls; poll payment status no more than every few seconds."}, true},
	{CauseBeadUnavailable, "Bead unavailable",
		"Bead could not be reached, did not answer in time, or answered with a server error.",
		[]string{"Try again in a moment.", "If it persists, check Bead's status, BEAD_API_URL and this server's outgoing network."}, true},
	{CauseSessionStoreUnavailable, "Session store unavailable",
		"This server cannot reach its Redis session store right now.",
		[]string{"Try again in a moment.", "Operators: check REDIS_URL and the Redis servers."}, true},
	{CauseNotAuthenticated, "Not logged in",
		"There is no session, or it has ended.",
		[]string{"Log in again."}, false},
	{CauseInvalidCredentials, "Wrong username or password",
		"Bead's identity realm did not accept the terminal's credentials.",
		[]string{"Check the terminal id and password Bead Support issued (BEAD_TERMINAL_USERNAME, BEAD_TERMINAL_PASSWORD for doctor).",
			"Check BEAD_USERNAME_SUFFIX: the realm's login names are {terminalId}@beadpay.io."}, false},
	{CauseInvalidRequest, "Invalid request",
		"The request was malformed (bad JSON, an invalid amount or id, too large), or Bead found a field invalid.",
		[]string{"Correct the fields named in the evidence."}, false},
	{CauseNotFound, "Not found",
		"Bead does not know the payment, or the configured realm does not exist.",
		[]string{"Check the id, and that BEAD_API_URL and BEAD_IDENTITY_URL name the environment the payment was made in."}, false},
	{CauseUnknown, "Unknown cause",
		"The answer alone does not say why the call failed. All evidence is shown with the failure.",
		[]string{"Send the support bundle shown with the failure to Bead's support."}, false},
}

// Causes is the cause table, in the troubleshooting guide's order (a copy the caller may keep).
func Causes() []CauseInfo {
	out := make([]CauseInfo, len(causeTable))
	for i, c := range causeTable {
		c.Fix = append([]string(nil), c.Fix...)
		out[i] = c
	}
	return out
}

// LookupCause is the table entry of code.
func LookupCause(code string) (CauseInfo, bool) {
	for _, c := range causeTable {
		if c.Code == code {
			c.Fix = append([]string(nil), c.Fix...)
			return c, true
		}
	}
	return CauseInfo{}, false
}
