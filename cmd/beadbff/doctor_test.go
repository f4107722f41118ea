package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"beadbff/bff/diagnose"
	"beadbff/bff/sandbox"
	"beadbff/config"
)

// doctorWorld is a sandbox on a loopback port and the environment that points doctor at it.
type doctorWorld struct {
	url      string
	terminal sandbox.Terminal
}

func newDoctorWorld(t *testing.T) *doctorWorld {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	hs := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { hs.Close(); sb.Close() })
	return &doctorWorld{url: hs.URL, terminal: sb.Terminals()[0]}
}

// vars is the environment of a doctor run against the sandbox, with the terminal's bare id as the
// username (so that BEAD_USERNAME_SUFFIX is exercised) and edits applied ("" deletes a variable).
func (w *doctorWorld) vars(edits map[string]string) map[string]string {
	v := map[string]string{
		"BEAD_API_URL":           w.url,
		"BEAD_IDENTITY_URL":      w.url + "/realms/nonprod",
		"BEAD_TERMINAL_USERNAME": w.terminal.TerminalID,
		"BEAD_TERMINAL_PASSWORD": w.terminal.Password,
		"BEAD_TIMEOUT":           "3s",
	}
	for k, val := range edits {
		if val == "" {
			delete(v, k)
		} else {
			v[k] = val
		}
	}
	return v
}

func (w *doctorWorld) fault(t *testing.T, kind string, count int) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"kind": kind, "count": count})
	resp, err := http.Post(w.url+"/_sandbox/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fault %s: %d", kind, resp.StatusCode)
	}
}

// doctorRun is one run's outcome.
type doctorRun struct {
	code           int
	stdout, stderr string
	msg            string // the exitError's message, which main prints on stderr
}

// all is everything the run wrote anywhere, for the secret scan.
func (r doctorRun) all() string { return r.stdout + "\n" + r.stderr + "\n" + r.msg }

func (r doctorRun) report(t *testing.T) doctorReport {
	t.Helper()
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, r.stdout)
	}
	return rep
}

func outcome(t *testing.T, err error, stdout, stderr *bytes.Buffer) doctorRun {
	t.Helper()
	r := doctorRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code, r.msg = ee.code, ee.msg
	default:
		t.Fatalf("doctor returned %v, not an exitError", err)
	}
	return r
}

// runDoctorCmd runs `beadbff doctor args...` through run, as main does: configuration validation included.
func runDoctorCmd(t *testing.T, vars map[string]string, args ...string) doctorRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"doctor"}, args...), func(k string) string { return vars[k] }, &stdout, &stderr)
	return outcome(t, err, &stdout, &stderr)
}

// runDoctorWith runs doctor on a configuration that skipped validation, with its own clock.
func runDoctorWith(t *testing.T, cfg *config.Config, now func() time.Time, args ...string) doctorRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := runDoctor(ctx, cfg, args, &stdout, &stderr, now)
	return outcome(t, err, &stdout, &stderr)
}

func checksByID(rep doctorReport) map[string]string {
	m := map[string]string{}
	for _, c := range rep.Checks {
		m[c.ID] = c.Status
	}
	return m
}

func TestDoctorAgainstTheSandbox(t *testing.T) {
	w := newDoctorWorld(t)
	tests := []struct {
		name      string
		vars      map[string]string
		fault     string
		wantCode  int
		wantCause string
		wantCheck map[string]string // check id -> status
	}{
		{name: "healthy", wantCode: 0,
			wantCheck: map[string]string{"discovery": "passed", "token": "passed", "headers": "passed", "jwt": "passed", "probe": "passed", "middlebox": "passed"}},
		{name: "wrong password", vars: map[string]string{"BEAD_TERMINAL_PASSWORD": "not-the-password"},
			wantCode: 1, wantCause: diagnose.CauseInvalidCredentials, wantCheck: map[string]string{"discovery": "passed", "token": "failed"}},
		{name: "wrong username suffix", vars: map[string]string{"BEAD_USERNAME_SUFFIX": "@example.com"},
			wantCode: 1, wantCause: diagnose.CauseInvalidCredentials, wantCheck: map[string]string{"token": "failed"}},
		{name: "client bead-integrator", vars: map[string]string{"BEAD_CLIENT_ID": "bead-integrator"},
			wantCode: 1, wantCause: diagnose.CauseWrongClientOrScope, wantCheck: map[string]string{"token": "passed", "jwt": "failed", "probe": "failed"}},
		{name: "a client the realm does not know", vars: map[string]string{"BEAD_CLIENT_ID": "bead-terminl"},
			wantCode: 1, wantCause: diagnose.CauseWrongClientOrScope, wantCheck: map[string]string{"token": "failed"}},
		{name: "identity pointing at the prod realm", vars: map[string]string{"BEAD_IDENTITY_URL": w.url + "/realms/prod"},
			wantCode: 1, wantCause: diagnose.CauseRealmMismatch, wantCheck: map[string]string{"discovery": "passed", "token": "passed", "probe": "failed"}},
		{name: "a realm that does not exist", vars: map[string]string{"BEAD_IDENTITY_URL": w.url + "/realms/staging"},
			wantCode: 1, wantCause: diagnose.CauseRealmMismatch, wantCheck: map[string]string{"discovery": "failed"}},
		{name: "waf_block on the probe", fault: "waf_block",
			wantCode: 1, wantCause: diagnose.CauseBlockedBeforeBead, wantCheck: map[string]string{"token": "passed", "probe": "failed", "middlebox": "failed"}},
		{name: "rate_limit on the probe", fault: "rate_limit",
			wantCode: 1, wantCause: diagnose.CauseRateLimited, wantCheck: map[string]string{"probe": "failed"}},
		{name: "strip_authorization on the probe", fault: "strip_authorization",
			wantCode: 1, wantCause: diagnose.CauseTokenMissing, wantCheck: map[string]string{"headers": "failed", "middlebox": "failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != "" {
				w.fault(t, tt.fault, 1)
			}
			r := runDoctorCmd(t, w.vars(tt.vars), "-json")
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d (%s)\n%s\n%s", r.code, tt.wantCode, r.msg, r.stdout, r.stderr)
			}
			rep := r.report(t)
			if rep.Healthy != (tt.wantCode == 0) || rep.Diagnosis == nil || rep.Diagnosis.Cause != tt.wantCause {
				t.Errorf("healthy %v, diagnosis %+v; want cause %q", rep.Healthy, rep.Diagnosis, tt.wantCause)
			}
			got := checksByID(rep)
			for id, status := range tt.wantCheck {
				if got[id] != status {
					t.Errorf("check %s = %q, want %q\n%s", id, got[id], status, r.stdout)
				}
			}
			if tt.wantCode == 1 && !strings.Contains(r.msg, tt.wantCause) {
				t.Errorf("exit message %q does not name the cause", r.msg)
			}
			assertNoPassword(t, r, w.terminal.Password, "not-the-password")
		})
	}
}

// The text report: one line per check with its mark, then the diagnosis.
func TestDoctorTextReport(t *testing.T) {
	w := newDoctorWorld(t)

	healthy := runDoctorCmd(t, w.vars(nil))
	if healthy.code != 0 {
		t.Fatalf("exit %d: %s\n%s", healthy.code, healthy.msg, healthy.stdout)
	}
	for _, line := range []string{"✓ discovery ", "✓ token ", "✓ headers ", "✓ jwt ", "✓ probe ", "– resource ", "✓ middlebox ", "Healthy: Bead accepts this terminal's token."} {
		if !strings.Contains(healthy.stdout, line) {
			t.Errorf("healthy report lacks %q:\n%s", line, healthy.stdout)
		}
	}

	blocked := runDoctorCmd(t, w.vars(map[string]string{"BEAD_CLIENT_ID": "bead-integrator"}))
	for _, line := range []string{"✗ jwt        client bead-integrator is not bead-terminal", "✗ probe ",
		"Problem found: wrong_client_or_scope (high confidence)",
		"  - token client is bead-integrator; the payments API accepts bead-terminal  [token claim azp]",
		"What to do:\n  1. Set BEAD_CLIENT_ID=bead-terminal (it is bead-integrator now) and log in again."} {
		if !strings.Contains(blocked.stdout, line) {
			t.Errorf("report lacks %q:\n%s", line, blocked.stdout)
		}
	}
	assertNoPassword(t, healthy, w.terminal.Password)
	assertNoPassword(t, blocked, w.terminal.Password)
}

// BEAD_SCOPE without openid never reaches doctor through run: the configuration refuses it. Doctor on
// such a configuration (validation skipped) shows what the sandbox's realm and API make of it: a token
// with scope "profile email", which the payments API refuses with 403.
func TestDoctorScopeWithoutOpenID(t *testing.T) {
	w := newDoctorWorld(t)
	vars := w.vars(map[string]string{"BEAD_SCOPE": "profile email"})

	refused := runDoctorCmd(t, vars)
	if refused.code != 2 || !strings.Contains(refused.msg, "BEAD_SCOPE") {
		t.Errorf("run: exit %d %q, want 2 naming BEAD_SCOPE", refused.code, refused.msg)
	}

	cfg := config.Load(func(k string) string { return vars[k] })
	r := runDoctorWith(t, cfg, time.Now, "-json")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s\n%s", r.code, r.msg, r.stdout)
	}
	d := r.report(t).Diagnosis
	if d.Cause != diagnose.CauseWrongClientOrScope {
		t.Errorf("cause %q, want %q", d.Cause, diagnose.CauseWrongClientOrScope)
	}
	if want := (diagnose.Evidence{Fact: `token scope is "profile email": no openid`, Source: "token claim scope"}); !containsEvidence(d.Evidence, want) {
		t.Errorf("missing %+v in %+v", want, d.Evidence)
	}
	assertNoPassword(t, r, w.terminal.Password)
}

// This server's clock two hours ahead: Bead accepts the token, but doctor reports the skew that would
// make the server take every fresh token for an expired one.
func TestDoctorClockSkew(t *testing.T) {
	w := newDoctorWorld(t)
	vars := w.vars(nil)
	cfg := config.Load(func(k string) string { return vars[k] })
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	r := runDoctorWith(t, cfg, func() time.Time { return time.Now().Add(2 * time.Hour) }, "-json")
	rep := r.report(t)
	if r.code != 1 || rep.Diagnosis.Cause != diagnose.CauseClockSkew {
		t.Fatalf("exit %d, cause %q; want 1, clock_skew\n%s", r.code, rep.Diagnosis.Cause, r.stdout)
	}
	if got := checksByID(rep); got["probe"] != "passed" || got["jwt"] != "failed" {
		t.Errorf("checks %v: want the probe passed and the JWT check failed", got)
	}
}

func TestDoctorBeadUnreachable(t *testing.T) {
	w := newDoctorWorld(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	r := runDoctorCmd(t, w.vars(map[string]string{"BEAD_API_URL": deadURL, "BEAD_IDENTITY_URL": deadURL + "/realms/nonprod"}), "-json")
	if r.code != 1 || r.report(t).Diagnosis.Cause != diagnose.CauseBeadUnavailable {
		t.Errorf("exit %d %q, want 1 bead_unavailable\n%s", r.code, r.msg, r.stdout)
	}
}

// Exit 2: doctor could not run at all, and says why.
func TestDoctorCannotRun(t *testing.T) {
	w := newDoctorWorld(t)
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		wantMsg []string
	}{
		{"no credentials", w.vars(map[string]string{"BEAD_TERMINAL_USERNAME": "", "BEAD_TERMINAL_PASSWORD": ""}), nil,
			[]string{"BEAD_TERMINAL_USERNAME", "BEAD_TERMINAL_PASSWORD"}},
		{"demo mode: no Bead configured", map[string]string{"BEAD_TERMINAL_USERNAME": "t", "BEAD_TERMINAL_PASSWORD": "p"}, nil,
			[]string{"BEAD_API_URL", "BEAD_IDENTITY_URL"}},
		{"an unknown flag", w.vars(nil), []string{"-verbose"}, nil},
		{"a stray argument", w.vars(nil), []string{"now"}, []string{"unexpected argument now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDoctorCmd(t, tt.vars, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2: %q\n%s", r.code, r.msg, r.stdout)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(r.msg, want) {
					t.Errorf("message %q does not name %s", r.msg, want)
				}
			}
			if r.stdout != "" {
				t.Errorf("a run that could not start printed a report:\n%s", r.stdout)
			}
			assertNoPassword(t, r, w.terminal.Password)
		})
	}
}

// assertNoPassword: the terminal's password is never printed, in any form a report could carry it.
func assertNoPassword(t *testing.T, r doctorRun, passwords ...string) {
	t.Helper()
	out := r.all()
	for _, p := range passwords {
		for _, form := range []string{p, strings.ReplaceAll(p, "-", "%2D"), jsonQuoted(p)} {
			if strings.Contains(out, form) {
				t.Errorf("the output contains the password (as %q)", form)
			}
		}
	}
}

func jsonQuoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func containsEvidence(ev []diagnose.Evidence, want diagnose.Evidence) bool {
	for _, e := range ev {
		if e == want {
			return true
		}
	}
	return false
}
