// Command beadbff is the server merchants put between browsers and Bead. With no sub-command it serves;
// -check-config validates the configuration; doctor runs Bead's 403 checklist (see CONTRACT.md).
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"beadbff/bff"
	"beadbff/bff/bead"
	"beadbff/bff/sandbox"
	"beadbff/config"
	"beadbff/session"
	"beadbff/views"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "beadbff:", err)
		os.Exit(1)
	}
}

// exitError carries an exit code of CONTRACT.md (2: could not run / bad configuration).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// run is the whole program, so that tests can start it with their own environment and stop it by
// cancelling ctx.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("beadbff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	checkConfig := fs.Bool("check-config", false, "validate the configuration, print every problem, exit 0 or 2")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: beadbff [-check-config] | beadbff doctor [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	cfg := config.Load(getenv)
	problems := cfg.Validate()

	switch {
	case *checkConfig:
		if len(problems) > 0 {
			fmt.Fprintln(stdout, "configuration problems:")
			for _, p := range problems {
				fmt.Fprintln(stdout, "  -", p)
			}
			return exitError{code: 2}
		}
		fmt.Fprintln(stdout, "configuration OK")
		fmt.Fprint(stdout, cfg.String())
		return nil
	case fs.NArg() > 0 && fs.Arg(0) == "doctor":
		if len(problems) > 0 {
			return exitError{code: 2, msg: problems.Error()}
		}
		return doctor(ctx, cfg, fs.Args()[1:], stdout, stderr)
	case fs.NArg() > 0:
		fs.Usage()
		return exitError{code: 2, msg: "unknown command " + fs.Arg(0)}
	}
	if len(problems) > 0 {
		return exitError{code: 2, msg: problems.Error()}
	}
	return serve(ctx, cfg, stdout, stderr)
}

func newLogger(cfg *config.Config, stderr io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(stderr, opts))
}

func serve(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	if stderr == os.Stderr { // go-redis's logger is per process: only the real program takes it over
		session.RouteRedisLogs(log)
	}

	// Demo mode: the embedded sandbox, on its own loopback address like the real thing.
	var demo []views.DemoCredential
	if cfg.Demo {
		// The sandbox sends its signed status callbacks here, signed with the secret it tells us.
		sb, stopSandbox, err := startSandbox(cfg.SandboxAddr, "http://"+cfg.Addr+"/webhooks/bead", log)
		if err != nil {
			return fmt.Errorf("demo mode: start the embedded sandbox on BFF_SANDBOX_ADDR=%s: %w", cfg.SandboxAddr, err)
		}
		defer stopSandbox()
		cfg.BeadAPIURL = "http://" + cfg.SandboxAddr
		cfg.BeadIdentityURL = cfg.BeadAPIURL + "/realms/nonprod"
		if secret, err := base64.StdEncoding.DecodeString(sb.SigningSecret()); err == nil {
			cfg.WebhookSecrets = append(cfg.WebhookSecrets, secret)
		}
		if cfg.TerminalUsername == "" && len(sb.Terminals()) > 0 {
			// The demo's service account is the first sandbox terminal, so its embedded checkouts and
			// webhook confirmations work with nobody logged in.
			first := sb.Terminals()[0]
			cfg.TerminalUsername, cfg.TerminalPassword = first.Username, first.Password
		}
		for _, t := range sb.Terminals() {
			label := t.Label
			if t.Username == cfg.TerminalUsername {
				// Said on the login page: this terminal's checkouts and webhooks work with nobody logged
				// in, and its last staff logout keeps the realm session the service account uses.
				label += " (also the server's service account)"
			}
			demo = append(demo, views.DemoCredential{Label: label, Username: strings.TrimSuffix(t.Username, cfg.UsernameSuffix), Password: t.Password})
		}
		log.Warn("demo mode: BEAD_API_URL is unset, so beadbff talks to its embedded Bead sandbox", "sandbox", cfg.BeadAPIURL,
			"webhooks", "the sandbox's callbacks come to /webhooks/bead, signed with a secret it handed over at start",
			"serviceAccount", cfg.TerminalUsername)
	}

	keys := cfg.SessionKeys
	if len(keys) == 0 {
		key, err := session.GenerateKey()
		if err != nil {
			return err
		}
		keys, cfg.SessionKeysGenerated = [][]byte{key}, true
		log.Warn("SESSION_KEYS is unset: sessions are sealed with a key generated for this process and end when it stops")
	}
	ring, err := session.NewKeyring(keys...)
	if err != nil {
		return fmt.Errorf("SESSION_KEYS: %w", err)
	}
	opts := session.Options{Keyring: ring}
	var store session.Store
	if cfg.RedisURL == "" {
		log.Warn("REDIS_URL is unset: sessions are kept in this process's memory (one server only, lost at restart)")
		store, err = session.NewMemory(opts)
	} else {
		startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		store, err = session.NewRedis(startCtx, cfg.RedisURL, opts)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("session store (REDIS_URL): %w", err)
	}
	defer store.Close()

	client, err := newBeadClient(cfg, nil)
	if err != nil {
		return fmt.Errorf("bead client: %w", err)
	}
	if err := discover(ctx, client); err != nil {
		return fmt.Errorf("the identity realm at BEAD_IDENTITY_URL=%s does not answer: %w", cfg.BeadIdentityURL, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := bff.New(bff.Deps{Config: cfg, Logger: log, Store: store, Bead: client, Registry: reg, DemoCredentials: demo})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on BFF_ADDR=%s: %w", cfg.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	log.Info("beadbff listening", "addr", ln.Addr().String(), "publicUrl", cfg.PublicURL.String(), "demo", cfg.Demo)
	fmt.Fprintf(stdout, "beadbff listening on %s (public URL %s)\n", url, cfg.PublicURL)

	served := make(chan error, 1)
	go func() { served <- srv.App().Listener(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight")
	if err := srv.Shutdown(15 * time.Second); err != nil {
		log.Error("shutdown", "err", err)
	}
	<-served
	log.Info("stopped")
	return nil
}

// newBeadClient is the Bead client of this configuration (now nil: the real clock).
func newBeadClient(cfg *config.Config, now func() time.Time) (*bead.Client, error) {
	return bead.New(bead.Config{
		APIURL:         cfg.BeadAPIURL,
		IdentityURL:    cfg.BeadIdentityURL,
		ClientID:       cfg.BeadClientID,
		Scopes:         cfg.Scopes(),
		UsernameSuffix: cfg.UsernameSuffix,
		Timeout:        cfg.BeadTimeout,
		Now:            now,
	})
}

// discover fetches the realm's discovery document, retrying briefly: a server that cannot reach its realm
// fails before it listens, with a message naming the variable.
func discover(ctx context.Context, c *bead.Client) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.Discover(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}

func startSandbox(addr, webhookURL string, log *slog.Logger) (*sandbox.Sandbox, func(), error) {
	sb, err := sandbox.New(sandbox.Options{Logger: log.With("component", "sandbox"), WebhookURL: webhookURL})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		sb.Close()
		return nil, nil, err
	}
	hs := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		sb.Close()
	}
	return sb, stop, nil
}
