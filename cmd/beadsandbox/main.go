// Command beadsandbox runs the Bead sandbox (package bff/sandbox) on its own address: the
// identity realms, the payments API, hosted payment pages, webhooks and fault injection, so that
// a beadbff server, a test or a person with curl can be pointed at a Bead that needs no network.
//
//	beadsandbox -addr 127.0.0.1:8081 -webhook-url http://127.0.0.1:8080/webhooks/bead
//
// The signing secret may also come from BEAD_WEBHOOK_SECRET (the first of a comma-separated
// list), the variable beadbff reads, so one shell setting serves both programs and the secret
// stays out of the process list.
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
	"text/tabwriter"
	"time"

	"beadbff/bff/sandbox"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "beadsandbox:", err)
		os.Exit(1)
	}
}

// run starts the sandbox and serves until ctx ends or SIGINT/SIGTERM arrives.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("beadsandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	webhookURL := fs.String("webhook-url", "", "where status callbacks go unless a terminal registers its own URL")
	webhookSecret := fs.String("webhook-secret", "", "base64 signing secret (default: BEAD_WEBHOOK_SECRET, else generated)")
	accessTTL := fs.Duration("access-ttl", 3600*time.Second, "access-token lifetime")
	refreshTTL := fs.Duration("refresh-ttl", 36000*time.Second, "refresh-token lifetime")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	secretText, secretFrom := *webhookSecret, "-webhook-secret"
	if secretText == "" {
		secretText, _, _ = strings.Cut(getenv("BEAD_WEBHOOK_SECRET"), ",")
		secretFrom = "BEAD_WEBHOOK_SECRET"
	}
	var secret []byte
	if secretText = strings.TrimSpace(secretText); secretText != "" {
		var err error
		if secret, err = base64.StdEncoding.DecodeString(secretText); err != nil || len(secret) == 0 {
			return fmt.Errorf("%s: want non-empty standard base64", secretFrom) // never echo the value
		}
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sb, err := sandbox.New(sandbox.Options{
		AccessTokenTTL:  *accessTTL,
		RefreshTokenTTL: *refreshTTL,
		WebhookURL:      *webhookURL,
		WebhookSecret:   secret,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	defer sb.Close() // after the server has stopped: no new status change can start a delivery

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           sb.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: the slow fault may hold an answer back for up to two minutes.
	}
	printBanner(stdout, "http://"+displayAddr(ln.Addr()), sb, *webhookURL, secret != nil)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("beadsandbox shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

func printBanner(w io.Writer, base string, sb *sandbox.Sandbox, webhookURL string, fixedSecret bool) {
	fmt.Fprintf(w, "Bead sandbox listening on %s\n\n", base)
	fmt.Fprintf(w, "  BEAD_API_URL=%s\n", base)
	fmt.Fprintf(w, "  BEAD_IDENTITY_URL=%s/realms/nonprod\n", base)
	fmt.Fprintf(w, "  production-like realm (its tokens are refused): %s/realms/prod\n", base)
	fmt.Fprintf(w, "  hosted payment pages: %s/pay/{paymentPageId}\n", base)
	fmt.Fprintf(w, "  controls: %s/_sandbox/terminals, /_sandbox/faults, /_sandbox/stats\n\n", base)

	fmt.Fprintln(w, "Demo terminals (client_id bead-terminal, scope \"openid profile email\"):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  merchant\tterminal\tusername\tpassword")
	for _, t := range sb.Terminals() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.MerchantName, t.Label, t.Username, t.Password)
	}
	tw.Flush()

	if webhookURL == "" {
		webhookURL = "none (-webhook-url, or PUT /Terminals/{terminalId}/webhook)"
	}
	secret := "generated; PUT /Terminals/{terminalId}/webhook returns it"
	if fixedSecret {
		secret = "fixed by -webhook-secret or BEAD_WEBHOOK_SECRET"
	}
	fmt.Fprintf(w, "\nWebhooks: %s\nSigning secret: %s\n", webhookURL, secret)
}
