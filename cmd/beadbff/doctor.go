package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
	"beadbff/config"
)

// doctor runs Bead's 403 debug checklist from the command line against the configured Bead, with the
// service credentials of one terminal: the realm's discovery document, a password grant, the token's
// claims judged, the simple-endpoint probe (GET /currencies), and a diagnosis of whatever failed. Exit
// codes are CONTRACT.md's: 0 healthy, 1 a problem found, 2 it could not run.
func doctor(ctx context.Context, cfg *config.Config, args []string, stdout, stderr io.Writer) error {
	return runDoctor(ctx, cfg, args, stdout, stderr, time.Now)
}

// Doctor's own steps, before the article's checklist.
const (
	checkDiscovery = "discovery"
	checkToken     = "token"
)

// doctorReport is what doctor prints, as text or with -json.
type doctorReport struct {
	Healthy   bool                `json:"healthy"`
	Target    doctorTarget        `json:"target"`
	Checks    []diagnose.Check    `json:"checks"`
	Diagnosis *diagnose.Diagnosis `json:"diagnosis,omitempty"`
}

// doctorTarget is the Bead doctor talked to. The password is never part of it.
type doctorTarget struct {
	APIURL      string `json:"apiUrl"`
	IdentityURL string `json:"identityUrl"`
	ClientID    string `json:"clientId"`
	Scope       string `json:"scope"`
	Username    string `json:"username"`
}

// runDoctor is doctor with its clock injected, so that a test can put this server's clock off.
func runDoctor(ctx context.Context, cfg *config.Config, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("beadbff doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report (checks and diagnosis) as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: beadbff doctor [-json]")
		fmt.Fprintln(stderr, "Runs Bead's 403 checklist against BEAD_API_URL / BEAD_IDENTITY_URL with BEAD_TERMINAL_USERNAME and BEAD_TERMINAL_PASSWORD.")
		fmt.Fprintln(stderr, "Exit status: 0 healthy, 1 a problem found, 2 it could not run.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError{code: 2, msg: "beadbff doctor: unexpected argument " + fs.Arg(0)}
	}
	// Demo mode's embedded sandbox is always healthy, and is not the Bead an operator wants checked.
	if cfg.Demo {
		return exitError{code: 2, msg: "beadbff doctor checks a configured Bead: set BEAD_API_URL and BEAD_IDENTITY_URL " +
			"(for the standalone sandbox: BEAD_API_URL=http://127.0.0.1:8081 BEAD_IDENTITY_URL=http://127.0.0.1:8081/realms/nonprod)"}
	}
	var missing []string
	if cfg.TerminalUsername == "" {
		missing = append(missing, "BEAD_TERMINAL_USERNAME")
	}
	if cfg.TerminalPassword == "" {
		missing = append(missing, "BEAD_TERMINAL_PASSWORD")
	}
	if len(missing) > 0 {
		return exitError{code: 2, msg: "beadbff doctor needs the credentials of one terminal: set " + strings.Join(missing, " and ")}
	}
	client, err := newBeadClient(cfg, now)
	if err != nil {
		return exitError{code: 2, msg: "beadbff doctor: " + err.Error()}
	}

	rep := examine(ctx, client, cfg, now)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitError{code: 2, msg: "beadbff doctor: " + err.Error()}
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.Healthy {
		return exitError{code: 1, msg: "beadbff doctor: problem found: " + rep.Diagnosis.Cause}
	}
	return nil
}

// examine runs the steps in order. A step that fails ends the run, because every later step needs what
// it would have produced (the realm for the token, the token for the probe); its diagnosis says why.
func examine(ctx context.Context, client *bead.Client, cfg *config.Config, now func() time.Time) doctorReport {
	username := cfg.TerminalUsername
	if !strings.Contains(username, "@") {
		username += cfg.UsernameSuffix // what the client sends, shown so that a wrong suffix is visible
	}
	rep := doctorReport{Target: doctorTarget{
		APIURL: client.APIURL(), IdentityURL: client.IdentityURL(), ClientID: client.ClientID(),
		Scope: strings.Join(client.Scopes(), " "), Username: username,
	}}
	dcfg := diagnose.Config{ClientID: client.ClientID(), Scopes: client.Scopes(), IdentityURL: client.IdentityURL(), APIURL: client.APIURL()}
	fail := func(id, name string, in diagnose.Incident) doctorReport {
		d := diagnose.Diagnose(in)
		rep.Checks = append(rep.Checks, diagnose.Check{ID: id, Name: name, Status: diagnose.CheckFailed, Finding: d.Summary})
		rep.Checks = append(rep.Checks, d.Checks...)
		rep.Diagnosis = &d
		return rep
	}

	const discoveryName = "Realm discovery document"
	if err := client.Discover(ctx); err != nil {
		return fail(checkDiscovery, discoveryName, diagnose.Incident{Op: diagnose.OpDiscovery, Err: err, Config: dcfg, Now: now()})
	}
	rep.Checks = append(rep.Checks, diagnose.Check{ID: checkDiscovery, Name: discoveryName, Status: diagnose.CheckPassed,
		Finding: "the realm answers and names itself " + client.IdentityURL() + ", with a token endpoint"})

	const tokenName = "Token fetch (password grant)"
	tok, err := client.Login(ctx, cfg.TerminalUsername, cfg.TerminalPassword)
	if err != nil {
		return fail(checkToken, tokenName, diagnose.Incident{Op: diagnose.OpPasswordGrant, Err: err, Config: dcfg, Now: now()})
	}
	// The realm session doctor opened is closed again, best effort: a health check should leave nothing behind.
	defer func() { _ = client.Logout(context.WithoutCancel(ctx), tok.RefreshToken) }()
	info := diagnose.TokenInfoOf(tok)
	rep.Checks = append(rep.Checks, diagnose.Check{ID: checkToken, Name: tokenName, Status: diagnose.CheckPassed,
		Finding: fmt.Sprintf("the realm issued a token for %s: %d characters, valid until %s (expires_in %d s)",
			username, len(tok.AccessToken), tok.Expiry.UTC().Format(time.RFC3339), int(tok.Expiry.Sub(tok.ObtainedAt).Round(time.Second).Seconds()))})

	if info.Claims != nil {
		dcfg.TerminalID, dcfg.MerchantID = info.Claims.TerminalID, info.Claims.MerchantID
	}
	probeErr := client.Probe(ctx, tok.AccessToken)
	d := diagnose.Diagnose(diagnose.Incident{Op: diagnose.OpProbe, Err: probeErr, Token: info, Config: dcfg,
		Probe: diagnose.NewProbeResult(probeErr), Now: now()})
	rep.Checks = append(rep.Checks, d.Checks...)
	rep.Healthy = d.Healthy()
	rep.Diagnosis = &d
	return rep
}

var checkMarks = map[string]string{diagnose.CheckPassed: "✓", diagnose.CheckFailed: "✗", diagnose.CheckNotApplicable: "–"}

// printReport writes one line per check, then the diagnosis of what failed.
func printReport(w io.Writer, rep doctorReport) {
	t := rep.Target
	fmt.Fprintln(w, "beadbff doctor: Bead's 403 checklist")
	fmt.Fprintf(w, "  API      %s\n  realm    %s\n  client   %s, scope %q\n  terminal %s\n\n", t.APIURL, t.IdentityURL, t.ClientID, t.Scope, t.Username)
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "%s %-10s %s\n", checkMarks[c.Status], c.ID, c.Finding)
	}
	fmt.Fprintln(w)
	d := rep.Diagnosis
	if rep.Healthy {
		fmt.Fprintln(w, "Healthy: Bead accepts this terminal's token.")
		return
	}
	fmt.Fprintf(w, "Problem found: %s (%s confidence)\n%s\n", d.Cause, d.Confidence, d.Summary)
	if len(d.Evidence) > 0 {
		fmt.Fprintln(w, "\nEvidence:")
		for _, e := range d.Evidence {
			fmt.Fprintf(w, "  - %s  [%s]\n", e.Fact, e.Source)
		}
	}
	if len(d.Fix) > 0 {
		fmt.Fprintln(w, "\nWhat to do:")
		for i, f := range d.Fix {
			fmt.Fprintf(w, "  %d. %s\n", i+1, f)
		}
	}
	if d.AutoRecoverable {
		fmt.Fprintln(w, "\nThe server recovers from this by itself (refresh, retry or waiting); doctor does not retry.")
	}
}
