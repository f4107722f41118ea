package diagnose

import (
	"fmt"
	"net/http"
	"strings"
)

// checklist performs the five steps of Bead's 403 article (section 2) on the incident.
func (f *facts) checklist() []Check {
	return []Check{f.checkHeaders(), f.checkJWT(), f.checkProbe(), f.checkResource(), f.checkMiddlebox()}
}

func check(id, name, status, finding string) Check {
	return Check{ID: id, Name: name, Status: status, Finding: finding}
}

// checkHeaders: "confirm the Bearer token is present, well-formed, and not stale".
func (f *facts) checkHeaders() Check {
	const id, name = CheckHeaders, "Authorization header: present, well-formed, not stale"
	na := func(why string) Check { return check(id, name, CheckNotApplicable, why) }
	switch {
	case f.in.Local != "":
		return na("nothing was sent to Bead: this server refused the request first")
	case f.grantOp():
		return na("a token grant carries no bearer token")
	case !f.apiCall():
		return na("no call to Bead's payments API was made")
	}
	auth := f.sentAuth()
	switch auth.kind {
	case "none":
		// The Bead client records what it sent only in its errors; a call that succeeded did send the token.
		if f.sent.Method == "" && f.in.Err == nil && f.in.Token != nil {
			return check(id, name, CheckPassed, fmt.Sprintf("Bead accepted the bearer token %s… (%d chars)", f.in.Token.Prefix, f.in.Token.Length))
		}
		if f.sent.Method == "" {
			return na("the request as sent was not recorded")
		}
		return check(id, name, CheckFailed, "no Authorization header was sent: a bug in this server")
	case "other":
		return check(id, name, CheckFailed, "the Authorization header sent is not \"Bearer <token>\": "+quote(auth.value, 120))
	case "apikey":
		return check(id, name, CheckPassed, "sent X-Api-Key "+quote(auth.value, 64)+" (API-key mode, no bearer token)")
	}
	if f.status == http.StatusUnauthorized && f.challenge.bearer() && f.challenge.errCode() == "" {
		return check(id, name, CheckFailed, "sent: "+quote(auth.value, 120)+"; Bead says none arrived")
	}
	if f.status == http.StatusUnauthorized && f.challenge.errCode() == "invalid_token" && f.challenge.description == "" {
		return check(id, name, CheckFailed, "sent: "+quote(auth.value, 120)+"; Bead could not read the token it received")
	}
	finding := "sent: " + quote(auth.value, 120)
	if c := f.claims; c != nil && !c.ExpiresAt.IsZero() && !f.sent.SentAt.IsZero() {
		if !c.ExpiresAt.After(f.sent.SentAt) {
			return check(id, name, CheckFailed, finding+fmt.Sprintf("; stale: its exp %s was %s before it was sent", stamp(c.ExpiresAt), span(f.sent.SentAt.Sub(c.ExpiresAt))))
		}
		finding += fmt.Sprintf("; valid for %s more when sent (exp %s)", span(c.ExpiresAt.Sub(f.sent.SentAt)), stamp(c.ExpiresAt))
	}
	return check(id, name, CheckPassed, finding)
}

// checkJWT: "validate aud, client_id, exp, and scope" (and iss against the realm, iat against the clock).
func (f *facts) checkJWT() Check {
	const id, name = CheckJWT, "JWT decoded: aud, client, exp, scope, issuer"
	t := f.in.Token
	switch {
	case t == nil && f.grantOp():
		return check(id, name, CheckNotApplicable, "no access token is involved in a token grant")
	case t == nil:
		return check(id, name, CheckNotApplicable, "no token information came with the incident")
	case t.Claims == nil:
		return check(id, name, CheckFailed, "the access token is not a readable JWT: "+quote(t.ClaimsError, 200))
	}
	c := t.Claims
	var problems []string
	if client := c.ClientID; client != "" && client != f.paymentsClient && f.apiCall() {
		problems = append(problems, fmt.Sprintf("client %s is not %s", quote(client, 64), f.paymentsClient))
	} else if cfg := f.in.Config.ClientID; client != "" && cfg != "" && client != cfg {
		problems = append(problems, fmt.Sprintf("client %s is not the configured %s", quote(client, 64), quote(cfg, 64)))
	}
	if scope := f.scope(); scope != "" && !hasWord(scope, "openid") {
		problems = append(problems, fmt.Sprintf("scope %q lacks openid", quote(scope, 120)))
	}
	if ev, ok := f.issuerMismatch(); ok {
		problems = append(problems, ev.Fact)
	}
	if ev, ok := f.expiredAtAnswer(); ok {
		problems = append(problems, ev.Fact)
	}
	for _, ev := range f.skewSignals() {
		if strings.HasPrefix(ev.Source, "token") {
			problems = append(problems, ev.Fact)
		}
	}
	if len(problems) > 0 {
		return check(id, name, CheckFailed, strings.Join(problems, "; "))
	}
	parts := []string{}
	if len(c.Audience) > 0 {
		parts = append(parts, "aud "+quote(strings.Join(c.Audience, " "), 120))
	}
	if c.ClientID != "" {
		parts = append(parts, "client "+quote(c.ClientID, 64))
	}
	if s := f.scope(); s != "" {
		parts = append(parts, fmt.Sprintf("scope %q", quote(s, 120)))
	}
	if c.Issuer != "" {
		parts = append(parts, "iss "+quote(c.Issuer, 200))
	}
	if !c.ExpiresAt.IsZero() {
		exp := "exp " + stamp(c.ExpiresAt)
		if !f.at.IsZero() {
			exp += " (" + span(c.ExpiresAt.Sub(f.at)) + " after the answer)"
		}
		parts = append(parts, exp)
	}
	if c.TerminalID != "" {
		parts = append(parts, "terminal "+quote(c.TerminalID, 64))
	}
	return check(id, name, CheckPassed, strings.Join(parts, ", "))
}

// checkProbe: "call a simple endpoint; if that also fails the issue is global (token or firewall)".
func (f *facts) checkProbe() Check {
	const id, name = CheckProbe, "Simple endpoint (GET /currencies)"
	p := f.probe
	switch {
	case p == nil && f.grantOp():
		return check(id, name, CheckNotApplicable, "no token was obtained, so there was nothing to probe with")
	case p == nil:
		return check(id, name, CheckNotApplicable, "no probe was made")
	case p.Passed() && f.in.Op == OpProbe:
		return check(id, name, CheckPassed, "GET /currencies answered 200: Bead accepts the token")
	case p.Passed():
		return check(id, name, CheckPassed, "GET /currencies answered 200 with the same token: the token works, so the refusal is specific to this resource")
	}
	what := "failed with no answer"
	if p.Status != 0 {
		what = fmt.Sprintf("answered %d (%s body)", p.Status, firstNonEmpty(p.Shape, "no"))
	}
	if f.in.Op == OpProbe {
		return check(id, name, CheckFailed, "GET /currencies "+what+": a failure of the token or of the network, not of any one resource")
	}
	return check(id, name, CheckFailed, "GET /currencies "+what+" too: the failure is global (the token or a firewall), not this resource")
}

// checkResource: "the token ties you to one terminal; another terminal's resources return 403".
func (f *facts) checkResource() Check {
	const id, name = CheckResource, "Token vs resource ids"
	tokT := f.in.Config.TerminalID
	if f.claims != nil && f.claims.TerminalID != "" {
		tokT = f.claims.TerminalID
	}
	r := f.res
	switch {
	case r.TerminalID == "" && r.MerchantID == "" && r.TrackingID == "":
		return check(id, name, CheckNotApplicable, "the request names no terminal, merchant or payment")
	case tokT == "":
		return check(id, name, CheckNotApplicable, "the token's terminal is not known")
	}
	mismatch := f.idMismatch()
	if f.in.Local == LocalTerminalMismatch {
		mismatch = append(mismatch, f.localMismatchEvidence()...)
	}
	if len(mismatch) > 0 {
		facts := make([]string, len(mismatch))
		for i, e := range mismatch {
			facts[i] = e.Fact
		}
		return check(id, name, CheckFailed, strings.Join(dedupeStrings(facts), "; "))
	}
	var named []string
	if r.TerminalID != "" {
		named = append(named, "terminal "+quote(r.TerminalID, 64))
	}
	if r.MerchantID != "" {
		named = append(named, "merchant "+quote(r.MerchantID, 64))
	}
	switch {
	case r.TrackingID != "" && r.TrackingOwner == "" && len(named) == 0 && r.TrackingIndexed:
		return check(id, name, CheckNotApplicable, "the request reads payment "+quote(r.TrackingID, 64)+", which terminal "+quote(f.in.Config.TerminalID, 64)+
			" did not create through this server (payment index), so whose it is is not known here")
	case r.TrackingID != "" && r.TrackingOwner == "" && len(named) == 0:
		return check(id, name, CheckNotApplicable, "the request reads payment "+quote(r.TrackingID, 64)+", whose terminal this server does not know")
	case r.TrackingID != "" && r.TrackingOwner != "" && len(named) == 0:
		return check(id, name, CheckPassed, "the request reads payment "+quote(r.TrackingID, 64)+", which the token's terminal "+quote(tokT, 64)+
			" created (payment index)")
	case r.TrackingID != "":
		named = append(named, "payment "+quote(r.TrackingID, 64))
	}
	return check(id, name, CheckPassed, "the request names "+strings.Join(named, ", ")+": all the token's terminal "+quote(tokT, 64)+"'s")
}

// checkMiddlebox: "WAFs often rewrite or drop auth headers".
func (f *facts) checkMiddlebox() Check {
	const id, name = CheckMiddlebox, "Network middle-boxes (WAF, proxy)"
	if !f.answered && f.in.Err == nil && f.apiCall() {
		return check(id, name, CheckPassed, "the call went through: nothing in between blocked it")
	}
	if !f.answered {
		return check(id, name, CheckNotApplicable, "no answer came back to inspect")
	}
	if blocked, _ := f.origin.blocked(); blocked {
		return check(id, name, CheckFailed, joinFacts(f.origin.proxySigns))
	}
	if f.status == http.StatusUnauthorized && f.challenge.bearer() && f.challenge.errCode() == "" && f.sentAuth().kind == "bearer" {
		return check(id, name, CheckFailed, "the Authorization header sent did not arrive: something between this server and Bead drops it")
	}
	if len(f.origin.beadSigns) > 0 {
		return check(id, name, CheckPassed, "the answer is Bead's own: "+joinFacts(f.origin.beadSigns))
	}
	return check(id, name, CheckPassed, "no sign of a middle-box (no HTML page, no foreign Server header), though Bead's own headers are absent too")
}

func joinFacts(ev []Evidence) string {
	facts := make([]string, len(ev))
	for i, e := range ev {
		facts[i] = e.Fact
	}
	return strings.Join(facts, "; ")
}

func dedupeStrings(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// context is the evidence every diagnosis shows after the deciding facts: the request, the answer, the
// token, the recovery and the probe. With an unknown cause this is all there is to go on.
func (f *facts) context() []Evidence {
	var ev []Evidence
	add := func(fact, source string) { ev = append(ev, Evidence{fact, source}) }
	if f.sent.Method != "" {
		add(f.requestLine(), "request as sent")
		if auth := f.sentAuth(); auth.kind != "none" && f.apiCall() {
			header := "Authorization"
			if auth.kind == "apikey" {
				header = "X-Api-Key"
			}
			add(header+": "+quote(auth.value, 120), "request header "+header)
		}
		if f.sent.RequestID != "" {
			add("x-request-id "+quote(f.sent.RequestID, 128), "request header x-request-id")
		}
		if !f.sent.SentAt.IsZero() {
			add("sent at "+stamp(f.sent.SentAt), "request as sent")
		}
	}
	if f.answered {
		add(fmt.Sprintf("status %d, %s body", f.status, firstNonEmpty(f.shape, "no")), "response status")
		if len(f.body) > 0 {
			add(BodySummary(f.body, DefaultBodySummary), "response body")
		}
		// Who wrote the answer is what tells Bead's refusal from a WAF's: both kinds of sign are shown,
		// and stand in for the raw header they read.
		read := map[string]bool{}
		for _, sign := range append(append([]Evidence(nil), f.origin.beadSigns...), f.origin.proxySigns...) {
			ev = append(ev, sign)
			read[sign.Source] = true
		}
		for _, h := range []string{"Server", "X-Request-Id", "WWW-Authenticate", "Content-Type", "Date"} {
			if v := f.header.Get(h); v != "" && !read["response header "+strings.ToLower(h)] && !read["response header "+h] {
				add(h+": "+quote(v, maxHeaderQuote), "response header "+h)
			}
		}
		if f.api != nil && f.api.TraceID != "" {
			add("traceId "+quote(f.api.TraceID, 128), "response body traceId")
		}
	}
	if f.transport != nil {
		kind := "no answer"
		if f.transport.Timeout {
			kind = "no answer in time"
		}
		add(kind+": "+quote(errText(f.transport.Err), 300), "transport")
	}
	if t := f.in.Token; t != nil {
		if c := t.Claims; c != nil {
			if c.ClientID != "" {
				src := "token claim client_id"
				if c.AuthorizedParty == c.ClientID {
					src = "token claim azp"
				}
				add("client "+quote(c.ClientID, 64), src)
			}
			if c.Scope != "" {
				add(fmt.Sprintf("scope %q", quote(c.Scope, 200)), "token claim scope")
			}
			if c.Issuer != "" {
				add("iss "+quote(c.Issuer, 200), "token claim iss")
			}
			if len(c.Audience) > 0 {
				add("aud "+quote(strings.Join(c.Audience, " "), 200), "token claim aud")
			}
			if !c.IssuedAt.IsZero() {
				add("iat "+stamp(c.IssuedAt), "token claim iat")
			}
			if !c.ExpiresAt.IsZero() {
				fact := "exp " + stamp(c.ExpiresAt)
				if !f.at.IsZero() {
					fact += ", " + beforeOrAfter(c.ExpiresAt, f.at) + " the answer"
				}
				add(fact, "token claim exp")
			}
			if c.TerminalID != "" {
				add("terminal "+quote(c.TerminalID, 64), "token claim terminalId")
			}
			if c.MerchantID != "" {
				add("merchant "+quote(c.MerchantID, 64), "token claim merchantId")
			}
		} else if t.ClaimsError != "" {
			add("not a readable JWT: "+quote(t.ClaimsError, 200), "token")
		}
		if t.Prefix != "" {
			add(fmt.Sprintf("token starts %s… (%d chars)", t.Prefix, t.Length), "token")
		}
		if !t.ObtainedAt.IsZero() {
			add("obtained at "+stamp(t.ObtainedAt)+" by this server's clock", "token response")
		}
	}
	if cfg := f.in.Config; cfg.ClientID != "" || cfg.IdentityURL != "" {
		if cfg.IdentityURL != "" {
			add("realm "+quote(cfg.IdentityURL, 200), "configuration BEAD_IDENTITY_URL")
		}
		if cfg.ClientID != "" {
			add("client "+quote(cfg.ClientID, 64), "configuration BEAD_CLIENT_ID")
		}
		if len(cfg.Scopes) > 0 {
			add(fmt.Sprintf("scope %q", quote(strings.Join(cfg.Scopes, " "), 200)), "configuration BEAD_SCOPE")
		}
	}
	if index, _ := f.paymentIndex(); len(index) > 0 {
		ev = append(ev, index...)
	}
	r := f.in.Recovery
	switch {
	case r.Refreshed && r.RefreshErr != nil:
		add("the token refresh after the first refusal failed: "+quote(r.RefreshErr.Error(), 200), "recovery")
	case r.Refreshed && r.Retried:
		fact := "the token was refreshed and the call retried once"
		if r.FirstStatus != 0 {
			fact += fmt.Sprintf("; the first attempt got %d", r.FirstStatus)
			switch r.FirstBy {
			case AnsweredByBead:
				fact += " from Bead"
			case AnsweredByProxy:
				fact += " from a proxy in front of Bead"
			}
		}
		add(fact, "recovery")
	case r.Retried:
		add("the call was retried once", "recovery")
	}
	if p := f.probe; p != nil && f.in.Op != OpProbe {
		if p.Passed() {
			add("GET /currencies with the same token answered 200", "probe")
		} else if p.Status != 0 {
			add(fmt.Sprintf("GET /currencies with the same token answered %d (%s body)", p.Status, firstNonEmpty(p.Shape, "no")), "probe")
		} else {
			add("GET /currencies with the same token got no answer", "probe")
		}
	}
	return ev
}
