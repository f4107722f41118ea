package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"beadbff/bff/bead"
)

// verdict is what decide settles on; Diagnose adds the context and the checklist.
type verdict struct {
	cause      string
	confidence string
	summary    string
	key        []Evidence // the facts that decided it
	fix        []string   // steps for this incident, before the cause's general ones
	auto       *bool      // overrides the cause's AutoRecoverable
}

func (v verdict) with(e ...Evidence) verdict { v.key = append(v.key, e...); return v }

func boolPtr(b bool) *bool { return &b }

// decide applies the rules, most certain first: refusals made here, then the realm's and the API's own
// words, then inferences from the token and the probe.
func (f *facts) decide() verdict {
	switch {
	case f.in.Local != "":
		return f.localRefusal()
	case f.grant != nil:
		return f.grantFailure()
	case f.transport != nil:
		return f.unreachable()
	case f.api != nil && f.api.Op == OpDiscovery:
		return f.discoveryFailure()
	case f.api != nil:
		return f.apiFailure()
	case f.in.Err == nil:
		return f.noFailure()
	}
	return f.otherError()
}

// localRefusal: this server said no before Bead was asked anything.
func (f *facts) localRefusal() verdict {
	detail := quote(f.in.LocalDetail, 200)
	src := "refusal by this server"
	withDetail := func(v verdict, fallback string) verdict {
		if detail == "" {
			detail = fallback
		}
		return v.with(Evidence{detail, src})
	}
	nothingSent := Evidence{"nothing was sent to Bead", src}
	switch f.in.Local {
	case LocalCSRFHeaderMissing:
		v := verdict{cause: CauseCSRFHeaderMissing, confidence: ConfidenceHigh,
			summary: "A state-changing request made with the session cookie lacked the X-CSRF: 1 header, so this server refused it."}
		return withDetail(v, "the request carried the session cookie but no X-CSRF: 1 header").with(nothingSent)
	case LocalCORSOriginNotAllowed:
		v := verdict{cause: CauseCORSOriginNotAllowed, confidence: ConfidenceHigh,
			summary: "A browser on an origin that CORS_ALLOWED_ORIGINS does not list called this server's API."}
		return withDetail(v, "the request's Origin is not in CORS_ALLOWED_ORIGINS").with(nothingSent)
	case LocalTerminalMismatch:
		v := verdict{cause: CauseTerminalMismatch, confidence: ConfidenceHigh,
			summary: "The request named another terminal or merchant than the session's, so this server refused it without asking Bead."}
		v = v.with(f.localMismatchEvidence()...)
		if detail != "" {
			v = v.with(Evidence{detail, src})
		}
		return v.with(nothingSent)
	case LocalWebhookSignatureInvalid:
		v := verdict{cause: CauseWebhookSignatureInvalid, confidence: ConfidenceHigh,
			summary: "A webhook claiming to come from Bead failed the x-webhook-signature check, so it was refused and changed nothing."}
		return withDetail(v, "the x-webhook-signature did not verify with any configured BEAD_WEBHOOK_SECRET")
	case LocalSessionStoreUnavailable:
		v := verdict{cause: CauseSessionStoreUnavailable, confidence: ConfidenceHigh,
			summary: "This server could not reach its session store in time."}
		return withDetail(v, "the session store did not answer")
	case LocalNotAuthenticated:
		v := verdict{cause: CauseNotAuthenticated, confidence: ConfidenceHigh, summary: "There is no session, or it has ended."}
		return withDetail(v, "no valid session cookie came with the request")
	case LocalInvalidRequest:
		v := verdict{cause: CauseInvalidRequest, confidence: ConfidenceHigh,
			summary: "The request to this server was malformed, so it was refused without asking Bead."}
		return withDetail(v, "the request failed validation").with(nothingSent)
	case LocalTokenMissing:
		v := verdict{cause: CauseTokenMissing, confidence: ConfidenceHigh,
			summary: "The session held no usable access token, so the call was not made.",
			fix:     []string{"Log in again. A session without a usable token should not exist: report it with the incident, as it is a bug here."}}
		return withDetail(v, "the session's access token is empty or not a well-formed bearer token").with(nothingSent)
	}
	return verdict{cause: CauseUnknown, confidence: ConfidenceLow,
		summary: "This server refused the request for a reason the diagnosis does not know."}.
		with(Evidence{"refusal " + quote(f.in.Local, 80) + ": " + detail, src})
}

// localMismatchEvidence compares the ids a refused request named with the session's.
func (f *facts) localMismatchEvidence() []Evidence {
	var ev []Evidence
	wantT, wantM := f.in.Config.TerminalID, f.in.Config.MerchantID
	if f.claims != nil {
		wantT, wantM = firstNonEmpty(f.claims.TerminalID, wantT), firstNonEmpty(f.claims.MerchantID, wantM)
	}
	if f.res.TerminalID != "" && wantT != "" && !strings.EqualFold(f.res.TerminalID, wantT) {
		ev = append(ev, Evidence{fmt.Sprintf("the request names terminal %s; the session's terminal is %s", quote(f.res.TerminalID, 64), quote(wantT, 64)), "request body"})
	}
	if f.res.MerchantID != "" && wantM != "" && !strings.EqualFold(f.res.MerchantID, wantM) {
		ev = append(ev, Evidence{fmt.Sprintf("the request names merchant %s; the session's merchant is %s", quote(f.res.MerchantID, 64), quote(wantM, 64)), "request body"})
	}
	if f.res.TrackingOwner != "" && wantT != "" && !strings.EqualFold(f.res.TrackingOwner, wantT) {
		ev = append(ev, Evidence{fmt.Sprintf("payment %s belongs to terminal %s; the session's terminal is %s", quote(f.res.TrackingID, 64), quote(f.res.TrackingOwner, 64), quote(wantT, 64)), "payment index"})
	}
	return ev
}

// grantFailure: the realm refused a token grant.
func (f *facts) grantFailure() verdict {
	g := f.grant
	said := Evidence{fmt.Sprintf("the realm answered %d %s", g.Status, grantWords(g)), "token endpoint answer"}
	switch {
	case g.Status == http.StatusTooManyRequests:
		return f.rateLimited("Bead's identity realm")
	case g.Status >= 500:
		return verdict{cause: CauseBeadUnavailable, confidence: ConfidenceHigh,
			summary: fmt.Sprintf("%s answered %d to the %s.", upperFirst(f.answerer("Bead's identity realm")), g.Status, f.opName())}.
			with(said).with(f.proxyServerError("Bead's identity realm")...)
	case g.Code == "" && g.Shape == bead.ShapeHTML && g.Status == http.StatusForbidden:
		conf := ConfidenceHigh
		if len(f.origin.beadSigns) > 0 {
			conf = ConfidenceMedium
		}
		return verdict{cause: CauseBlockedBeforeBead, confidence: conf,
			summary: fmt.Sprintf("A firewall or proxy in front of Bead's identity realm answered the %s with an HTML 403.", f.opName())}.
			with(f.origin.proxySigns...).with(said)
	case g.Code == "invalid_grant" && (g.Op == OpRefreshGrant || f.in.Op == OpRefreshGrant):
		v := verdict{cause: CauseRefreshTokenInvalid, confidence: ConfidenceHigh,
			summary: "Bead's identity realm refused the refresh token (invalid_grant): the Bead session has ended and the terminal must log in again."}
		v = v.with(said)
		if why := refreshWhy(g.Description); why != "" {
			v = v.with(Evidence{why, "token endpoint error_description"})
		}
		return v
	case g.Code == "invalid_grant":
		return verdict{cause: CauseInvalidCredentials, confidence: ConfidenceHigh,
			summary: "Bead's identity realm refused the terminal's username or password (invalid_grant)."}.
			with(said).with(f.usernameEvidence()...)
	case g.Code == "invalid_client" || g.Code == "unauthorized_client":
		return verdict{cause: CauseWrongClientOrScope, confidence: ConfidenceHigh,
			summary: fmt.Sprintf("Bead's identity realm refused the client %s (%s).", quote(f.clientSent(), 64), g.Code),
			fix: []string{fmt.Sprintf("Set BEAD_CLIENT_ID=%s (it is %s now): the realm does not know this client.", f.paymentsClient, quote(f.clientSent(), 64)),
				"Use the terminal credentials Bead Support issued for " + f.paymentsClient + "."}}.
			with(said).with(Evidence{"client_id sent: " + quote(f.clientSent(), 64), "request form client_id"})
	case g.Code == "invalid_scope":
		return verdict{cause: CauseWrongClientOrScope, confidence: ConfidenceHigh,
			summary: "Bead's identity realm refused the requested scope (invalid_scope)."}.
			with(said).with(Evidence{"scope sent: " + quote(f.formValue("scope"), 120), "request form scope"})
	case g.Status == http.StatusNotFound:
		return verdict{cause: CauseRealmMismatch, confidence: ConfidenceMedium,
			summary: "The configured identity realm does not exist at BEAD_IDENTITY_URL.",
			fix:     []string{"Set BEAD_IDENTITY_URL to the realm base, e.g. https://identity.beadpay.io/realms/nonprod."}}.
			with(said).with(Evidence{"realm " + quote(f.in.Config.IdentityURL, 200), "configuration BEAD_IDENTITY_URL"})
	}
	// Only an HTML page counts here: Keycloak behind nginx is normal, so a foreign Server header is not
	// a sign of a block on the realm's side.
	if blocked, conf := f.origin.blocked(); blocked && f.origin.html {
		return verdict{cause: CauseBlockedBeforeBead, confidence: conf,
			summary: fmt.Sprintf("Something in front of Bead's identity realm answered the %s.", f.opName())}.
			with(f.origin.proxySigns...).with(said)
	}
	return verdict{cause: CauseUnknown, confidence: ConfidenceLow,
		summary: fmt.Sprintf("Bead's identity realm refused the %s for a reason this diagnosis does not recognise.", f.opName())}.with(said)
}

func grantWords(g *bead.TokenError) string {
	switch {
	case g.Code != "" && g.Description != "":
		return quote(g.Code, 64) + ": " + quote(g.Description, 200)
	case g.Code != "":
		return quote(g.Code, 64)
	}
	return "(" + firstNonEmpty(g.Shape, "no") + " body)"
}

// refreshWhy translates Keycloak's invalid_grant descriptions of a refresh.
func refreshWhy(desc string) string {
	d := strings.ToLower(desc)
	switch {
	case strings.Contains(d, "reuse"):
		return "the refresh token had already been used: Bead's realm rotates refresh tokens and refuses a second use"
	case strings.Contains(d, "not active") && strings.Contains(d, "session"):
		return "the realm session has ended (logged out, or its lifetime passed)"
	case strings.Contains(d, "not active") || strings.Contains(d, "expired"):
		return "the refresh token had expired"
	case strings.Contains(d, "stale"):
		return "the refresh token was revoked"
	case strings.Contains(d, "issuer"):
		return "the refresh token was issued by another realm than the configured one"
	case strings.Contains(d, "client"):
		return "the refresh token was issued to another client than the configured one"
	}
	return ""
}

func (f *facts) usernameEvidence() []Evidence {
	if u := f.formValue("username"); u != "" {
		return []Evidence{{"username sent: " + quote(u, 120), "request form username"}}
	}
	return nil
}

// formValue reads a field of a recorded form body (secrets there are already "[redacted]").
func (f *facts) formValue(name string) string {
	for _, kv := range strings.Split(f.sent.BodySummary, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

func (f *facts) clientSent() string {
	return firstNonEmpty(f.formValue("client_id"), f.in.Config.ClientID)
}

// opName names the call in a summary, after "the" ("Bead answered 429 Too Many Requests to the payment
// status read"): the op codes are words for code and logs, and read oddly in a sentence.
func (f *facts) opName() string {
	op := f.in.Op
	switch {
	case op != "":
	case f.grant != nil:
		op = f.grant.Op
	case f.api != nil:
		op = f.api.Op
	case f.transport != nil:
		op = f.transport.Op
	}
	if name, ok := opNames[op]; ok {
		return name
	}
	return firstNonEmpty(op, "call")
}

// opNames are the calls' names in a sentence, one for every op the server, doctor and the Bead client
// name their calls with.
var opNames = map[string]string{
	OpCreatePayment:   "payment creation request",
	OpTracking:        "payment status read",
	OpProbe:           "probe (GET /currencies)",
	OpPasswordGrant:   "login (password grant)",
	OpRefreshGrant:    "token refresh (refresh grant)",
	OpDiscovery:       "discovery request",
	OpLogout:          "logout",
	OpRegisterWebhook: "webhook registration",
}

// unreachable: no HTTP answer at all.
func (f *facts) unreachable() verdict {
	t := f.transport
	target := "Bead's payments API"
	if f.grantOp() || t.Op == OpPasswordGrant || t.Op == OpRefreshGrant || t.Op == OpLogout || t.Op == OpDiscovery {
		target = "Bead's identity realm"
	}
	v := verdict{cause: CauseBeadUnavailable, confidence: ConfidenceHigh}
	var dnsErr *net.DNSError
	switch {
	case t.Timeout:
		v.summary = fmt.Sprintf("%s did not answer the %s in time.", target, f.opName())
		v = v.with(Evidence{"no answer within the time budget (BEAD_TIMEOUT)", "transport"})
	case errors.Is(t.Err, syscall.ECONNREFUSED):
		v.summary = fmt.Sprintf("%s refused the connection for the %s.", target, f.opName())
		v = v.with(Evidence{"connection refused: nothing listens at the address", "transport"})
	case errors.As(t.Err, &dnsErr):
		v.summary = fmt.Sprintf("The host name of %s did not resolve.", target)
		v = v.with(Evidence{"DNS lookup of " + quote(dnsErr.Name, 120) + " failed", "transport"})
		v.fix = []string{"Check the host name in BEAD_API_URL and BEAD_IDENTITY_URL, and this server's DNS resolver."}
	default:
		v.summary = fmt.Sprintf("%s could not be reached for the %s.", target, f.opName())
	}
	return v.with(Evidence{"error: " + quote(errText(t.Err), 300), "transport"})
}

func errText(err error) string {
	if err == nil {
		return "no answer"
	}
	return err.Error()
}

// discoveryFailure: the realm's discovery document did not answer as it should.
func (f *facts) discoveryFailure() verdict {
	a := f.api
	said := Evidence{fmt.Sprintf("the discovery document answered %d %s", a.Status, answerWords(a)), "discovery answer"}
	switch {
	case a.Status == http.StatusTooManyRequests:
		return f.rateLimited("Bead's identity realm")
	case a.Status >= 500:
		return verdict{cause: CauseBeadUnavailable, confidence: ConfidenceHigh,
			summary: upperFirst(f.answerer("Bead's identity realm")) + " answered " + strconv.Itoa(a.Status) + " to discovery."}.
			with(said).with(f.proxyServerError("Bead's identity realm")...)
	case a.Status == http.StatusNotFound:
		return verdict{cause: CauseRealmMismatch, confidence: ConfidenceMedium,
			summary: "There is no realm at BEAD_IDENTITY_URL: its discovery document is not found.",
			fix:     []string{"Set BEAD_IDENTITY_URL to the realm base, e.g. https://identity.beadpay.io/realms/nonprod."}}.
			with(said, Evidence{"realm " + quote(f.in.Config.IdentityURL, 200), "configuration BEAD_IDENTITY_URL"})
	}
	if blocked, conf := f.origin.blocked(); blocked && f.origin.html {
		return verdict{cause: CauseBlockedBeforeBead, confidence: conf, summary: "Something in front of Bead's identity realm answered the discovery request."}.
			with(f.origin.proxySigns...).with(said)
	}
	return verdict{cause: CauseUnknown, confidence: ConfidenceLow, summary: "The realm's discovery document could not be read."}.with(said)
}

// apiFailure: Bead's payments API (or something in front of it) answered non-2xx.
func (f *facts) apiFailure() verdict {
	a := f.api
	switch {
	case a.Status == http.StatusTooManyRequests:
		return f.rateLimited("Bead")
	case a.Status >= 500:
		summary := fmt.Sprintf("%s answered %d (a server error) to the %s.", upperFirst(f.answerer("Bead")), a.Status, f.opName())
		if f.answeredBy() == AnsweredByProxy {
			summary = fmt.Sprintf("A proxy in front of Bead answered %d to the %s: it could not get an answer from Bead.", a.Status, f.opName())
		}
		return verdict{cause: CauseBeadUnavailable, confidence: ConfidenceHigh, summary: summary}.
			with(Evidence{fmt.Sprintf("status %d %s", a.Status, answerWords(a)), "response status"}).
			with(f.proxyServerError("Bead")...)
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		if blocked, conf := f.origin.blocked(); blocked {
			return verdict{cause: CauseBlockedBeforeBead, confidence: conf,
				summary: fmt.Sprintf("The %d came from a firewall or proxy in front of Bead, not from Bead's API: Bead never saw the request.", a.Status)}.
				with(f.origin.proxySigns...)
		}
		return f.authFailure()
	case a.Status == http.StatusBadRequest || a.Status == http.StatusUnprocessableEntity ||
		a.Status == http.StatusRequestEntityTooLarge || a.Status == http.StatusUnsupportedMediaType:
		v := verdict{cause: CauseInvalidRequest, confidence: ConfidenceHigh,
			summary: fmt.Sprintf("%s found the %s invalid (%d).", upperFirst(f.answerer("Bead")), f.opName(), a.Status)}
		fields := make([]string, 0, len(a.FieldErrors))
		for field := range a.FieldErrors {
			fields = append(fields, field)
		}
		sort.Strings(fields)
		for _, field := range fields[:min(len(fields), 10)] {
			v = v.with(Evidence{quote(field, 64) + ": " + quote(strings.Join(a.FieldErrors[field], "; "), 200), "response body errors"})
		}
		return v
	case a.Status == http.StatusNotFound:
		return verdict{cause: CauseNotFound, confidence: ConfidenceMedium,
			summary: fmt.Sprintf("%s does not know what the %s asked for (404).", upperFirst(f.answerer("Bead")), f.opName())}.
			with(Evidence{"status 404 to " + f.requestLine(), "response status"})
	case a.Status >= 300 && a.Status < 400:
		return verdict{cause: CauseUnknown, confidence: ConfidenceMedium,
			summary: fmt.Sprintf("%s answered a redirect (%d), which the client does not follow.", upperFirst(f.answerer("Bead")), a.Status),
			fix:     []string{"Check BEAD_API_URL: a redirect usually means http instead of https, or a wrong host or path."}}.
			with(Evidence{"Location: " + quote(f.header.Get("Location"), 200), "response header Location"})
	}
	if blocked, conf := f.origin.blocked(); blocked {
		return verdict{cause: CauseBlockedBeforeBead, confidence: conf,
			summary: fmt.Sprintf("The %d came from something in front of Bead's API.", a.Status)}.with(f.origin.proxySigns...)
	}
	return verdict{cause: CauseUnknown, confidence: ConfidenceLow,
		summary: fmt.Sprintf("%s answered %d to the %s, which this diagnosis does not recognise.", upperFirst(f.answerer("Bead")), a.Status, f.opName())}
}

// answerer names who wrote the answer, for a summary: target ("Bead", "Bead's identity realm") when its
// own signs say so, what stood in front of it when a proxy's do, and both when nothing tells them apart.
func (f *facts) answerer(target string) string {
	switch f.answeredBy() {
	case AnsweredByProxy:
		return "a proxy in front of " + target
	case AnsweredByUnknown:
		return target + " (or something in front of it)"
	}
	return target
}

// proxyServerError is the evidence that a proxy, not target, wrote a server error (bead_unavailable,
// whose cause does not say who answered): the verdict and the signs it rests on.
func (f *facts) proxyServerError(target string) []Evidence {
	if f.answeredBy() != AnsweredByProxy {
		return nil
	}
	return append([]Evidence{{"the answer came from a proxy in front of " + target + ", which could not get an answer from " + target, "response headers"}},
		f.origin.proxySigns...)
}

func answerWords(a *bead.APIError) string {
	parts := []string{"(" + firstNonEmpty(a.Shape, "no") + " body)"}
	if a.Title != "" {
		parts = append(parts, quote(a.Title, 120))
	}
	if a.Detail != "" {
		parts = append(parts, quote(a.Detail, 200))
	}
	return strings.Join(parts, " ")
}

// rateLimited: 429 is never an authorisation failure, whoever answered it (target, or a proxy in front).
func (f *facts) rateLimited(target string) verdict {
	v := verdict{cause: CauseRateLimited, confidence: ConfidenceHigh,
		summary: fmt.Sprintf("%s answered 429 Too Many Requests to the %s: a rate limit, not an authorisation failure.", upperFirst(f.answerer(target)), f.opName())}
	v = v.with(Evidence{"status 429 Too Many Requests", "response status"})
	for _, name := range []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit"} {
		if val := f.header.Get(name); val != "" {
			fact := name + ": " + quote(val, 80)
			if name == "X-RateLimit-Reset" {
				if n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64); err == nil && n > 1_000_000_000 && n < 1<<40 {
					fact += " (" + stamp(time.Unix(n, 0)) + ")"
				}
			}
			v = v.with(Evidence{fact, "response header " + name})
		}
	}
	if f.api != nil && f.api.RetryAfter > 0 {
		v.fix = []string{"Wait " + span(f.api.RetryAfter) + " (Retry-After) before the next call.",
			"Spread bursts of calls; poll payment status no more than every few seconds."}
	}
	return v
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// authFailure: Bead's own 401 or 403.
func (f *facts) authFailure() verdict {
	a := f.api
	auth := f.sentAuth()
	if auth.kind == "none" {
		return verdict{cause: CauseTokenMissing, confidence: ConfidenceHigh,
			summary: "The request went to Bead without an Authorization header: a bug in this server, which must always send one.",
			fix: []string{"Report this incident with its evidence: beadbff must always send Authorization: Bearer, and a test guards it.",
				"Meanwhile, log in again: a fresh session carries a fresh token."}}.
			with(Evidence{"sent: no Authorization header", "request as sent"}, Evidence{fmt.Sprintf("Bead answered %d", a.Status), "response status"})
	}
	if a.Status == http.StatusUnauthorized {
		ch := f.challenge
		switch {
		case ch.bearer() && ch.errCode() == "" && ch.description == "" && auth.kind == "bearer":
			return verdict{cause: CauseTokenMissing, confidence: ConfidenceHigh,
				summary: "This server sent the token, but it did not arrive at Bead: something in between removed the Authorization header.",
				fix:     []string{"Find the proxy, gateway or WAF between this server and Bead that drops or rewrites Authorization, and make it pass the header unchanged."}}.
				with(Evidence{"sent: " + quote(auth.value, 120) + "; Bead says none arrived", "request as sent vs response header WWW-Authenticate"},
					Evidence{"WWW-Authenticate: " + quote(ch.raw, maxHeaderQuote) + " (no error: no token was presented)", "response header WWW-Authenticate"})
		case ch.bearer() && ch.errCode() == "" && auth.kind == "apikey":
			return verdict{cause: CauseUnknown, confidence: ConfidenceMedium,
				summary: "Bead asked for a bearer token on a call made with X-Api-Key: this endpoint may not accept API keys."}.
				with(Evidence{"sent: X-Api-Key " + quote(auth.value, 64) + "; Bead's challenge is " + quote(ch.raw, maxHeaderQuote), "request as sent vs response header WWW-Authenticate"})
		case ch.errCode() == "invalid_token":
			if v, ok := f.invalidToken(auth); ok {
				return v
			}
		case ch.errCode() == "insufficient_scope":
			return verdict{cause: CauseWrongClientOrScope, confidence: ConfidenceHigh,
				summary: "Bead says the token's scope is insufficient."}.
				with(Evidence{"WWW-Authenticate: " + quote(ch.raw, maxHeaderQuote), "response header WWW-Authenticate"}).with(f.scopeEvidence()...)
		}
	}
	return f.judgeToken()
}

// invalidToken reads JwtBearer's error_description.
func (f *facts) invalidToken(auth sentAuth) (verdict, bool) {
	desc := f.challenge.description
	said := Evidence{"Bead says: " + quote(desc, 300), "response header WWW-Authenticate error_description"}
	skew := f.skewSignals()
	switch classifyComplaint(desc) {
	case complaintNone:
		return verdict{cause: CauseTokenMissing, confidence: ConfidenceMedium,
			summary: "Bead could not read the bearer token it received: it arrived malformed.",
			fix:     []string{"Find what between this server and Bead rewrites the Authorization header."}}.
			with(Evidence{"WWW-Authenticate: " + quote(f.challenge.raw, maxHeaderQuote) + " with no description: the token could not be parsed", "response header WWW-Authenticate"},
				Evidence{"sent: " + quote(auth.value, 120), "request as sent"}), true
	case complaintExpired:
		if len(skew) > 0 {
			return verdict{cause: CauseClockSkew, confidence: ConfidenceHigh,
				summary: "Bead says the token expired, and the clocks disagree: this server's clock and the realm's (or Bead's) are apart by more than the tolerance."}.
				with(said).with(skew...), true
		}
		v := verdict{cause: CauseTokenExpired, confidence: ConfidenceHigh,
			summary: "Bead refused the call because the access token had expired."}
		v = v.with(said).with(f.expiryEvidence(desc)...)
		return f.expiredRecovery(v), true
	case complaintNotYetValid:
		v := verdict{cause: CauseClockSkew, confidence: ConfidenceHigh,
			summary: "Bead says the token is not valid yet: Bead's clock is behind the realm's, or the realm's is ahead."}.with(said)
		if nbf, ok := messageTime(notBeforeRe, desc); ok && !f.at.IsZero() {
			v = v.with(Evidence{fmt.Sprintf("the token's validity starts %s, %s this server's clock at the answer (%s)",
				stamp(nbf), beforeOrAfter(nbf, f.at), stamp(f.at)), "response header WWW-Authenticate error_description"})
		}
		return v.with(skew...), true
	case complaintIssuer:
		return f.realmMismatch(ConfidenceHigh, "Bead does not trust the realm that issued the token.").with(said), true
	case complaintAudience:
		return verdict{cause: CauseWrongClientOrScope, confidence: ConfidenceMedium,
			summary: "Bead refused the token's audience: it was issued for another client or API."}.
			with(said).with(f.audienceEvidence()...), true
	case complaintKeyNotFound:
		return f.realmMismatch(ConfidenceMedium, "Bead does not know the key the token was signed with: it was issued by another realm or environment.").with(said), true
	case complaintSignature:
		return verdict{cause: CauseUnknown, confidence: ConfidenceLow,
			summary: "Bead says the token's signature is invalid: the token was altered on the way, or is not Bead's."}.with(said), true
	}
	return verdict{}, false
}

// expiredRecovery sets AutoRecoverable for an expiry: a refresh cures it, unless one already failed to.
func (f *facts) expiredRecovery(v verdict) verdict {
	r := f.in.Recovery
	if r.Refreshed && r.RefreshErr == nil && r.Retried {
		v.auto = boolPtr(false)
		v.summary = "Bead refused the call because the access token had expired, and a fresh token did not cure it."
		v.fix = []string{"Compare this server's clock with the realm's, and check the realm's access-token lifetime: a fresh token should not be expired."}
		return v.with(Evidence{"the token was refreshed and the call retried once; it was refused again", "recovery"})
	}
	return v
}

func (f *facts) realmMismatch(conf, summary string) verdict {
	v := verdict{cause: CauseRealmMismatch, confidence: conf, summary: summary}
	iss := namedIssuer(f.challenge.description)
	if f.claims != nil && f.claims.Issuer != "" {
		iss = f.claims.Issuer
	}
	if iss != "" {
		v = v.with(Evidence{"the token was issued by " + quote(iss, 200), "token claim iss"})
	}
	if env := f.environmentHint(); env.Fact != "" {
		v = v.with(env)
	}
	return v
}

// judgeToken: Bead's answer does not say why; the token's claims, the ids, the probe and the recovery do.
func (f *facts) judgeToken() verdict {
	a := f.api
	answer := Evidence{fmt.Sprintf("Bead answered %d %s", a.Status, answerWords(a)), "response status"}
	if v, ok := f.clientOrScope(ConfidenceHigh); ok {
		return v.with(answer)
	}
	if iss, ok := f.issuerMismatch(); ok {
		return f.realmMismatch(ConfidenceHigh, "The token was issued by another realm than the configured one.").with(iss, answer)
	}
	if skew := f.skewSignals(); len(skew) > 0 {
		return verdict{cause: CauseClockSkew, confidence: ConfidenceMedium,
			summary: fmt.Sprintf("Bead refused the call (%d) and the clocks disagree beyond the tolerance.", a.Status)}.with(skew...).with(answer)
	}
	if ev, ok := f.expiredAtAnswer(); ok {
		return f.expiredRecovery(verdict{cause: CauseTokenExpired, confidence: ConfidenceHigh,
			summary: fmt.Sprintf("Bead refused the call (%d); the access token had expired when Bead answered.", a.Status)}.with(ev, answer))
	}
	if ev := f.idMismatch(); len(ev) > 0 {
		return verdict{cause: CauseTerminalMismatch, confidence: ConfidenceHigh,
			summary: "The request names a terminal, merchant or payment other than the token's terminal, and Bead refused it."}.with(ev...).with(answer)
	}
	// A payment this terminal created through this server is not another terminal's, whatever the probe says.
	if _, ours := f.paymentIndex(); a.Status == http.StatusForbidden && !ours {
		r := f.in.Recovery
		switch {
		case f.probe.Passed():
			return verdict{cause: CauseTerminalMismatch, confidence: ConfidenceMedium,
				summary: "Bead refused this resource but accepted the same token on GET /currencies: the refusal is specific to the resource, most likely another terminal's."}.
				with(Evidence{"GET /currencies with the same token answered 200", "probe"}, answer).with(f.resourceEvidence()...)
		case f.claims != nil && r.Refreshed && r.RefreshErr == nil && r.Retried && f.probe == nil:
			return verdict{cause: CauseTerminalMismatch, confidence: ConfidenceMedium,
				summary: "Bead refused the call again with a fresh token whose client, scope and realm are right: the resource most likely belongs to another terminal."}.
				with(Evidence{"the token was refreshed and the call retried once; Bead refused it again", "recovery"}, answer).with(f.resourceEvidence()...)
		}
	}
	if env := f.environmentHint(); env.Fact != "" {
		return verdict{cause: CauseRealmMismatch, confidence: ConfidenceMedium,
			summary: "Bead refused the call, and the API and the realm belong to different environments."}.with(env, answer)
	}
	v := verdict{cause: CauseUnknown, confidence: ConfidenceLow,
		summary: fmt.Sprintf("Bead refused the call (%d) and the evidence does not say why.", a.Status)}.with(answer)
	if f.probe != nil && !f.probe.Passed() && f.in.Op != OpProbe {
		v = v.with(Evidence{"GET /currencies with the same token failed too: the failure is global (the token or a firewall), not this resource", "probe"})
	}
	return v
}

// clientOrScope judges the token's client (client_id, else azp) and scope against what the payments
// API accepts.
func (f *facts) clientOrScope(conf string) (verdict, bool) {
	c := f.claims
	if c == nil {
		return verdict{}, false
	}
	client := c.ClientID // DecodeClaims fills it from azp when there is no client_id claim
	src := "token claim client_id"
	if c.AuthorizedParty == client && client != "" {
		src = "token claim azp"
	}
	if client != "" && client != f.paymentsClient {
		fix := []string{fmt.Sprintf("Set BEAD_CLIENT_ID=%s (it is %s now) and log in again.", f.paymentsClient, quote(f.in.Config.ClientID, 64))}
		return verdict{cause: CauseWrongClientOrScope, confidence: conf,
			summary: fmt.Sprintf("The token was issued to the client %s; Bead's payments API accepts only %s.", quote(client, 64), f.paymentsClient), fix: fix}.
			with(Evidence{fmt.Sprintf("token client is %s; the payments API accepts %s", quote(client, 64), f.paymentsClient), src}), true
	}
	// An unknown scope is not judged: some realms leave the claim out, and Bead's answer then decides.
	if scope := f.scope(); scope != "" && !hasWord(scope, "openid") {
		return verdict{cause: CauseWrongClientOrScope, confidence: conf,
			summary: "The token's scope lacks openid, which Bead's payments API requires.",
			fix:     []string{"Set BEAD_SCOPE=\"openid profile email\" and log in again."}}.
			with(f.scopeEvidence()...), true
	}
	return verdict{}, false
}

func (f *facts) scope() string {
	if f.claims != nil && f.claims.Scope != "" {
		return f.claims.Scope
	}
	if f.in.Token != nil {
		return f.in.Token.Scope
	}
	return ""
}

func (f *facts) scopeEvidence() []Evidence {
	scope := f.scope()
	if scope == "" {
		return []Evidence{{"the token has no scope claim: no openid", "token claim scope"}}
	}
	fact := "token scope is " + strconv.Quote(quote(scope, 200))
	if !hasWord(scope, "openid") {
		fact += ": no openid"
	}
	return []Evidence{{fact, "token claim scope"}}
}

func (f *facts) audienceEvidence() []Evidence {
	if f.claims == nil || len(f.claims.Audience) == 0 {
		return nil
	}
	return []Evidence{{"token aud " + quote(strings.Join(f.claims.Audience, " "), 200), "token claim aud"}}
}

// issuerMismatch compares the token's iss with the configured realm (the discovery document's issuer).
func (f *facts) issuerMismatch() (Evidence, bool) {
	if f.claims == nil || f.claims.Issuer == "" || f.in.Config.IdentityURL == "" {
		return Evidence{}, false
	}
	iss, want := strings.TrimRight(f.claims.Issuer, "/"), strings.TrimRight(f.in.Config.IdentityURL, "/")
	if strings.EqualFold(iss, want) {
		return Evidence{}, false
	}
	return Evidence{fmt.Sprintf("token iss is %s; the configured realm is %s", quote(iss, 200), quote(want, 200)), "token claim iss vs BEAD_IDENTITY_URL"}, true
}

// environmentHint: Bead's sandbox API pairs with the nonprod realm, production with prod.
func (f *facts) environmentHint() Evidence {
	api, realm := strings.ToLower(f.in.Config.APIURL), strings.ToLower(f.in.Config.IdentityURL)
	if f.claims != nil && f.claims.Issuer != "" {
		realm = strings.ToLower(f.claims.Issuer)
	}
	realmEnv := ""
	switch {
	case strings.HasSuffix(strings.TrimRight(realm, "/"), "/realms/prod"):
		realmEnv = "prod"
	case strings.HasSuffix(strings.TrimRight(realm, "/"), "/realms/nonprod"):
		realmEnv = "nonprod"
	}
	apiEnv := ""
	switch {
	case strings.Contains(api, "://api.test.devs.beadpay.io") || strings.Contains(api, "://api.qa.devs.beadpay.io"):
		apiEnv = "nonprod"
	case strings.Contains(api, "://api.beadpay.io"):
		apiEnv = "prod"
	}
	if realmEnv == "" || apiEnv == "" || realmEnv == apiEnv {
		return Evidence{}
	}
	return Evidence{fmt.Sprintf("the API %s is Bead's %s environment, the token's realm is %s", quote(f.in.Config.APIURL, 120), apiEnv, realmEnv), "configuration BEAD_API_URL vs token claim iss"}
}

// skewSignals are the facts that show two clocks disagreeing beyond the tolerance.
func (f *facts) skewSignals() []Evidence {
	var ev []Evidence
	c, t := f.claims, f.in.Token
	if c != nil && t != nil && !t.ObtainedAt.IsZero() {
		switch {
		case !c.IssuedAt.IsZero() && c.IssuedAt.Sub(t.ObtainedAt) > f.tol:
			ev = append(ev, Evidence{fmt.Sprintf("token iat %s is %s after this server asked for it (%s by its clock): this server's clock is behind the realm's",
				stamp(c.IssuedAt), span(c.IssuedAt.Sub(t.ObtainedAt)), stamp(t.ObtainedAt)), "token claim iat"})
		case !c.ExpiresAt.IsZero() && t.ObtainedAt.Sub(c.ExpiresAt) > f.tol:
			ev = append(ev, Evidence{fmt.Sprintf("token exp %s had passed %s before this server obtained it (%s by its clock): this server's clock is ahead of the realm's",
				stamp(c.ExpiresAt), span(t.ObtainedAt.Sub(c.ExpiresAt)), stamp(t.ObtainedAt)), "token claim exp"})
		case !c.ExpiresAt.IsZero() && !t.Expiry.IsZero() && absDur(t.Expiry.Sub(c.ExpiresAt)) > f.tol:
			ev = append(ev, Evidence{fmt.Sprintf("expires_in puts the expiry at %s by this server's clock, the token's exp says %s: the clocks are %s apart",
				stamp(t.Expiry), stamp(c.ExpiresAt), span(t.Expiry.Sub(c.ExpiresAt))), "token response expires_in vs token claim exp"})
		}
	} else if c != nil && !c.IssuedAt.IsZero() && !f.in.Now.IsZero() && c.IssuedAt.Sub(f.in.Now) > f.tol {
		ev = append(ev, Evidence{fmt.Sprintf("token iat %s is %s in the future of this server's clock (%s)",
			stamp(c.IssuedAt), span(c.IssuedAt.Sub(f.in.Now)), stamp(f.in.Now)), "token claim iat"})
	}
	if f.answered && !f.at.IsZero() {
		if d, err := http.ParseTime(f.header.Get("Date")); err == nil && absDur(d.Sub(f.at)) > f.tol {
			ev = append(ev, Evidence{fmt.Sprintf("Bead's Date header says %s, this server's clock said %s: %s apart",
				stamp(d), stamp(f.at), span(d.Sub(f.at))), "response header Date"})
		}
	}
	if cur, ok := messageTime(currentTimeRe, f.challenge.description); ok && !f.at.IsZero() && absDur(cur.Sub(f.at)) > f.tol {
		ev = append(ev, Evidence{fmt.Sprintf("Bead's current time was %s, this server's %s: %s apart", stamp(cur), stamp(f.at), span(cur.Sub(f.at))), "response header WWW-Authenticate error_description"})
	}
	return ev
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// expiryEvidence: the token's exp against Bead's answer, and Bead's stated expiry against exp.
func (f *facts) expiryEvidence(desc string) []Evidence {
	var ev []Evidence
	if e, ok := f.expiredAtAnswer(); ok {
		ev = append(ev, e)
	}
	said, ok := messageTime(expiredAtRe, desc)
	if !ok {
		said, ok = messageTime(validToRe, desc)
	}
	if ok && f.claims != nil && !f.claims.ExpiresAt.IsZero() && absDur(said.Sub(f.claims.ExpiresAt)) > f.tol {
		ev = append(ev, Evidence{fmt.Sprintf("Bead ended the token at %s, before its exp %s: it was expired early (revoked, or a policy of Bead's)",
			stamp(said), stamp(f.claims.ExpiresAt)), "response header WWW-Authenticate vs token claim exp"})
	}
	return ev
}

// expiredAtAnswer: the token's exp had passed when Bead answered, by this server's clock.
func (f *facts) expiredAtAnswer() (Evidence, bool) {
	if f.claims == nil || f.claims.ExpiresAt.IsZero() || f.at.IsZero() || f.claims.ExpiresAt.After(f.at) {
		return Evidence{}, false
	}
	return Evidence{fmt.Sprintf("token exp %s was %s before Bead's answer (%s)", stamp(f.claims.ExpiresAt), span(f.at.Sub(f.claims.ExpiresAt)), stamp(f.at)), "token claim exp"}, true
}

// idMismatch compares the ids the request names with the token's terminal and merchant.
func (f *facts) idMismatch() []Evidence {
	var ev []Evidence
	tokT, tokM, src := "", "", "token claim terminalId"
	if f.claims != nil {
		tokT, tokM = f.claims.TerminalID, f.claims.MerchantID
	}
	if tokT == "" {
		tokT, src = f.in.Config.TerminalID, "session terminal"
	}
	if tokM == "" {
		tokM = f.in.Config.MerchantID
	}
	where := "request body"
	if f.sent.Method == http.MethodGet || f.sent.Method == http.MethodDelete {
		where = "request path"
	}
	if f.res.TerminalID != "" && tokT != "" && !strings.EqualFold(f.res.TerminalID, tokT) {
		ev = append(ev, Evidence{fmt.Sprintf("the request names terminal %s; the token's terminal is %s", quote(f.res.TerminalID, 64), quote(tokT, 64)), where + " vs " + src})
	}
	if f.res.MerchantID != "" && tokM != "" && !strings.EqualFold(f.res.MerchantID, tokM) {
		ev = append(ev, Evidence{fmt.Sprintf("the request names merchant %s; the token's merchant is %s", quote(f.res.MerchantID, 64), quote(tokM, 64)), where + " vs token claim merchantId"})
	}
	if f.res.TrackingOwner != "" && tokT != "" && !strings.EqualFold(f.res.TrackingOwner, tokT) {
		ev = append(ev, Evidence{fmt.Sprintf("payment %s was created by terminal %s; the token's terminal is %s", quote(f.res.TrackingID, 64), quote(f.res.TrackingOwner, 64), quote(tokT, 64)), "payment index vs " + src})
	}
	return ev
}

func (f *facts) resourceEvidence() []Evidence {
	if f.res.TrackingID != "" {
		fact := "the request reads payment " + quote(f.res.TrackingID, 64)
		if f.claims != nil && f.claims.TerminalID != "" {
			fact += " with a token of terminal " + quote(f.claims.TerminalID, 64)
		}
		index, _ := f.paymentIndex()
		return append([]Evidence{{fact, "request path"}}, index...)
	}
	return nil
}

// paymentIndex is what this server's payment index said of the payment the request reads, when the
// server read it (Resource.TrackingIndexed, for the session's terminal); ours is true when the token's
// terminal created the payment through this server. Not being in the index does not make a payment
// another terminal's (it may have been made without this server, or its record expired), so it only
// supports an inference; being in it rules another terminal out.
func (f *facts) paymentIndex() (ev []Evidence, ours bool) {
	r := f.res
	if !r.TrackingIndexed || r.TrackingID == "" {
		return nil, false
	}
	term := f.in.Config.TerminalID
	if r.TrackingOwner != "" {
		tokT := term
		if f.claims != nil && f.claims.TerminalID != "" {
			tokT = f.claims.TerminalID
		}
		return []Evidence{{fmt.Sprintf("payment %s was created through this server by terminal %s", quote(r.TrackingID, 64), quote(r.TrackingOwner, 64)), "payment index"}},
			strings.EqualFold(r.TrackingOwner, tokT)
	}
	return []Evidence{{fmt.Sprintf("payment %s is not among the payments terminal %s created through this server: it may be another terminal's, made without this server, or expired from the index",
		quote(r.TrackingID, 64), quote(term, 64)), "payment index"}}, false
}

// noFailure: the call succeeded. What the token shows can still be wrong (doctor reports it).
func (f *facts) noFailure() verdict {
	if skew := f.skewSignals(); len(skew) > 0 {
		return verdict{cause: CauseClockSkew, confidence: ConfidenceMedium,
			summary: "Bead accepted the call, but the clocks disagree beyond the tolerance: this server will take fresh tokens for expired ones (or the reverse)."}.with(skew...)
	}
	if f.apiCall() {
		if v, ok := f.clientOrScope(ConfidenceLow); ok {
			v.summary = "Bead accepted the call, but " + lowerFirst(v.summary)
			return v
		}
		if iss, ok := f.issuerMismatch(); ok {
			return f.realmMismatch(ConfidenceLow, "Bead accepted the call, but the token's issuer is not the configured realm.").with(iss)
		}
	}
	return verdict{summary: "Bead accepted the call; nothing failed."}
}

func lowerFirst(s string) string {
	if s == "" || strings.HasPrefix(s, "Bead") {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// otherError: an error that is none of the Bead client's typed failures.
func (f *facts) otherError() verdict {
	err := f.in.Err
	ev := Evidence{"error: " + quote(err.Error(), 300), "error"}
	switch {
	case errors.Is(err, bead.ErrNoAccessToken):
		return verdict{cause: CauseTokenMissing, confidence: ConfidenceHigh,
			summary: "The session held no usable access token, so the call was not made.",
			fix:     []string{"Log in again. A session without a usable token should not exist: report it with the incident."}}.
			with(Evidence{"the Bead client refused to send: the access token is empty or not a well-formed bearer token", "bead client"}, Evidence{"nothing was sent to Bead", "bead client"})
	case errors.Is(err, bead.ErrInvalidID), errors.Is(err, bead.ErrInvalidAmount), errors.Is(err, bead.ErrInvalidRequest):
		return verdict{cause: CauseInvalidRequest, confidence: ConfidenceHigh,
			summary: "The request failed validation here, so nothing was sent to Bead."}.with(ev)
	case errors.Is(err, bead.ErrDiscoveryMismatch):
		return verdict{cause: CauseRealmMismatch, confidence: ConfidenceHigh,
			summary: "The realm at BEAD_IDENTITY_URL names another issuer than the configured URL.",
			fix:     []string{"Set BEAD_IDENTITY_URL to exactly the issuer the realm's discovery document names."}}.with(ev)
	case errors.Is(err, bead.ErrUnexpectedAnswer), errors.Is(err, bead.ErrUnknownStatus):
		return verdict{cause: CauseUnknown, confidence: ConfidenceMedium,
			summary: "Bead answered with success but in a form this client cannot read."}.with(ev)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return verdict{cause: CauseBeadUnavailable, confidence: ConfidenceMedium,
			summary: "The call to Bead ran out of time."}.with(ev)
	}
	return verdict{cause: CauseUnknown, confidence: ConfidenceLow, summary: "The call failed in a way this diagnosis does not recognise."}.with(ev)
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
