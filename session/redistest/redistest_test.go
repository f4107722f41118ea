package redistest

import (
	"strings"
	"testing"
	"time"
)

// These tests exercise the harness itself on a server of its own: the outage tests of the session
// package rely on Stop, Restart, Freeze and Thaw doing what they say.

func TestStartServerAnswersPing(t *testing.T) {
	s := StartServer(t)
	if !strings.HasPrefix(s.URL, "redis://127.0.0.1:") {
		t.Errorf("URL = %q, want redis://127.0.0.1:PORT", s.URL)
	}
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Fatalf("PING a fresh server: %v", err)
	}
}

func TestStopAndRestart(t *testing.T) {
	s := StartServer(t)
	s.Stop()
	if err := Ping(s.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // idempotent
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestFreezeAndThaw(t *testing.T) {
	s := StartServer(t)
	s.Freeze()
	start := time.Now()
	if err := Ping(s.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("PING answered while frozen")
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("frozen server failed PING after %v; want a timeout (no answer), not a refusal", waited)
	}
	s.Thaw()
	if err := Ping(s.Addr, time.Second); err != nil {
		t.Fatalf("PING after Thaw: %v", err)
	}
}

func TestStopWhileFrozen(t *testing.T) {
	s := StartServer(t)
	s.Freeze()
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Stop of a frozen server did not return within 2s")
	}
}

func TestPrefixIsUniquePerCall(t *testing.T) {
	a, b := Prefix(t), Prefix(t)
	if a == b {
		t.Errorf("two prefixes are both %q", a)
	}
	if !strings.HasPrefix(a, "test:TestPrefixIsUniquePerCall:") || !strings.HasSuffix(a, ":") {
		t.Errorf("Prefix = %q, want test:TestPrefixIsUniquePerCall:<random>:", a)
	}
}
