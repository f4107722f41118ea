package main

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"beadbff/bff/sandbox"
)

// fullJWT matches a whole JWT (header, payload and signature): the access or refresh token itself. A
// support bundle's 50-character prefix never holds all three parts.
var fullJWT = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)

// Each sandbox fault and each misconfiguration, end to end through the real server: the right cause in
// problem+json and on the incident page, the incident visible to its own session only, and no token,
// password or secret in any answer, page or log line.
func TestDiagnosisEndToEnd(t *testing.T) {
	tests := []struct {
		name   string
		vars   map[string]string
		faults []map[string]any
		// call is what the front-end app does after logging in as terminal 0.
		call   func(e *env, c *http.Client) reply
		status int
		cause  string
		local  bool // refused here: nothing went to Bead, so no support bundle
	}{
		{name: "WAF in front of Bead", faults: []map[string]any{{"kind": "waf_block", "count": 2}},
			call: create, status: http.StatusBadGateway, cause: "blocked_before_bead"},
		{name: "Authorization stripped on the way", faults: []map[string]any{{"kind": "strip_authorization", "count": 2}},
			call: create, status: http.StatusBadGateway, cause: "token_missing"},
		{name: "rate limited", faults: []map[string]any{{"kind": "rate_limit", "count": 1}},
			call: create, status: http.StatusTooManyRequests, cause: "rate_limited"},
		{name: "Bead too slow", vars: map[string]string{"BEAD_TIMEOUT": "300ms"}, faults: []map[string]any{{"kind": "slow", "count": 1, "delayMs": 1000}},
			call: create, status: http.StatusGatewayTimeout, cause: "bead_unavailable"},
		{name: "client bead-integrator", vars: map[string]string{"BEAD_CLIENT_ID": "bead-integrator"},
			call: create, status: http.StatusForbidden, cause: "wrong_client_or_scope"},
		{name: "the prod realm against the sandbox API", vars: map[string]string{"BEAD_IDENTITY_URL": "{sandbox}/realms/prod"},
			call: create, status: http.StatusForbidden, cause: "realm_mismatch"},
		{name: "a body naming another terminal", call: func(e *env, c *http.Client) reply {
			before := e.apiRequests()
			r := e.api(c, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "1", "reference": "x", "terminalId": e.sandbox.Terminals()[2].TerminalID})
			if n := e.apiRequests() - before; n != 0 {
				e.t.Errorf("%v calls reached Bead for a body naming another terminal, want none", n)
			}
			return r
		}, status: http.StatusForbidden, cause: "terminal_mismatch", local: true},
		{name: "another terminal's trackingId", call: func(e *env, c *http.Client) reply {
			other := e.client()
			e.login(other, 2)
			r := e.api(other, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "4.00", "reference": "theirs"})
			id, _ := r.json(e.t)["trackingId"].(string)
			return e.api(c, "GET", "/api/v1/payments/"+id, nil)
		}, status: http.StatusForbidden, cause: "terminal_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range tt.vars {
				vars[k] = v
			}
			e := startEnvWith(t, vars)
			term := e.sandbox.Terminals()[0]
			c := e.client()
			e.login(c, 0)
			for _, f := range tt.faults {
				e.sb("POST", "/_sandbox/faults", f)
			}
			r := tt.call(e, c)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			p := r.json(t)
			if p["cause"] != tt.cause {
				t.Fatalf("cause %v, want %s: %s", p["cause"], tt.cause, r.body)
			}
			id, _ := p["incidentId"].(string)
			if id == "" || p["checks"] == nil {
				t.Fatalf("no incidentId or checks: %s", r.body)
			}
			page := e.do(c, "GET", e.url+"/help/incidents/"+id, nil, nil)
			if page.status != http.StatusOK || !bytes.Contains(page.body, []byte(`data-testid="incident-cause">`+tt.cause+`<`)) {
				t.Errorf("incident page: %d, want it to name %s", page.status, tt.cause)
			}
			wants := []string{`data-testid="evidence-row"`, `data-testid="check-row"`}
			if !tt.local && tt.cause != "rate_limited" {
				wants = append(wants, `data-testid="support-bundle"`, `data-testid="incident-tried"`)
			}
			for _, want := range wants {
				if !bytes.Contains(page.body, []byte(want)) {
					t.Errorf("incident page lacks %s", want)
				}
			}
			// Only the session that met the incident sees it.
			stranger := e.client()
			e.login(stranger, 1)
			for who, cl := range map[string]*http.Client{"another session": stranger, "an anonymous caller": e.client()} {
				if r := e.do(cl, "GET", e.url+"/help/incidents/"+id, nil, nil); r.status != http.StatusNotFound || bytes.Contains(r.body, []byte(tt.cause)) {
					t.Errorf("%s sees the incident: %d", who, r.status)
				}
			}
			if r := e.do(c, "GET", e.url+"/help/incidents/"+strings.Repeat("A", 22), nil, nil); r.status != http.StatusNotFound {
				t.Errorf("an unknown incident id: %d, want 404", r.status)
			}
			if r := e.do(c, "GET", e.url+"/help/incidents/..%2F..%2Fetc", nil, nil); r.status != http.StatusNotFound {
				t.Errorf("a malformed incident id: %d, want 404", r.status)
			}
			// Nothing secret anywhere: answers, the incident page, the log.
			for what, text := range map[string]string{"answer": string(r.body), "incident page": string(page.body), "log": e.logs.String()} {
				if m := fullJWT.FindString(text); m != "" {
					t.Errorf("%s holds a whole token %.60s…", what, m)
				}
				if strings.Contains(text, term.Password) {
					t.Errorf("%s holds the password", what)
				}
				if strings.Contains(text, e.sandbox.SigningSecret()) {
					t.Errorf("%s holds the webhook secret", what)
				}
			}
			if !strings.Contains(e.logs.String(), `"msg":"incident"`) || !strings.Contains(e.logs.String(), `"incidentId":"`+id+`"`) {
				t.Error("no structured log line for the incident")
			}
			metrics := e.do(c, "GET", e.url+"/metrics", nil, nil)
			if !bytes.Contains(metrics.body, []byte(`beadbff_incidents_total{cause="`+tt.cause+`"} 1`)) {
				t.Errorf("/metrics does not count the incident under %s", tt.cause)
			}
		})
	}
}

func create(e *env, c *http.Client) reply {
	return e.api(c, "POST", "/api/v1/payments", map[string]any{"requestedAmount": "2.00", "reference": "diagnosed"})
}

// startEnvWith starts an env whose variables may name the sandbox's URL as {sandbox}, and whose webhook
// secret is the sandbox's, so that the secret scan has something to find if it leaked.
func startEnvWith(t *testing.T, vars map[string]string) *env {
	t.Helper()
	e := startEnv(t, envOptions{noRedis: true, lateVars: func(sandboxURL string, sb *sandbox.Sandbox) map[string]string {
		out := map[string]string{"BEAD_WEBHOOK_SECRET": sb.SigningSecret()}
		for k, v := range vars {
			out[k] = strings.ReplaceAll(v, "{sandbox}", sandboxURL)
		}
		return out
	}})
	return e
}
