// Package redistest gives tests a real Redis: a redis-server it starts on a free loopback port and stops
// when the test ends, or the server named by BEADBFF_TEST_REDIS_URL. It can also stop, restart, freeze
// and thaw the server it started, for outage tests. It fails the test, never skips it, when no Redis can
// be had: a store contract that silently did not run is worse than a red build.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvURL names the variable that points tests at an existing Redis instead of starting one.
const EnvURL = "BEADBFF_TEST_REDIS_URL"

const (
	startTimeout = 5 * time.Second
	stopTimeout  = 3 * time.Second
)

// Start returns the redis:// URL of a Redis for this test: BEADBFF_TEST_REDIS_URL when set, otherwise a
// redis-server started for the test and stopped in t.Cleanup. That Redis may be shared (with other tests,
// or with people): never FLUSHDB it; give each test its own key prefix (see Prefix).
func Start(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		return url
	}
	return StartServer(t).URL
}

// Prefix returns a key prefix no other test shares ("test:<name>:<random>:"), so tests can use one Redis
// at once, in parallel, without flushing it.
func Prefix(t testing.TB) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// Server is a redis-server started for one test. It always runs a process of its own (even when
// BEADBFF_TEST_REDIS_URL is set), because outage tests must be able to stop it.
type Server struct {
	URL  string // redis://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT

	t      testing.TB
	binary string
	port   int
	extra  []string // more redis-server arguments (cluster mode)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd's process has been reaped
	frozen bool
}

// StartServer starts a redis-server on a free loopback port, with no persistence, and stops it in
// t.Cleanup. It fails the test when redis-server is not on PATH or does not answer PING in time.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return startServer(t, nil)
}

func startServer(t testing.TB, extra func(port int) []string) *Server {
	t.Helper()
	binary, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found: apt-get install redis-server, or set %s", EnvURL)
	}
	s := &Server{t: t, binary: binary}
	// A free port can be taken between our probe and redis-server's bind; try a few.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "redis://" + s.Addr
		if extra != nil {
			s.extra = extra(port)
		}
		if lastErr = s.launch(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts the process on s.port and waits until it answers PING.
func (s *Server) launch() error {
	// redis-server's output, shown when it fails to start; read only after it exited (exec copies into
	// it from another goroutine until then).
	out := new(bytes.Buffer)
	cmd := exec.Command(s.binary,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
	)
	cmd.Args = append(cmd.Args, s.extra...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.frozen = cmd, exited, false
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.port, strings.TrimSpace(out.String()))
		default:
		}
		if err := Ping(s.Addr, 200*time.Millisecond); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("redis-server on port %d did not answer PING within %v: %s",
		s.port, startTimeout, strings.TrimSpace(out.String()))
}

// Stop ends the server (SIGTERM, then SIGKILL if it lingers) and waits for it. It is idempotent, and
// runs in t.Cleanup anyway.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited, frozen := s.cmd, s.exited, s.frozen
	s.cmd, s.frozen = nil, false
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	if frozen {
		// A stopped process holds SIGTERM until it is continued.
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart starts the server again on the same port (its data is gone: nothing is persisted), stopping
// it first if need be, and waits until it answers. It returns an error rather than failing the test
// itself, because it is often called from a subtest, where failing the test that started the server
// is not allowed.
func (s *Server) Restart() error {
	s.Stop()
	if err := s.launch(); err != nil {
		return fmt.Errorf("redistest: restart: %w", err)
	}
	return nil
}

// Freeze suspends the server (SIGSTOP): connections are accepted by the kernel but nothing answers,
// which is how an overloaded or partitioned Redis looks to a client. A failure is reported with Errorf
// on the test that started the server (safe from any goroutine).
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP, true) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, frozen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Errorf("redistest: %v: server is not running", sig)
		return
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Errorf("redistest: %v: %v", sig, err)
		return
	}
	s.frozen = frozen
}

// Ping sends one inline PING to addr and expects +PONG within timeout. It needs no client library, so
// the harness can wait for a server before any client exists.
func Ping(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Cluster is a Redis Cluster of real redis-server processes on loopback ports, for one test.
type Cluster struct {
	Nodes []*Server
	URL   string // redis+cluster://127.0.0.1:P1?addr=127.0.0.1:P2&addr=…, the REDIS_URL form beadbff reads
}

// StartCluster starts n (at least 3) masters in cluster mode, joins them with redis-cli --cluster create
// and waits until every node says cluster_state:ok. It fails the test, naming what is missing, when
// redis-server or redis-cli is not installed.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redistest: redis-cli not found (Debian's redis-tools, which redis-server depends on)")
	}
	dir := t.TempDir()
	c := &Cluster{}
	for range n {
		c.Nodes = append(c.Nodes, startServer(t, func(port int) []string {
			return []string{"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("%s/nodes-%d.conf", dir, port),
				"--cluster-node-timeout", "2000"}
		}))
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range c.Nodes {
		for {
			out, _ := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: node %s not ready: %s", s.Addr, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.URL = "redis+cluster://" + c.Nodes[0].Addr + "?"
	for i, s := range c.Nodes[1:] {
		if i > 0 {
			c.URL += "&"
		}
		c.URL += "addr=" + s.Addr
	}
	return c
}

// StartSentinel starts one Redis Sentinel on a free loopback port that monitors master under the name
// masterName, waits until it names the master, and stops it in t.Cleanup. It returns the REDIS_URL form
// beadbff reads: redis+sentinel://127.0.0.1:PORT?master_name=NAME.
func StartSentinel(t testing.TB, master *Server, masterName string) string {
	t.Helper()
	binary, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found: apt-get install redis-server")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // Sentinel rewrites its own config file
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 2000\n",
		port, masterName, master.port, masterName)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out := new(bytes.Buffer)
	cmd := exec.Command(binary, conf, "--sentinel")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start sentinel: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "SENTINEL get-master-addr-by-name %s\r\n", masterName)
			buf := make([]byte, 256)
			n, _ := c.Read(buf)
			c.Close()
			if strings.Contains(string(buf[:n]), strconv.Itoa(master.port)) {
				return "redis+sentinel://" + addr + "?master_name=" + masterName
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel on %s does not name master %s: %s", addr, masterName, strings.TrimSpace(out.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
