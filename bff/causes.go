package bff

import "beadbff/config"

const supportEmail = config.BeadSupportEmail

// causeInfo explains one cause on /help/403, in our own words.
type causeInfo struct {
	Code    string
	Title   string
	Meaning string
	Fix     string
}

// causeGuide is the troubleshooting guide, one section per cause of CONTRACT.md (plus ours), in the order a
// person meets them.
var causeGuide = []causeInfo{
	{CauseTokenMissing, "No usable Authorization header reached Bead",
		"Bead received no Authorization header, or one it could not read (for example \"Bearer null\" or a token in quotes). beadbff always sends \"Authorization: Bearer <token>\", so when Bead reports it missing, something between this server and Bead removed or rewrote it.",
		"Look at proxies, API gateways and WAFs between beadbff and Bead: they must pass the Authorization header unchanged."},
	{CauseTokenExpired, "The access token had expired",
		"The token's exp had passed when Bead checked it, and a refresh did not cure it.",
		"beadbff refreshes ahead of expiry and once more on a refusal. If this persists, check this server's clock and the realm's token lifetimes."},
	{CauseWrongClientOrScope, "Wrong OAuth client or scope",
		"The token was issued to a client other than the one Bead's payments API accepts (bead-terminal), or its scope lacks openid.",
		"Set BEAD_CLIENT_ID=bead-terminal and BEAD_SCOPE=\"openid profile email\", and use the terminal credentials Bead Support issued."},
	{CauseTerminalMismatch, "Another terminal or merchant",
		"Each Bead token belongs to one terminal. The request named a terminal or merchant other than the token's, or asked for another terminal's payment.",
		"Use the terminal's own ids (beadbff fills them in from the session), and log in with the terminal that owns the payment."},
	{CauseRealmMismatch, "Token from another realm or environment",
		"The token was issued by a realm the API does not trust, for example a production token sent to the sandbox API.",
		"Point BEAD_IDENTITY_URL and BEAD_API_URL at the same environment (nonprod with the sandbox API, prod with production)."},
	{CauseClockSkew, "Clocks disagree",
		"This server's clock and the token's iat/exp disagree by more than the tolerance, so a fresh token looks expired or not yet valid.",
		"Synchronise this server's clock (NTP)."},
	{CauseRefreshTokenInvalid, "The Bead session ended",
		"The realm refused the refresh token (invalid_grant): it expired, was revoked, or was used twice.",
		"Log in again. If it happens often, check the realm's session lifetimes."},
	{CauseBlockedBeforeBead, "Blocked before reaching Bead",
		"The refusal came from a firewall, IP filter or reverse proxy in front of Bead (an HTML page, another Server header, none of Bead's headers), not from Bead's API.",
		"Allow this server's outgoing address in the WAF or proxy, or ask its operator; Bead never saw the request."},
	{CauseWebhookSignatureInvalid, "A webhook failed its signature check",
		"A callback that claims to come from Bead did not carry a valid x-webhook-signature for the configured secret.",
		"Set BEAD_WEBHOOK_SECRET to the terminal's current signingSecret (both old and new during a rotation)."},
	{CauseCORSOriginNotAllowed, "Origin not allowed",
		"A browser page on an origin not listed in CORS_ALLOWED_ORIGINS called this server's API.",
		"Add the front-end's exact origin (scheme, host and port) to CORS_ALLOWED_ORIGINS. Browsers never call Bead directly through beadbff, so Bead's CORS does not matter."},
	{CauseCSRFHeaderMissing, "CSRF header missing",
		"A state-changing API call made with a session cookie did not carry X-CSRF: 1. Nothing was done.",
		"Send the header X-CSRF: 1 on every POST, PUT, PATCH and DELETE."},
	{CauseCSRFTokenInvalid, "Form refused",
		"A form was sent from another site or without this session's form token. Nothing was done.",
		"Reload the page and submit the form again from beadbff itself."},
	{CauseRateLimited, "Rate limited by Bead",
		"Bead answered 429 Too Many Requests. This is not an authorisation problem.",
		"Wait for Retry-After and try again; spread bursts of calls."},
	{CauseBeadUnavailable, "Bead unavailable",
		"Bead could not be reached, did not answer in time, or answered with a server error.",
		"Try again in a moment. If it persists, check Bead's status and this server's outgoing network."},
	{CauseSessionStoreUnavailable, "Session store unavailable",
		"This server cannot reach its Redis session store right now. Sessions are kept; nobody is logged out.",
		"Try again in a moment. Operators: check REDIS_URL and the Redis servers."},
	{CauseNotAuthenticated, "Not logged in",
		"There is no session, or it has ended.",
		"Log in again."},
	{CauseInvalidCredentials, "Wrong username or password",
		"Bead's identity realm did not accept the terminal's credentials.",
		"Check the terminal id and password Bead Support issued."},
	{CauseInvalidRequest, "Invalid request",
		"The request to this server was malformed: bad JSON, an invalid amount or id, or too large. Nothing was sent to Bead.",
		"Correct the fields named in the answer."},
	{CauseNotFound, "Not found",
		"The page, payment or checkout does not exist, or it is not this terminal's.",
		"Check the link; payments are listed on the dashboard of the terminal that created them."},
	{CauseInternal, "Internal error",
		"Something went wrong inside beadbff. It is logged with the request id.",
		"Try again; if it persists, give the request id to whoever runs this server."},
	{CauseUnknown, "Unknown cause",
		"Bead refused the request and the answer alone does not say why. All evidence is shown with the failure.",
		"Send the support bundle shown with the failure to Bead's support."},
}
