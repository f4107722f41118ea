package bff

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
	"beadbff/session"
	"beadbff/views"
)

// incidentRecord is one diagnosed failure, as stored (sealed, under the session that met it, for about a
// day) and shown on /help/incidents/{id}.
type incidentRecord struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Op        string    `json:"op"`
	RequestID string    `json:"requestId"`
	Status    int       `json:"status"` // what this server answered
	// BeadStatus is the status of the last answer to the call to Bead (0 when none came or nothing was
	// sent), and BeadAnswer says in words who gave it, or why there was none. They are kept apart from
	// Status because the two often differ (a proxy's 403 is answered 502 here; Bead's 401 after a retry is
	// answered 403), and a page that showed one number beside a text about the other misled its readers.
	BeadStatus int    `json:"beadStatus,omitempty"`
	BeadAnswer string `json:"beadAnswer,omitempty"`
	// StatusReason says why this server answered Status ("" in incidents stored before it was kept).
	StatusReason string               `json:"statusReason,omitempty"`
	Diagnosis    diagnose.Diagnosis   `json:"diagnosis"`
	Tried        []string             `json:"tried"`
	Bundle       *views.SupportBundle `json:"bundle,omitempty"` // nil for a refusal made here
}

// statusFor is what this server answers for a diagnosed failure, by one rule for every cause: a request
// or login refused (by Bead, or here before Bead was asked) is a 4xx, the caller's to act on; a call that
// something between this server and Bead broke (a firewall's block, an Authorization header lost or
// rewritten on the way), that Bead failed to answer, or whose answer this server cannot act on is a 502
// (504 when no answer came in time): nothing the caller sent was judged; a bug here is a 500. sent is the
// request as sent; local, a refusal made here.
func statusFor(cause string, err error, sent bead.SentRequest, local bool) int {
	switch cause {
	case diagnose.CauseRateLimited:
		return http.StatusTooManyRequests
	case diagnose.CauseBeadUnavailable:
		var te *bead.TransportError
		if errors.As(err, &te) && te.Timeout {
			return http.StatusGatewayTimeout
		}
		return http.StatusBadGateway
	case diagnose.CauseBlockedBeforeBead:
		return http.StatusBadGateway
	case diagnose.CauseTokenMissing:
		if !local && sentCredentials(sent) {
			return http.StatusBadGateway // it left here with its token: something on the way lost or mangled it
		}
		return http.StatusInternalServerError // this server had none to send, or sent none: a bug here
	case diagnose.CauseRefreshTokenInvalid, diagnose.CauseInvalidCredentials, diagnose.CauseNotAuthenticated:
		return http.StatusUnauthorized
	case diagnose.CauseNotFound:
		return http.StatusNotFound
	case diagnose.CauseInvalidRequest:
		return http.StatusBadRequest
	case diagnose.CauseSessionStoreUnavailable:
		return http.StatusServiceUnavailable
	case diagnose.CauseUnknown:
		if status, _ := diagnose.AnswerOf(err); !local && status != http.StatusUnauthorized && status != http.StatusForbidden {
			return http.StatusBadGateway // an answer that is no refusal, and that the diagnosis cannot read
		}
	}
	// Bead's verdict on the request or its token (expired, wrong client or realm, clocks apart, another
	// terminal's ids, a refusal the evidence cannot explain), or this server's own refusal.
	return http.StatusForbidden
}

// sentCredentials says whether the request left this server with an Authorization or X-Api-Key header.
func sentCredentials(sent bead.SentRequest) bool {
	return sent.Header.Get("Authorization") != "" || sent.Header.Get("X-Api-Key") != ""
}

// diagnoseFailure runs Bead's 403 checklist on a failed call (the simple-endpoint probe included, when
// Bead refused the token), stores the incident for the session, logs and counts it, and returns the
// Problem the client is shown.
// tok is the token the failed call used (zero when there was none).
func (s *Server) diagnoseFailure(c *fiber.Ctx, sess *session.Session, tok session.Token, op string, err error, rec diagnose.Recovery) *Problem {
	ctx := c.UserContext()
	in := s.newIncident(sess, tok, op)
	in.Err, in.Recovery = err, rec
	in.Resource = s.paymentIndexOf(ctx, sess.TerminalID, diagnose.ResourceOf(in.Resource, sentRequestOf(err, in.Request)))
	if bead.IsAuthFailure(err) && op != diagnose.OpProbe {
		// Debug step 3: does a simple call fail too? Then the failure is global (token or firewall).
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		in.Probe = diagnose.NewProbeResult(s.bead.Probe(pctx, tok.AccessToken))
		cancel()
	}
	return s.recordIncident(c, sess, tok, in)
}

// paymentIndexOf adds what this server's payment index says of the payment a failed call read (the
// article's "check token vs resource ids"): whether the session's terminal created it through this
// server. Only that terminal's index is read. The store keeps payments by terminal and tracking id, with
// no index by tracking id alone, and looking through other terminals' would tell this terminal's staff
// about another terminal's (perhaps another merchant's) payments; "ours" or "not ours here" is what the
// diagnosis needs to tell a resource refusal from a token one. A store that does not answer leaves the
// owner unknown, as before: the diagnosis must not fail for it.
func (s *Server) paymentIndexOf(ctx context.Context, terminalID string, r diagnose.Resource) diagnose.Resource {
	if r.TrackingID == "" || r.TrackingOwner != "" || !bead.ValidID(r.TrackingID) {
		return r
	}
	p, _, err := s.paymentRecord(ctx, terminalID, r.TrackingID)
	switch {
	case err == nil:
		r.TrackingOwner, r.TrackingIndexed = p.TerminalID, true
	case errors.Is(err, session.ErrNotFound):
		r.TrackingIndexed = true
	}
	return r
}

// sentRequestOf is the request as sent that a failed call's error recorded, else given.
func sentRequestOf(err error, given bead.SentRequest) bead.SentRequest {
	var ae *bead.APIError
	var te *bead.TransportError
	var ke *bead.TokenError
	switch {
	case errors.As(err, &ae):
		return ae.Request
	case errors.As(err, &te):
		return te.Request
	case errors.As(err, &ke):
		return ke.Request
	}
	return given
}

// localIncident diagnoses a refusal made here before anything went to Bead (a body naming another
// terminal, say), so that it gets the same page, checklist and log line as Bead's own refusals.
func (s *Server) localIncident(c *fiber.Ctx, sess *session.Session, op, local, detail string, res diagnose.Resource) *Problem {
	tok := tokenOf(s.tokens.get(sess.TerminalID)) // the token the request would have used, as far as this process knows
	in := s.newIncident(sess, tok, op)
	in.Local, in.LocalDetail, in.Resource = local, detail, res
	return s.recordIncident(c, sess, tok, in)
}

// newIncident is what both kinds of incident start from: the operation, the token it used or would have,
// and this server's configuration for the session's terminal.
func (s *Server) newIncident(sess *session.Session, tok session.Token, op string) diagnose.Incident {
	return diagnose.Incident{
		Op:    op,
		Token: diagnose.NewTokenInfo(tok.AccessToken, tok.Scope, tok.ObtainedAt, tok.Expiry),
		Config: diagnose.Config{
			ClientID: s.cfg.BeadClientID, Scopes: s.cfg.Scopes(), IdentityURL: s.cfg.BeadIdentityURL, APIURL: s.cfg.BeadAPIURL,
			TerminalID: sess.TerminalID, MerchantID: sess.MerchantID,
		},
		Now: s.now(),
	}
}

func (s *Server) recordIncident(c *fiber.Ctx, sess *session.Session, tok session.Token, in diagnose.Incident) *Problem {
	ctx, op, err, rec := c.UserContext(), in.Op, in.Err, in.Recovery
	d := diagnose.Diagnose(in)
	if d.Cause == "" {
		d.Cause = diagnose.CauseUnknown
	}
	sent := sentRequestOf(err, in.Request)
	var ae *bead.APIError
	errors.As(err, &ae)
	info, _ := diagnose.LookupCause(d.Cause)
	inc := &incidentRecord{
		ID:        randomToken()[:22],
		At:        s.now().UTC(),
		Op:        op,
		RequestID: requestIDOf(c),
		Status:    statusFor(d.Cause, err, sent, in.Local != ""),
		Diagnosis: d,
		Tried:     triedSteps(rec, in.Probe, err),
	}
	inc.BeadStatus, inc.BeadAnswer = beadAnswer(err, d.AnsweredBy, in.Local != "")
	inc.StatusReason = statusReason(d.Cause, inc.Status, inc.BeadStatus, d.AnsweredBy, in.Local != "")
	if in.Local == "" && d.Cause != diagnose.CauseRateLimited { // waiting is the fix for a 429; Bead never saw a local refusal
		inc.Bundle = supportBundle(s.now(), sent, tok.AccessToken, s.envLabel())
		addressBundle(inc.Bundle, inc, rec.Retried, s.envLabel(), s.cfg.Demo)
	}
	p := &Problem{Status: inc.Status, Cause: d.Cause, Title: firstNonEmpty(info.Title, "Bead refused the request"),
		Detail: d.Summary, Bundle: inc.Bundle, Incident: inc, Err: err}
	if ae != nil && ae.Status == http.StatusTooManyRequests {
		p.RetryAfter = max(ae.RetryAfter, time.Second)
	}
	if data, merr := json.Marshal(inc); merr == nil {
		if serr := s.store.SaveIncident(ctx, sess.ID, inc.ID, data, session.DefaultIncidentTTL); serr == nil {
			p.IncidentID = inc.ID
		} else {
			s.log.Warn("incident not stored", "requestId", inc.RequestID, "err", serr)
		}
	}
	s.metrics.incidents.WithLabelValues(d.Cause).Inc()
	s.log.Warn("incident", "cause", d.Cause, "confidence", d.Confidence, "requestId", inc.RequestID,
		"incidentId", p.IncidentID, "op", op, "status", inc.Status, "beadRequestId", sent.RequestID)
	return p
}

// The support bundle's words. Bead's 403 article asks for the bundle to be sent to Bead's support, who
// "trace the request in [their] logs"; a request a firewall or proxy in front of Bead refused never
// reached those logs, and the article places such a block on the integrator's side ("response is 403
// from your reverse-proxy": allow the addresses, relax the filter), naming no other contact for one of
// Bead's own. So such a bundle is for whoever runs the firewall, and for Bead's support only when the
// firewall is Bead's.
const (
	bundleNoSecrets = "They include no password, and only the start of the token, which is not enough to use it."
	bundleDemoNote  = "Demo mode: this server talks to its built-in sandbox, not to Bead, and the sandbox gave this answer " +
		"(its simulated firewall and faults included). There is no one to mail; the details are shown as a real incident would show them."
)

// addressBundle says in b who the bundle of inc is for, from who answered (the diagnosis's AnsweredBy, as
// the page's status line does): Bead's support when Bead answered; whoever runs the firewall or proxy when
// one answered; no one in demo mode, whose every answer comes from the built-in sandbox (the text stays,
// to be read). retried: the call was retried with a fresh token. The text carries the page's "who
// answered what" too.
func addressBundle(b *views.SupportBundle, inc *incidentRecord, retried bool, env string, demo bool) {
	d := inc.Diagnosis
	refused := inc.BeadStatus == http.StatusUnauthorized || inc.BeadStatus == http.StatusForbidden
	still, subject := "Still failing?", "Request to the payments API failed"
	if refused {
		still, subject = "Still blocked?", "Request refused by the payments API"
	}
	tried := ""
	if retried {
		tried = "Refreshing the token and trying again did not help. "
	}
	switch {
	case d.AnsweredBy == diagnose.AnsweredByProxy && d.Cause == diagnose.CauseBlockedBeforeBead:
		b.Heading = still + " Send this to whoever runs the firewall"
		b.Intro = "The request did not reach Bead: a firewall or proxy in front of it refused it, so Bead's logs hold no trace of it. " +
			"These details are for whoever runs that firewall or proxy: your network team when it is on this server's side " +
			"(an egress proxy, HTTPS_PROXY, a gateway), or Bead's support only when its block page or headers show it is Bead's own. " + bundleNoSecrets
		b.MailLabel, subject = "Email Bead support (only if the firewall is Bead's)", "Request blocked before reaching the payments API"
	case d.AnsweredBy == diagnose.AnsweredByProxy:
		b.Heading = still + " Send this to whoever runs the proxy"
		b.Intro = "A proxy in front of Bead answered, not Bead, so that proxy's logs say what became of the request. " +
			"These details are for whoever runs it: your network team when it is on this server's side, or Bead's support when it is Bead's own. " +
			bundleNoSecrets
		b.MailLabel, subject = "Email Bead support (only if the proxy is Bead's)", "Request to the payments API failed at a proxy in front of it"
	case d.AnsweredBy == diagnose.AnsweredByBead:
		b.Heading = still + " Send this to Bead support"
		b.Intro = tried + "With these details Bead's support can find your request in their logs. " + bundleNoSecrets
	default: // no sign of who answered, or no answer at all
		b.Heading = still + " Send this to Bead support"
		b.Intro = tried + "If the request reached Bead, these details let Bead's support find it in their logs. " + bundleNoSecrets
	}
	if inc.BeadAnswer != "" {
		b.Text += "Answer: " + inc.BeadAnswer + "\n"
	}
	if d.AnsweredBy == diagnose.AnsweredByProxy && d.Cause == diagnose.CauseBlockedBeforeBead {
		b.Text += "Reached Bead: no (refused by a firewall or proxy in front of it)\n" // as the page says, for whoever reads only the text
	}
	if inc.Status != 0 {
		b.Text += "beadbff answered: " + strconv.Itoa(inc.Status) + " " + http.StatusText(inc.Status) + "\n"
	}
	b.MailtoURL = bundleMailto(b, env, subject)
	if demo {
		b.Heading = "Support bundle (demo mode: no one to send it to)"
		b.Email, b.MailtoURL, b.MailLabel, b.Note = "", "", "", bundleDemoNote
	}
}

// beadAnswer is the status of the last answer to the call to Bead and, in words, who gave it (by: the
// diagnosis's AnsweredBy, not its cause, for a proxy's 502 is bead_unavailable) or why none came, for the
// incident page's "Bead answered … ; beadbff answered …" line.
func beadAnswer(err error, by string, local bool) (int, string) {
	var ae *bead.APIError
	var ke *bead.TokenError
	var te *bead.TransportError
	target, status := "Bead", 0
	switch {
	case local:
		return 0, "Nothing was sent to Bead"
	case errors.As(err, &ae):
		status = ae.Status
	case errors.As(err, &ke) && ke.Status != 0:
		target, status = "Bead's identity realm", ke.Status
	case errors.As(err, &te) && te.Timeout:
		return 0, targetOf(te.Op) + " gave no answer within BEAD_TIMEOUT"
	case errors.As(err, &te):
		return 0, targetOf(te.Op) + " could not be reached"
	default:
		return 0, ""
	}
	who := answerer(by, target)
	return status, strings.ToUpper(who[:1]) + who[1:] + " answered " + statusWords(status)
}

// targetOf is the part of Bead a call of op goes to.
func targetOf(op string) string {
	if realmOp(op) {
		return "Bead's identity realm"
	}
	return "Bead"
}

func realmOp(op string) bool {
	return op == diagnose.OpPasswordGrant || op == diagnose.OpRefreshGrant || op == diagnose.OpDiscovery
}

// answerer names who gave an answer of target ("Bead", "Bead's identity realm"), as the diagnosis
// judged it (by: a diagnose.AnsweredBy* word).
func answerer(by, target string) string {
	switch by {
	case diagnose.AnsweredByBead:
		return target
	case diagnose.AnsweredByProxy:
		return "a firewall or proxy in front of " + target + " (not " + target + " itself)"
	}
	return target + " or something in front of it" // no sign either way, or not recorded
}

// statusWords is "403 Forbidden".
func statusWords(status int) string {
	return strings.TrimSpace(strconv.Itoa(status) + " " + http.StatusText(status))
}

// statusReason says why this server answered status for a failure of this cause, given what Bead
// answered: the half of the incident page's status line that Bead's status alone does not explain.
func statusReason(cause string, status, beadStatus int, by string, local bool) string {
	switch {
	case cause == diagnose.CauseTokenMissing && status == http.StatusInternalServerError && local:
		return "it had no usable access token to send the call with: a bug here, logged with the request id"
	case cause == diagnose.CauseTokenMissing && status == http.StatusInternalServerError:
		return "it sent the call without an Authorization header: a bug here, logged with the request id"
	case local:
		return "it refused the request itself, before anything went to Bead"
	case cause == diagnose.CauseTokenMissing:
		refusal := "refusal"
		if beadStatus != 0 {
			refusal = statusWords(beadStatus)
		}
		return "the Authorization header it sent did not reach Bead intact: something between them removed or rewrote it, " +
			"so the " + refusal + " that came back is no verdict on the terminal's token"
	case cause == diagnose.CauseUnknown && status == http.StatusBadGateway:
		return "the answer is not one it can act on (the evidence is below)"
	case cause == diagnose.CauseBlockedBeforeBead:
		return "the refusal came from something on the way to Bead, not from Bead: a gateway failure, not Bead's verdict on the request"
	case cause == diagnose.CauseRateLimited:
		return answerer(by, "Bead") + " asked this server to slow down: wait, then try again"
	case status == http.StatusGatewayTimeout:
		return "Bead did not answer in time, so this server cannot tell what became of the request"
	case cause == diagnose.CauseBeadUnavailable && by == diagnose.AnsweredByProxy:
		return "the proxy in front of Bead could not get an answer from Bead"
	case cause == diagnose.CauseBeadUnavailable:
		return "Bead could not be reached, or failed on its side"
	case cause == diagnose.CauseInvalidCredentials:
		return answerer(by, "Bead's identity realm") + " refused the terminal's username or password"
	case status == http.StatusUnauthorized:
		return "the terminal's Bead login has ended: log in again"
	case status == http.StatusForbidden && (beadStatus == http.StatusUnauthorized || beadStatus == http.StatusForbidden):
		return answerer(by, "Bead") + " refused the request (the cause and its evidence are below)"
	}
	return "of the cause diagnosed below"
}

// triedSteps says in words what the server did before giving up, for the incident page. Each answer is
// named by its own owner, as recorded: the first and the retry's may differ (Bead's 401, then a WAF's 403).
func triedSteps(rec diagnose.Recovery, probe *diagnose.ProbeResult, err error) []string {
	var out []string
	var te *bead.TransportError
	switch {
	case rec.FirstStatus != 0:
		out = append(out, "Sent the call; "+answerer(rec.FirstBy, "Bead")+" answered "+statusWords(rec.FirstStatus)+".")
	case errors.As(err, &te) && realmOp(te.Op):
		// the refresh the call needed failed: the call was not sent (the refresh's step says why)
	case errors.As(err, &te) && te.Timeout:
		out = append(out, "Sent the call; Bead gave no answer within BEAD_TIMEOUT. A call that times out is not retried: it may have reached Bead.")
	case errors.As(err, &te):
		out = append(out, "Tried to send the call; the connection to Bead failed.")
	}
	switch {
	case rec.Refreshed && rec.RefreshErr == nil:
		out = append(out, "Refreshed the access token once.")
	case rec.RefreshErr != nil:
		out = append(out, "Tried to refresh the access token; "+refreshFailure(rec.RefreshErr)+".")
	}
	if rec.Retried {
		retry := "Retried the same call once with the new token (same body, same Idempotency-Key)"
		switch {
		case rec.RetryStatus != 0:
			retry += "; " + answerer(rec.RetryBy, "Bead") + " answered " + statusWords(rec.RetryStatus)
		case errors.As(err, &te) && te.Timeout:
			retry += "; Bead gave no answer within BEAD_TIMEOUT"
		case errors.As(err, &te):
			retry += "; the connection to Bead failed"
		}
		out = append(out, retry+".")
	}
	if probe != nil {
		if probe.Passed() {
			out = append(out, "Called a simple endpoint (GET /currencies) with the same token: it worked, so the refusal is about this request, not the token.")
		} else {
			out = append(out, "Called a simple endpoint (GET /currencies) with the same token: it failed too, so the refusal is global (token or firewall).")
		}
	}
	return out
}

// refreshFailure says what became of a refresh grant that failed, naming who answered it.
func refreshFailure(err error) string {
	var te *bead.TransportError
	if status, by := diagnose.AnswerOf(err); status != 0 {
		return answerer(by, "Bead's identity realm") + " answered " + statusWords(status)
	} else if errors.As(err, &te) {
		return "Bead's identity realm could not be reached or gave no answer in time"
	}
	return "it failed before the realm answered"
}

// incidentPage shows a stored incident to the session that met it; anyone else gets 404, as for an id
// that does not exist, so nothing tells them apart.
func (s *Server) incidentPage(c *fiber.Ctx) error {
	sess := sessionOf(c)
	id := c.Params("incidentId")
	if sess == nil || !validIncidentID(id) {
		return notFound("This incident")
	}
	data, err := s.store.LoadIncident(c.UserContext(), sess.ID, id)
	if errors.Is(err, session.ErrNotFound) {
		return notFound("This incident")
	} else if err != nil {
		return storeUnavailable(err)
	}
	var inc incidentRecord
	if err := json.Unmarshal(data, &inc); err != nil {
		return notFound("This incident")
	}
	c.Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.Incident(s.incidentView(c, &inc, inc.ID)))
}

func validIncidentID(id string) bool {
	if len(id) != 22 {
		return false
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (s *Server) incidentView(c *fiber.Ctx, inc *incidentRecord, id string) views.IncidentView {
	d := inc.Diagnosis
	info, _ := diagnose.LookupCause(d.Cause)
	v := views.IncidentView{
		Page:         s.page(c, "Why the request failed"),
		ID:           id,
		At:           inc.At.Format(time.RFC3339) + " (UTC)",
		Summary:      d.Summary,
		Cause:        d.Cause,
		CauseTitle:   firstNonEmpty(info.Title, "Bead refused the request"),
		Confidence:   d.Confidence,
		HelpURL:      "/help/403#" + d.Cause,
		RequestID:    inc.RequestID,
		Status:       inc.Status,
		StatusText:   http.StatusText(inc.Status),
		BeadAnswer:   inc.BeadAnswer,
		StatusReason: inc.StatusReason,
		Fix:          d.Fix,
		Tried:        inc.Tried,
		Bundle:       inc.Bundle,
	}
	for _, e := range d.Evidence {
		v.Evidence = append(v.Evidence, views.IncidentEvidence{Fact: e.Fact, Source: e.Source})
	}
	for _, ch := range d.Checks {
		v.Checks = append(v.Checks, views.IncidentCheck{Name: ch.Name, Status: ch.Status, Finding: ch.Finding})
	}
	return v
}

// helpSections is /help/403: the diagnosis package's cause table, then the causes only this server's
// own refusals have.
func helpSections() []views.HelpCause {
	var out []views.HelpCause
	seen := map[string]bool{}
	for _, ci := range diagnose.Causes() {
		out = append(out, views.HelpCause{Code: ci.Code, Title: ci.Title, Meaning: ci.Meaning, Fix: strings.Join(ci.Fix, " ")})
		seen[ci.Code] = true
	}
	for _, ci := range localCauses {
		if !seen[ci.Code] {
			out = append(out, views.HelpCause{Code: ci.Code, Title: ci.Title, Meaning: ci.Meaning, Fix: ci.Fix})
		}
	}
	return out
}
