package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunServesAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	env := map[string]string{"BEAD_WEBHOOK_SECRET": "c2FuZGJveC1zZWNyZXQ=,b2xkLXNlY3JldA=="}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-access-ttl", "90s"}, func(k string) string { return env[k] }, &stdout, &stderr)
	}()

	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v\nstderr: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no base URL printed; stdout: %s", stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	out := stdout.String()
	for _, want := range []string{
		"BEAD_API_URL=" + base,
		"BEAD_IDENTITY_URL=" + base + "/realms/nonprod",
		"5eadbeef00000000000a0001@beadpay.io",
		"sandbox-pass-a1",
		"fixed by -webhook-secret or BEAD_WEBHOOK_SECRET",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "c2FuZGJveC1zZWNyZXQ=") {
		t.Error("banner prints the signing secret")
	}

	resp, err := http.Get(base + "/_sandbox/terminals")
	if err != nil {
		t.Fatal(err)
	}
	var terminals []map[string]string
	err = json.NewDecoder(resp.Body).Decode(&terminals)
	resp.Body.Close()
	if err != nil || len(terminals) != 3 {
		t.Errorf("GET /_sandbox/terminals: %d terminals, err %v", len(terminals), err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := http.Get(base + "/_sandbox/terminals"); err == nil {
		t.Error("still serving after run returned")
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"secret not base64", []string{"-webhook-secret", "not base64!"}, nil, "-webhook-secret: want non-empty standard base64"},
		{"env secret not base64", nil, map[string]string{"BEAD_WEBHOOK_SECRET": "%%%"}, "BEAD_WEBHOOK_SECRET: want non-empty standard base64"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
		{"address in use or invalid", []string{"-addr", "256.0.0.1:1"}, nil, "listen:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}
