package session

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"beadbff/session/redistest"
)

// The Redis-only behaviours: URL parsing, start-up failures and outages. Everything a caller can observe
// through Store is in the contract suite instead.

// clientSettings is the part of the client options this package decides; the rest is go-redis's.
type clientSettings struct {
	Addrs                      []string
	DB                         int
	Username, Password         string
	TLSServerName              string
	ContextTimeoutEnabled      bool
	DialTimeout, ReadTimeout   time.Duration
	WriteTimeout, PoolTimeout  time.Duration
	MaxRetries, DialerRetries  int
	MaxRetryBackoff, DialPause time.Duration
}

func settingsOf(o *redis.UniversalOptions) clientSettings {
	s := clientSettings{
		Addrs: o.Addrs, DB: o.DB, Username: o.Username, Password: o.Password,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		DialTimeout:           o.DialTimeout, ReadTimeout: o.ReadTimeout,
		WriteTimeout: o.WriteTimeout, PoolTimeout: o.PoolTimeout,
		MaxRetries: o.MaxRetries, DialerRetries: o.DialerRetries,
		MaxRetryBackoff: o.MaxRetryBackoff, DialPause: o.DialerRetryTimeout,
	}
	if o.TLSConfig != nil {
		s.TLSServerName = o.TLSConfig.ServerName
	}
	return s
}

// failFastSettings are the settings of a URL that sets none: what a dead Redis is met with.
func failFastSettings(addr string) clientSettings {
	return clientSettings{
		Addrs: []string{addr}, ContextTimeoutEnabled: true,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, PoolTimeout: 500 * time.Millisecond,
		MaxRetries: 1, DialerRetries: 2,
		MaxRetryBackoff: 100 * time.Millisecond, DialPause: 50 * time.Millisecond,
	}
}

func TestRedisOptions(t *testing.T) {
	tls := failFastSettings("cache.example:6380")
	tls.DB, tls.Username, tls.Password, tls.TLSServerName = 2, "bff", "s3cret", "cache.example"
	tuned := failFastSettings("h:6379")
	tuned.DB, tuned.DialTimeout, tuned.MaxRetries = 3, 2*time.Second, 5

	tests := []struct {
		name string
		url  string
		want clientSettings
	}{
		{name: "plain", url: "redis://127.0.0.1:6379", want: failFastSettings("127.0.0.1:6379")},
		{name: "default port", url: "redis://cache", want: failFastSettings("cache:6379")},
		{name: "tls with credentials and db", url: "rediss://bff:s3cret@cache.example:6380/2", want: tls},
		{name: "settings in the query win", url: "redis://h/3?dial_timeout=2s&max_retries=5", want: tuned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := redisOptions(tt.url)
			if err != nil {
				t.Fatalf("redisOptions: %v", err)
			}
			if diff := cmp.Diff(tt.want, settingsOf(o)); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedisOptionsErrors(t *testing.T) {
	const password = "hunter2pw"
	tests := []struct {
		name string
		url  string
		want string
	}{
		{name: "empty", url: "", want: "REDIS_URL is empty"},
		{name: "http scheme", url: "http://:" + password + "@h", want: `not "http"`},
		{name: "unknown mode", url: "redis+shard://:" + password + "@h", want: `not "redis+shard"`},
		{name: "sentinel without master", url: "redis+sentinel://:" + password + "@h:26379", want: "needs ?master_name="},
		{name: "unix socket", url: "unix:///run/redis.sock", want: `not "unix"`},
		{name: "bad port", url: "redis://:" + password + "@h:port", want: "not a valid URL"},
		{name: "bad db", url: "redis://:" + password + "@h/first", want: "invalid database number"},
		{name: "unknown option", url: "redis://:" + password + "@h?colour=blue", want: "unexpected option: colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redisOptions(tt.url)
			if err == nil {
				t.Fatalf("redisOptions(%s) accepted it", tt.name)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "REDIS_URL") {
				t.Errorf("error %q, want it to name REDIS_URL and contain %q", msg, tt.want)
			}
			if strings.Contains(msg, password) {
				t.Errorf("error %q reveals the password", msg)
			}
		})
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestNewRedisFailsFastAndNamesTheVariable(t *testing.T) {
	const password = "hunter2pw"
	start := time.Now()
	st, err := NewRedis(context.Background(), "redis://:"+password+"@"+deadAddr(t)+"/0",
		Options{Keyring: mustKeyring(t, keyA)})
	elapsed := time.Since(start)
	if err == nil {
		_ = st.Close()
		t.Fatal("NewRedis connected to nothing")
	}
	wantErrIs(t, "NewRedis(dead address)", err, ErrUnavailable)
	if !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), password) {
		t.Errorf("error %q, want it to name REDIS_URL without the password", err)
	}
	// About 120ms here; the margin is for a loaded CI machine (start-up also builds and closes a client).
	if elapsed > 1500*time.Millisecond {
		t.Errorf("NewRedis took %v to give up, want well under 1.5s", elapsed)
	}
}

func TestNewRedisRequiresKeyring(t *testing.T) {
	_, err := NewRedis(context.Background(), "redis://127.0.0.1:1", Options{})
	if err == nil || !strings.Contains(err.Error(), "Keyring is required") {
		t.Fatalf("NewRedis without a keyring = %v, want a refusal", err)
	}
}

func TestNewRedisFromClientLeavesTheClientOpen(t *testing.T) {
	url := redistest.Start(t)
	client := rawRedisClient(t, url)
	st, err := NewRedisFromClient(client, Options{Keyring: mustKeyring(t, keyA), Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, "Ping after Close", st.Ping(context.Background()), ErrUnavailable)
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Errorf("the caller's client was closed with the store: %v", err)
	}
}

// TestRedisOutage stops and freezes a Redis of its own under a live store: every call must fail with
// ErrUnavailable within about a second (so a request fails with session_store_unavailable instead of
// hanging), and the store must recover by itself when Redis is back.
func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	st, err := NewRedis(context.Background(), srv.URL, Options{Keyring: mustKeyring(t, keyA)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sess := newSession(t, st, time.Now())
	mustSave(t, st, sess, time.Hour)

	const budget = time.Second
	outages := []struct {
		name   string
		break_ func()
		heal   func() error
	}{
		{name: "stopped", break_: srv.Stop, heal: srv.Restart},
		{name: "frozen", break_: srv.Freeze, heal: func() error { srv.Thaw(); return nil }},
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			o.break_()
			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Ping", st.Ping},
				{"Load", func(ctx context.Context) error { return second(st.Load(ctx, sess.ID)) }},
				{"Save", func(ctx context.Context) error { return st.Save(ctx, sess, time.Hour) }},
				{"PutPayment", func(ctx context.Context) error {
					return st.PutPayment(ctx, payment("term-1", "trk-1", time.Now()))
				}},
				{"ListPayments", func(ctx context.Context) error { return second(st.ListPayments(ctx, "term-1", 0)) }},
			}
			for _, c := range calls {
				start := time.Now()
				err := c.call(context.Background())
				elapsed := time.Since(start)
				t.Logf("%s with Redis %s failed after %v", c.name, o.name, elapsed.Round(time.Millisecond))
				if elapsed > budget {
					t.Errorf("%s took %v with Redis %s, want under %v", c.name, elapsed, o.name, budget)
				}
				wantErrIs(t, c.name+" with Redis "+o.name, err, ErrUnavailable)
				if errors.Is(err, ErrNotFound) {
					t.Errorf("%s with Redis %s = %v: an outage must not look like a missing session", c.name, o.name, err)
				}
			}

			if err := o.heal(); err != nil {
				t.Fatal(err)
			}
			waitForPing(t, st, 5*time.Second)
			mustSave(t, st, sess, time.Hour) // a restarted Redis has lost everything
			if diff := cmp.Diff(sess, mustLoad(t, st, sess.ID), ignoreExpiresIn); diff != "" {
				t.Errorf("Load after recovery (-saved +loaded):\n%s", diff)
			}
		})
	}
}

// waitForPing polls until the store answers again: go-redis backs off dialling after a run of failures.
func waitForPing(t *testing.T, st Store, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = st.Ping(context.Background()); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("store did not recover within %v: %v", within, err)
}

func TestRedisKeyNames(t *testing.T) {
	s := &store{opts: Options{Prefix: "beadbff:"}}
	tests := []struct{ name, got, want string }{
		// sha256sum of 43 "A"s, spelled out so a change of hash or encoding is caught; a dump of Redis
		// must show no cookie value.
		{"session", s.sessionKey(strings.Repeat("A", 43)),
			"beadbff:sess:0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"},
		{"payment", s.paymentKey("term:1", "trk{2}"), "beadbff:pay:{term%3A1}:trk%7B2%7D"},
		{"list", s.listKey("term-1"), "beadbff:list:{term-1}"},
		{"checkout", s.checkoutKey("co 1"), "beadbff:co:co+1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s key = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// The three REDIS_URL forms build the three kinds of client, each with the fail-fast budget.
func TestRedisURLForms(t *testing.T) {
	tests := []struct {
		url      string
		kind     string // simple, cluster, sentinel
		addrs    int
		master   string
		password string
	}{
		{"redis://:pw@10.0.0.1:6379/2", "simple", 1, "", "pw"},
		{"redis+cluster://:pw@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", "cluster", 3, "", "pw"},
		{"redis+cluster://10.0.0.1:7000", "cluster", 1, "", ""},
		{"redis+sentinel://10.0.0.1:26379?master_name=sessions&addr=10.0.0.2:26379&password=masterpw", "sentinel", 2, "sessions", "masterpw"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.url, func(t *testing.T) {
			o, err := redisOptions(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			kind := "simple"
			switch {
			case o.MasterName != "":
				kind = "sentinel"
			case o.IsClusterMode:
				kind = "cluster"
			}
			if kind != tt.kind || len(o.Addrs) != tt.addrs || o.MasterName != tt.master || o.Password != tt.password {
				t.Errorf("got %s with %d addrs, master %q, password %q", kind, len(o.Addrs), o.MasterName, o.Password)
			}
			if !o.ContextTimeoutEnabled || o.ReadTimeout != redisIOTimeout || o.MaxRetries != redisMaxRetries {
				t.Errorf("fail-fast settings missing: ctx %v read %v retries %d", o.ContextTimeoutEnabled, o.ReadTimeout, o.MaxRetries)
			}
		})
	}
}
