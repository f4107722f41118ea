package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/shopspring/decimal"
	"github.com/valyala/fasthttp"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
	"beadbff/bff/sandbox"
	"beadbff/session"
)

// These tests read incident pages as a person does, for every cause the diagnosis can produce, and check
// that each answer is named by whoever gave it: Bead, or a firewall or proxy in front of it. The failures
// are the sandbox's own where it has a fault for them, and otherwise the answers of a front (a load
// balancer's place) between this server and the sandbox.

// frontStep is what the front does with one create-payment call: answer it itself (true), or let it pass
// to the sandbox (false), perhaps after injecting a fault there.
type frontStep func(w http.ResponseWriter, r *http.Request) bool

// front passes every call through to the sandbox, except that each create payment first takes the next
// of its steps.
type front struct {
	mu    sync.Mutex
	steps []frontStep
	proxy *httputil.ReverseProxy
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var step frontStep
	f.mu.Lock()
	if r.Method == http.MethodPost && strings.EqualFold(r.URL.Path, "/payments/crypto") && len(f.steps) > 0 {
		step, f.steps = f.steps[0], f.steps[1:]
	}
	f.mu.Unlock()
	if step != nil && step(w, r) {
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// canned is an answer the front gives in place of the sandbox.
func canned(status int, header http.Header, body string) frontStep {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return true
	}
}

// Answers no sandbox fault gives.
var (
	proxys502 = canned(http.StatusBadGateway, http.Header{"Server": {"awselb/2.0"}, "Content-Type": {"text/html"}},
		"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>")
	proxys429 = canned(http.StatusTooManyRequests, http.Header{"Server": {"cloudflare"}, "Cf-Ray": {"8f1e2d3c4b5a6978-FRA"}, "Content-Type": {"text/html"}},
		"<html><head><title>429 Too Many Requests</title></head><body>Rate limited</body></html>")
	beads500 = canned(http.StatusInternalServerError, http.Header{"Server": {"Kestrel"}, "Content-Type": {"application/problem+json"}},
		`{"type":"https://tools.ietf.org/html/rfc9110#section-15.6.1","title":"An error occurred while processing your request.","status":500,"traceId":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}`)
	beads409 = canned(http.StatusConflict, http.Header{"Server": {"Kestrel"}, "Content-Type": {"application/problem+json"}},
		`{"title":"Conflict","status":409,"traceId":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}`)
	bare403 = canned(http.StatusForbidden, nil, "") // no body, no telling header: nothing says who wrote it
)

// pageWorld is one sandbox, the front before its API, and what a row needs to reach both.
type pageWorld struct {
	t        *testing.T
	sb       *sandbox.Sandbox
	sbURL    string
	front    *front
	frontURL string
}

func newPageWorld(t *testing.T) *pageWorld {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sbSrv := httptest.NewServer(sb.Handler())
	target, _ := url.Parse(sbSrv.URL)
	f := &front{proxy: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ErrorLog: log.New(io.Discard, "", 0)}} // a call this server gave up on (BEAD_TIMEOUT) is no error here
	frontSrv := httptest.NewServer(f)
	t.Cleanup(func() { frontSrv.Close(); sbSrv.Close(); sb.Close() })
	return &pageWorld{t: t, sb: sb, sbURL: sbSrv.URL, front: f, frontURL: frontSrv.URL}
}

// fault injects a sandbox fault (count 0: one that is not counted, such as expire_tokens).
func (w *pageWorld) fault(kind string, count int) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]any{"kind": kind, "count": count, "delayMs": 1000})
	resp, err := http.Post(w.sbURL+"/_sandbox/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("fault %s: %d", kind, resp.StatusCode)
	}
}

// faultFirst lets a create pass to the sandbox after injecting a fault: the retry meets something else
// than the first attempt did.
func (w *pageWorld) faultFirst(kind string, count int) frontStep {
	return func(http.ResponseWriter, *http.Request) bool { w.fault(kind, count); return false }
}

func (w *pageWorld) clearFaults() {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, w.sbURL+"/_sandbox/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
}

// beadClient is a Bead client of the sandbox (its API behind the front, its nonprod realm), changed by edit.
func (w *pageWorld) beadClient(edit func(*bead.Config)) *bead.Client {
	w.t.Helper()
	cfg := bead.Config{APIURL: w.frontURL, IdentityURL: w.sbURL + "/realms/nonprod", ClientID: "bead-terminal",
		Scopes: []string{"openid", "profile", "email"}, UsernameSuffix: "@beadpay.io", Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	c, err := bead.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// pageEnv is a server using one Bead client, and a session of one sandbox terminal.
type pageEnv struct {
	w    *pageWorld
	c    *bead.Client
	srv  *Server
	sess *session.Session
	tok  session.Token
}

// serve starts a server with the client edit makes, and a session of terminal holding a token of
// tokenOf (another terminal's token makes Bead refuse the session's own ids).
func (w *pageWorld) serve(edit func(*bead.Config), terminal, tokenOf int) *pageEnv {
	w.t.Helper()
	c := w.beadClient(edit)
	st, err := session.NewMemory(session.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	srv := terminalServer(w.t, st, c, map[string]string{"BEAD_API_URL": c.APIURL(), "BEAD_IDENTITY_URL": c.IdentityURL(),
		"BEAD_CLIENT_ID": c.ClientID(), "BEAD_SCOPE": strings.Join(c.Scopes(), " ")})
	terms := w.sb.Terminals()
	bt, err := c.Login(context.Background(), terms[tokenOf].Username, terms[tokenOf].Password)
	if err != nil {
		w.t.Fatalf("login: %v", err)
	}
	tok := tokenFromBead(bt)
	sess := seedSession(w.t, st, terms[terminal].TerminalID, terms[terminal].MerchantID, tok)
	return &pageEnv{w: w, c: c, srv: srv, sess: sess, tok: tok}
}

// create asks the server's API for a payment with body; it returns the answer's problem+json.
func (e *pageEnv) create(t *testing.T, body string) map[string]any {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/payments", strings.NewReader(body))
	req.Header.Set("Cookie", e.srv.cookieName()+"="+e.sess.ID)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF", "1")
	resp, err := e.srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("%d, not problem+json: %v", resp.StatusCode, err)
	}
	return p
}

// record stores an incident the way the server does for one it meets (recordIncident), for the causes
// the server answers plainly or never meets on a call of its own (a refused refresh, a local refusal).
func (e *pageEnv) record(t *testing.T, in diagnose.Incident) string {
	t.Helper()
	app := e.srv.App()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	if in.Config.TerminalID == "" {
		in.Config = diagnose.Config{ClientID: e.c.ClientID(), Scopes: e.c.Scopes(), IdentityURL: e.c.IdentityURL(), APIURL: e.c.APIURL(),
			TerminalID: e.sess.TerminalID, MerchantID: e.sess.MerchantID}
	}
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	p := e.srv.recordIncident(c, e.sess, e.tok, in)
	if p.IncidentID == "" {
		t.Fatal("incident not stored")
	}
	return p.IncidentID
}

// incidentPage is what the session sees on /help/incidents/{id}, and the incident as stored.
type incidentPage struct {
	doc    *goquery.Document
	stored incidentRecord
}

func (e *pageEnv) page(t *testing.T, id string) incidentPage {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/help/incidents/"+id, nil)
	req.Header.Set("Cookie", e.srv.cookieName()+"="+e.sess.ID)
	resp, err := e.srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("incident page: %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	data, err := e.srv.store.LoadIncident(context.Background(), e.sess.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	var inc incidentRecord
	if err := json.Unmarshal(data, &inc); err != nil {
		t.Fatal(err)
	}
	return incidentPage{doc: doc, stored: inc}
}

// text is the words of the element with testID ("" when there is none).
func (p incidentPage) text(testID string) string {
	return strings.Join(strings.Fields(p.doc.Find(`[data-testid="`+testID+`"]`).Text()), " ")
}

// tried is the "What this server already tried" list.
func (p incidentPage) tried() []string {
	var out []string
	p.doc.Find(`[data-testid="incident-tried"] li`).Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.Join(strings.Fields(s.Text()), " "))
	})
	return out
}

// namesBeadAsAnswerer catches words that make Bead (its API or realm) the one that answered or refused;
// "in front of Bead answered" names the proxy, so it is taken out first.
func namesBeadAsAnswerer(s string) string {
	return beadAnswered.FindString(strings.ReplaceAll(s, "in front of Bead", "in front of"))
}

var beadAnswered = regexp.MustCompile(`\bBead(?:'s identity realm)? (?:answered|refused|found|does not know|asked)\b`)

// Tried steps, as the page words them.
const (
	triedRefresh = "Refreshed the access token once."
	triedProbeOK = "Called a simple endpoint (GET /currencies) with the same token: it worked, so the refusal is about this request, not the token."
	triedProbeKO = "Called a simple endpoint (GET /currencies) with the same token: it failed too, so the refusal is global (token or firewall)."
	retried      = "Retried the same call once with the new token (same body, same Idempotency-Key); "
	firewall     = "a firewall or proxy in front of Bead (not Bead itself)"
)

func TestIncidentPageNamesWhoAnsweredForEveryCause(t *testing.T) {
	w := newPageWorld(t)
	terms := w.sb.Terminals()
	ctx := context.Background()
	type want struct {
		cause      string
		answeredBy string   // the diagnosis's AnsweredBy
		ours       int      // beadbff's status
		beadStatus string   // the page's "who answered what" ("" : not shown)
		tried      []string // "What this server already tried", exactly
	}
	tests := []struct {
		name     string
		edit     func(*bead.Config) // the server's Bead client
		tokenOf  int                // the session (of terminal 0) holds this terminal's token
		faults   map[string]int     // sandbox faults before the call
		steps    func() []frontStep // the front's steps for the creates
		body     string             // the API create's body
		incident madeIncident       // instead of a create: an incident the server records
		want     want
		reason   string // words the status line's reason must hold ("": not checked)
	}{
		{name: "waf_block: a WAF's 403, twice", faults: map[string]int{"waf_block": 2},
			want: want{diagnose.CauseBlockedBeforeBead, diagnose.AnsweredByProxy, 502, "A firewall or proxy in front of Bead (not Bead itself) answered 403 Forbidden",
				[]string{"Sent the call; " + firewall + " answered 403 Forbidden.", triedRefresh, retried + firewall + " answered 403 Forbidden.", triedProbeOK}}},
		{name: "expire_tokens, then waf_block on the retry: Bead's 401, a WAF's 403",
			faults: map[string]int{"expire_tokens": 0}, steps: func() []frontStep { return []frontStep{nil, w.faultFirst("waf_block", 1)} },
			want: want{diagnose.CauseBlockedBeforeBead, diagnose.AnsweredByProxy, 502, "A firewall or proxy in front of Bead (not Bead itself) answered 403 Forbidden",
				[]string{"Sent the call; Bead answered 401 Unauthorized.", triedRefresh, retried + firewall + " answered 403 Forbidden.", triedProbeOK}}},
		// Regression: this read "beadbff answered 403 Forbidden because Bead refused the request" beside a
		// diagnosis saying something on the way stripped the header: the request was broken, not judged.
		{name: "strip_authorization: Bead's 401, twice", faults: map[string]int{"strip_authorization": 2},
			reason: "the Authorization header it sent did not reach Bead intact: something between them removed or rewrote it, so the 401 Unauthorized that came back is no verdict on the terminal's token",
			want: want{diagnose.CauseTokenMissing, diagnose.AnsweredByBead, 502, "Bead answered 401 Unauthorized",
				[]string{"Sent the call; Bead answered 401 Unauthorized.", triedRefresh, retried + "Bead answered 401 Unauthorized.", triedProbeOK}}},
		{name: "expire_tokens, and again before the retry: Bead's 401, twice",
			faults: map[string]int{"expire_tokens": 0}, steps: func() []frontStep { return []frontStep{nil, w.faultFirst("expire_tokens", 0)} },
			want: want{diagnose.CauseTokenExpired, diagnose.AnsweredByBead, 403, "Bead answered 401 Unauthorized",
				[]string{"Sent the call; Bead answered 401 Unauthorized.", triedRefresh, retried + "Bead answered 401 Unauthorized.", triedProbeKO}}},
		{name: "expire_tokens twice with this server's clock 2 h ahead: clock skew",
			edit:   func(c *bead.Config) { c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } },
			faults: map[string]int{"expire_tokens": 0}, steps: func() []frontStep { return []frontStep{nil, w.faultFirst("expire_tokens", 0)} },
			want: want{diagnose.CauseClockSkew, diagnose.AnsweredByBead, 403, "Bead answered 401 Unauthorized",
				[]string{"Sent the call; Bead answered 401 Unauthorized.", triedRefresh, retried + "Bead answered 401 Unauthorized.", triedProbeKO}}},
		{name: "rate_limit: Bead's 429", faults: map[string]int{"rate_limit": 1},
			want: want{diagnose.CauseRateLimited, diagnose.AnsweredByBead, 429, "Bead answered 429 Too Many Requests",
				[]string{"Sent the call; Bead answered 429 Too Many Requests."}}},
		{name: "a CDN's HTML 429", steps: func() []frontStep { return []frontStep{proxys429} },
			want: want{diagnose.CauseRateLimited, diagnose.AnsweredByProxy, 429, "A firewall or proxy in front of Bead (not Bead itself) answered 429 Too Many Requests",
				[]string{"Sent the call; " + firewall + " answered 429 Too Many Requests."}}},
		{name: "slow: no answer within BEAD_TIMEOUT", edit: func(c *bead.Config) { c.Timeout = 300 * time.Millisecond }, faults: map[string]int{"slow": 1},
			want: want{diagnose.CauseBeadUnavailable, "", 504, "Bead gave no answer within BEAD_TIMEOUT",
				[]string{"Sent the call; Bead gave no answer within BEAD_TIMEOUT. A call that times out is not retried: it may have reached Bead."}}},
		{name: "a load balancer's HTML 502", steps: func() []frontStep { return []frontStep{proxys502} },
			want: want{diagnose.CauseBeadUnavailable, diagnose.AnsweredByProxy, 502, "A firewall or proxy in front of Bead (not Bead itself) answered 502 Bad Gateway",
				[]string{"Sent the call; " + firewall + " answered 502 Bad Gateway."}}},
		{name: "Bead's own 500", steps: func() []frontStep { return []frontStep{beads500} },
			want: want{diagnose.CauseBeadUnavailable, diagnose.AnsweredByBead, 502, "Bead answered 500 Internal Server Error",
				[]string{"Sent the call; Bead answered 500 Internal Server Error."}}},
		{name: "client bead-integrator: Bead refuses its tokens", edit: func(c *bead.Config) { c.ClientID = "bead-integrator" },
			want: want{diagnose.CauseWrongClientOrScope, diagnose.AnsweredByBead, 403, "Bead answered 403 Forbidden",
				[]string{"Sent the call; Bead answered 403 Forbidden.", triedRefresh, retried + "Bead answered 403 Forbidden.", triedProbeKO}}},
		{name: "prod realm tokens on the sandbox API", edit: func(c *bead.Config) { c.IdentityURL = w.sbURL + "/realms/prod" },
			want: want{diagnose.CauseRealmMismatch, diagnose.AnsweredByBead, 403, "Bead answered 401 Unauthorized",
				[]string{"Sent the call; Bead answered 401 Unauthorized.", triedRefresh, retried + "Bead answered 401 Unauthorized.", triedProbeKO}}},
		{name: "another terminal's token: Bead's bare 403", tokenOf: 2,
			want: want{diagnose.CauseTerminalMismatch, diagnose.AnsweredByBead, 403, "Bead answered 403 Forbidden",
				[]string{"Sent the call; Bead answered 403 Forbidden.", triedRefresh, retried + "Bead answered 403 Forbidden.", triedProbeOK}}},
		{name: "a body naming another terminal: refused here", body: `{"requestedAmount":"2.00","reference":"x","terminalId":"` + terms[2].TerminalID + `"}`,
			want: want{diagnose.CauseTerminalMismatch, "", 403, "Nothing was sent to Bead", nil}},
		{name: "a 403 with no sign of who wrote it", steps: func() []frontStep { return []frontStep{bare403, bare403} },
			want: want{diagnose.CauseTerminalMismatch, diagnose.AnsweredByUnknown, 403, "Bead or something in front of it answered 403 Forbidden",
				[]string{"Sent the call; Bead or something in front of it answered 403 Forbidden.", triedRefresh,
					retried + "Bead or something in front of it answered 403 Forbidden.", triedProbeOK}}},
		{name: "Bead's 409, which the diagnosis does not know", steps: func() []frontStep { return []frontStep{beads409} },
			reason: "the answer is not one it can act on",
			want: want{diagnose.CauseUnknown, diagnose.AnsweredByBead, 502, "Bead answered 409 Conflict",
				[]string{"Sent the call; Bead answered 409 Conflict."}}},
		// The server answers these plainly or never meets them on a call of its own; recorded, they read the same way.
		{name: "revoke_refresh_tokens: the realm refuses the refresh",
			incident: func(t *testing.T, e *pageEnv) diagnose.Incident {
				w.fault("revoke_refresh_tokens", 0)
				_, err := e.c.Refresh(ctx, e.tok.RefreshToken)
				return diagnose.Incident{Op: diagnose.OpRefreshGrant, Err: err, Recovery: diagnose.Recovery{RefreshErr: err}}
			},
			reason: "the terminal's Bead login has ended",
			want: want{diagnose.CauseRefreshTokenInvalid, diagnose.AnsweredByBead, 401, "Bead's identity realm answered 400 Bad Request",
				[]string{"Tried to refresh the access token; Bead's identity realm answered 400 Bad Request."}}},
		{name: "the realm unreachable for a refresh that was due",
			incident: func(t *testing.T, e *pageEnv) diagnose.Incident {
				dead := httptest.NewServer(http.NotFoundHandler())
				dead.Close()
				c := w.beadClient(func(c *bead.Config) { c.IdentityURL = dead.URL + "/realms/nonprod" })
				_, err := c.Refresh(ctx, e.tok.RefreshToken)
				return diagnose.Incident{Op: diagnose.OpRefreshGrant, Err: err, Recovery: diagnose.Recovery{RefreshErr: err}}
			},
			want: want{diagnose.CauseBeadUnavailable, "", 502, "Bead's identity realm could not be reached",
				[]string{"Tried to refresh the access token; Bead's identity realm could not be reached or gave no answer in time."}}},
		{name: "a wrong password",
			incident: func(t *testing.T, e *pageEnv) diagnose.Incident {
				_, err := e.c.Login(ctx, terms[0].Username, "not-the-password")
				return diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: err}
			},
			want:   want{diagnose.CauseInvalidCredentials, diagnose.AnsweredByBead, 401, "Bead's identity realm answered 401 Unauthorized", nil},
			reason: "Bead's identity realm refused the terminal's username or password"},
		{name: "a payment Bead does not know",
			incident: func(t *testing.T, e *pageEnv) diagnose.Incident {
				_, err := e.c.Tracking(ctx, e.tok.AccessToken, strings.Repeat("a", 32))
				return diagnose.Incident{Op: diagnose.OpTracking, Err: err, Token: diagnose.TokenInfoOf(&bead.Token{AccessToken: e.tok.AccessToken})}
			},
			want: want{diagnose.CauseNotFound, diagnose.AnsweredByBead, 404, "Bead answered 404 Not Found", nil}},
		{name: "an amount over Bead's limit",
			incident: func(t *testing.T, e *pageEnv) diagnose.Incident {
				_, err := e.c.CreatePayment(ctx, e.tok.AccessToken, bead.CreatePaymentRequest{TerminalID: terms[0].TerminalID, MerchantID: terms[0].MerchantID,
					RequestedAmount: decimal.RequireFromString("2000000.00"), Reference: "x"}, "over-limit-1")
				return diagnose.Incident{Op: diagnose.OpCreatePayment, Err: err}
			},
			want: want{diagnose.CauseInvalidRequest, diagnose.AnsweredByBead, 400, "Bead answered 400 Bad Request", nil}},
		{name: "local: no X-CSRF", incident: local(diagnose.LocalCSRFHeaderMissing),
			want: want{diagnose.CauseCSRFHeaderMissing, "", 403, "Nothing was sent to Bead", nil}},
		{name: "local: an origin not allowed", incident: local(diagnose.LocalCORSOriginNotAllowed),
			want: want{diagnose.CauseCORSOriginNotAllowed, "", 403, "Nothing was sent to Bead", nil}},
		{name: "local: a webhook's bad signature", incident: local(diagnose.LocalWebhookSignatureInvalid),
			want: want{diagnose.CauseWebhookSignatureInvalid, "", 403, "Nothing was sent to Bead", nil}},
		{name: "local: the session store down", incident: local(diagnose.LocalSessionStoreUnavailable),
			want: want{diagnose.CauseSessionStoreUnavailable, "", 503, "Nothing was sent to Bead", nil}},
		{name: "local: no session", incident: local(diagnose.LocalNotAuthenticated),
			want: want{diagnose.CauseNotAuthenticated, "", 401, "Nothing was sent to Bead", nil}},
		{name: "local: an invalid request", incident: local(diagnose.LocalInvalidRequest),
			want: want{diagnose.CauseInvalidRequest, "", 400, "Nothing was sent to Bead", nil}},
		{name: "local: no usable token", incident: local(diagnose.LocalTokenMissing), reason: "a bug here",
			want: want{diagnose.CauseTokenMissing, "", 500, "Nothing was sent to Bead", nil}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.want.cause] = true
		t.Run(tt.name, func(t *testing.T) {
			w.clearFaults()
			e := w.serve(tt.edit, 0, tt.tokenOf)
			for kind, n := range tt.faults {
				w.fault(kind, n)
			}
			if tt.steps != nil {
				w.front.steps = tt.steps()
			}
			t.Cleanup(func() { w.front.steps = nil })
			var id, detail string
			if tt.incident != nil {
				id = e.record(t, tt.incident(t, e))
			} else {
				p := e.create(t, firstNonEmpty(tt.body, `{"requestedAmount":"2.00","reference":"wording"}`))
				id, _ = p["incidentId"].(string)
				detail, _ = p["detail"].(string)
				if id == "" {
					t.Fatalf("no incident: %v", p)
				}
			}
			pg := e.page(t, id)
			d := pg.stored.Diagnosis
			got := want{d.Cause, d.AnsweredBy, pg.stored.Status, pg.text("incident-bead-status"), pg.tried()}
			if got.cause != tt.want.cause || got.answeredBy != tt.want.answeredBy || got.ours != tt.want.ours || got.beadStatus != tt.want.beadStatus {
				t.Errorf("cause %s, answered by %q, ours %d, page says %q;\nwant %s, %q, %d, %q", got.cause, got.answeredBy, got.ours, got.beadStatus,
					tt.want.cause, tt.want.answeredBy, tt.want.ours, tt.want.beadStatus)
			}
			if strings.Join(got.tried, "\n") != strings.Join(tt.want.tried, "\n") {
				t.Errorf("tried:\n  %s\nwant:\n  %s", strings.Join(got.tried, "\n  "), strings.Join(tt.want.tried, "\n  "))
			}
			summary, reason := pg.text("incident-summary"), pg.text("incident-status-reason")
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q, want it to say %q", reason, tt.reason)
			}
			if detail != "" && detail != summary {
				t.Errorf("problem+json detail %q, page summary %q", detail, summary)
			}
			if testing.Verbose() {
				t.Logf("%s\n%s\n%s", summary, pg.text("incident-statuses"), strings.Join(got.tried, "\n"))
			}
			if d.AnsweredBy == diagnose.AnsweredByProxy {
				for what, s := range map[string]string{"summary": summary, "status line": pg.text("incident-statuses"), "reason": reason, "detail": detail,
					"page title": pg.doc.Find("title").Text()} {
					if m := namesBeadAsAnswerer(s); m != "" {
						t.Errorf("a proxy answered, but the %s says %q: %q", what, m, s)
					}
				}
			}
		})
	}
	for _, c := range diagnose.Causes() {
		if !covered[c.Code] {
			t.Errorf("cause %s has no row: every cause the diagnosis can produce is read here", c.Code)
		}
	}
}

// madeIncident is an incident a row makes for the server to record (pageEnv.record).
type madeIncident func(t *testing.T, e *pageEnv) diagnose.Incident

// local is a refusal made here, as the server would diagnose it.
func local(kind string) madeIncident {
	return func(*testing.T, *pageEnv) diagnose.Incident {
		return diagnose.Incident{Op: "POST /api/v1/payments", Local: kind, LocalDetail: "refused here"}
	}
}
