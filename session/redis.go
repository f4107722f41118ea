package session

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fail-fast client settings. A session lookup sits in front of every request: when Redis is gone or
// frozen the request should fail with session_store_unavailable in well under a second, not hang on go-redis's
// defaults (5 s timeouts, 3 retries, 5 dial attempts). A setting given in REDIS_URL's query wins.
const (
	redisDialTimeout   = 500 * time.Millisecond
	redisIOTimeout     = 500 * time.Millisecond
	redisPoolTimeout   = 500 * time.Millisecond
	redisMaxRetries    = 1
	redisDialAttempts  = 2
	redisDialBackoff   = 50 * time.Millisecond
	redisMaxRetryPause = 100 * time.Millisecond
)

// NewRedis connects to REDIS_URL (redis:// or rediss://), pings it within ctx's deadline (or CallTimeout)
// and returns the store. Errors name REDIS_URL and show it with its password redacted. The store owns
// the client: Close closes it.
func NewRedis(ctx context.Context, redisURL string, opts Options) (Store, error) {
	uopts, err := redisOptions(redisURL)
	if err != nil {
		return nil, err
	}
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.Keyring == nil {
		return nil, errors.New("session: options: Keyring is required (SESSION_KEYS)")
	}
	client := redis.NewUniversalClient(uopts)
	pingCtx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("session: REDIS_URL %s does not answer: %w: %w", redactURL(redisURL), ErrUnavailable, err)
	}
	s, err := newStore(&redisBackend{client: client, owned: true}, opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	return s, nil
}

// NewRedisFromClient returns a store over a client built elsewhere (tests, or wiring that shares one
// client). It does not ping, and it does not take the client over: Close leaves c open for its owner.
func NewRedisFromClient(c redis.UniversalClient, opts Options) (Store, error) {
	if c == nil {
		return nil, errors.New("session: nil redis client")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s, err := newStore(&redisBackend{client: c}, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// redisOptions turns REDIS_URL (one node, a Cluster or a Sentinel set) into client options. It is the
// one place that reads the URL. Its errors never quote the URL (it may hold a password); they name
// REDIS_URL and show it redacted.
func redisOptions(redisURL string) (*redis.UniversalOptions, error) {
	if redisURL == "" {
		return nil, errors.New("session: REDIS_URL is empty")
	}
	u, err := url.Parse(redisURL)
	if err != nil {
		// url.Error quotes the whole input, password included: keep only its reason.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("session: REDIS_URL is not a valid URL: %w", err)
	}
	base, mode, _ := strings.Cut(u.Scheme, "+")
	if base != "redis" && base != "rediss" || (mode != "" && mode != "cluster" && mode != "sentinel") {
		return nil, fmt.Errorf("session: REDIS_URL %s: scheme must be redis://, rediss://, redis+cluster:// or redis+sentinel:// "+
			"(rediss+… for TLS), not %q", u.Redacted(), u.Scheme)
	}
	switch mode {
	case "cluster":
		return clusterOptions(u, base)
	case "sentinel":
		return sentinelOptions(u, base)
	}
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		// go-redis's parse errors name the bad part (db number, query option), not the credentials.
		return nil, fmt.Errorf("session: REDIS_URL %s: %w", u.Redacted(), err)
	}
	uo := &redis.UniversalOptions{
		Addrs:                 []string{o.Addr},
		ClientName:            o.ClientName,
		DB:                    o.DB,
		Protocol:              o.Protocol,
		Username:              o.Username,
		Password:              o.Password,
		MaxRetries:            o.MaxRetries,
		MinRetryBackoff:       o.MinRetryBackoff,
		MaxRetryBackoff:       o.MaxRetryBackoff,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolFIFO:              o.PoolFIFO,
		PoolSize:              o.PoolSize,
		PoolTimeout:           o.PoolTimeout,
		MinIdleConns:          o.MinIdleConns,
		MaxIdleConns:          o.MaxIdleConns,
		MaxActiveConns:        o.MaxActiveConns,
		MaxConcurrentDials:    o.MaxConcurrentDials,
		ConnMaxIdleTime:       o.ConnMaxIdleTime,
		ConnMaxLifetime:       o.ConnMaxLifetime,
		ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		TLSConfig:             o.TLSConfig,
		// Without it go-redis ignores ctx deadlines on the socket, and CallTimeout would not bound a call.
		ContextTimeoutEnabled: true,
	}
	failFast(uo)
	return uo, nil
}

// clusterOptions reads redis+cluster://[user:password@]host:port?addr=host2:port&addr=host3:port (go-redis's
// cluster URL with our scheme prefix): the seed nodes of a Redis Cluster.
func clusterOptions(u *url.URL, base string) (*redis.UniversalOptions, error) {
	plain := *u
	plain.Scheme = base
	o, err := redis.ParseClusterURL(plain.String())
	if err != nil {
		return nil, fmt.Errorf("session: REDIS_URL %s: %w", u.Redacted(), err)
	}
	uo := &redis.UniversalOptions{
		Addrs: o.Addrs, IsClusterMode: true, ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff,
		MaxRetryBackoff: o.MaxRetryBackoff, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout,
		WriteTimeout: o.WriteTimeout, PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime, TLSConfig: o.TLSConfig,
		MaxRedirects: o.MaxRedirects, ReadOnly: o.ReadOnly, RouteByLatency: o.RouteByLatency, RouteRandomly: o.RouteRandomly,
		ContextTimeoutEnabled: true,
	}
	failFast(uo)
	return uo, nil
}

// sentinelOptions reads redis+sentinel://[user:password@]sentinel:port[/db]?master_name=NAME&addr=sentinel2:port
// (go-redis's failover URL with our scheme prefix; the user info is the Sentinels', `username` and
// `password` query parameters are the master's).
func sentinelOptions(u *url.URL, base string) (*redis.UniversalOptions, error) {
	plain := *u
	plain.Scheme = base
	o, err := redis.ParseFailoverURL(plain.String())
	if err != nil {
		return nil, fmt.Errorf("session: REDIS_URL %s: %w", u.Redacted(), err)
	}
	if o.MasterName == "" {
		return nil, fmt.Errorf("session: REDIS_URL %s: a Sentinel URL needs ?master_name=", u.Redacted())
	}
	uo := &redis.UniversalOptions{
		Addrs: o.SentinelAddrs, MasterName: o.MasterName, SentinelUsername: o.SentinelUsername,
		SentinelPassword: o.SentinelPassword, DB: o.DB, ClientName: o.ClientName, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff,
		MaxRetryBackoff: o.MaxRetryBackoff, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout,
		WriteTimeout: o.WriteTimeout, PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime, TLSConfig: o.TLSConfig,
		ContextTimeoutEnabled: true,
	}
	failFast(uo)
	return uo, nil
}

// failFast fills the settings REDIS_URL left unset (zero) with the fail-fast values above.
func failFast(o *redis.UniversalOptions) {
	setIfZero := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setIfZero(&o.DialTimeout, redisDialTimeout)
	setIfZero(&o.ReadTimeout, redisIOTimeout)
	setIfZero(&o.WriteTimeout, redisIOTimeout)
	setIfZero(&o.PoolTimeout, redisPoolTimeout)
	setIfZero(&o.MaxRetryBackoff, redisMaxRetryPause)
	setIfZero(&o.DialerRetryTimeout, redisDialBackoff)
	if o.MaxRetries == 0 {
		o.MaxRetries = redisMaxRetries
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = redisDialAttempts
	}
}

// redactURL shows a URL without its password, or nothing of it when it does not parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// redisBackend maps the backend seam onto Redis commands.
type redisBackend struct {
	client redis.UniversalClient
	owned  bool // NewRedis built the client, so close closes it
}

func (r *redisBackend) ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

func (r *redisBackend) get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, err
}

func (r *redisBackend) setXX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return r.client.SetXX(ctx, key, value, ttl).Result()
}

func (r *redisBackend) setNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return r.client.SetNX(ctx, key, value, ttl).Result()
}

// delIfEqualsScript deletes KEYS (all of them) only if the first still holds the caller's value,
// atomically. The callers' extra keys share the first's hash tag, so it runs on a Cluster too.
var delIfEqualsScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", unpack(KEYS)) end return 0`)

func (r *redisBackend) delIfEquals(ctx context.Context, key string, value []byte, also ...string) error {
	return delIfEqualsScript.Run(ctx, r.client, append([]string{key}, also...), value).Err()
}

func (r *redisBackend) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	vals, err := r.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

func (r *redisBackend) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return r.client.Set(ctx, key, value, ttl).Err()
}

func (r *redisBackend) del(ctx context.Context, key string) error {
	return r.client.Del(ctx, key).Err()
}

func (r *redisBackend) newest(ctx context.Context, key string, n int) ([]string, error) {
	return r.client.ZRevRange(ctx, key, 0, int64(n)-1).Result()
}

func (r *redisBackend) atomically(ctx context.Context, fn func(batch)) error {
	_, err := r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		fn(redisBatch{ctx: ctx, pipe: pipe})
		return nil
	})
	return err
}

func (r *redisBackend) close() error {
	if !r.owned {
		return nil
	}
	return r.client.Close()
}

// redisBatch queues commands on a MULTI/EXEC pipeline; they are sent when atomically's fn returns.
type redisBatch struct {
	ctx  context.Context
	pipe redis.Pipeliner
}

func (b redisBatch) set(key string, value []byte, ttl time.Duration) {
	b.pipe.Set(b.ctx, key, value, ttl)
}

func (b redisBatch) addIfAbsent(key string, score float64, member string) {
	b.pipe.ZAddNX(b.ctx, key, redis.Z{Score: score, Member: member})
}

func (b redisBatch) keepHighest(key string, n int) {
	// Ranks count from the lowest score: drop everything below the n highest.
	b.pipe.ZRemRangeByRank(b.ctx, key, 0, -int64(n)-1)
}

func (b redisBatch) dropScoredBelow(key string, floor float64) {
	// "(" makes the bound exclusive: a member scored exactly floor stays.
	b.pipe.ZRemRangeByScore(b.ctx, key, "-inf", "("+strconv.FormatFloat(floor, 'f', -1, 64))
}

func (b redisBatch) expire(key string, ttl time.Duration) { b.pipe.PExpire(b.ctx, key, ttl) }

func (b redisBatch) put(key string, score float64, member string) {
	b.pipe.ZAdd(b.ctx, key, redis.Z{Score: score, Member: member})
}

// extendExpiry: NX gives a key with no time to live one; GT then only ever lengthens it. (go-redis has
// these two in seconds only; rounding up keeps the key at least ttl.)
func (b redisBatch) extendExpiry(key string, ttl time.Duration) {
	rounded := ttl.Round(time.Second) + time.Second
	b.pipe.ExpireNX(b.ctx, key, rounded)
	b.pipe.ExpireGT(b.ctx, key, rounded)
}

// The compare-and-set family. Each script reads and writes keys of one hash slot only (the callers'
// keys share a {terminal} tag), so it runs unchanged on a Cluster.
var (
	swapScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return 1`)
	extendIfEqualsScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call("PEXPIRE", KEYS[1], ARGV[2])`)
	// KEYS[1] the holders' sorted set, KEYS[2] the token; ARGV[1] the member, ARGV[2] the floor.
	releaseScript = redis.NewScript(`
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[2])
if redis.call("ZCARD", KEYS[1]) > 0 then return false end
local v = redis.call("GET", KEYS[2])
redis.call("DEL", KEYS[2])
return v`)
)

func (r *redisBackend) swap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	n, err := swapScript.Run(ctx, r.client, []string{key}, old, value, ttl.Milliseconds()).Int()
	return n == 1, err
}

func (r *redisBackend) extendIfEquals(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	n, err := extendIfEqualsScript.Run(ctx, r.client, []string{key}, value, ttl.Milliseconds()).Int()
	return n == 1, err
}

func (r *redisBackend) release(ctx context.Context, set, member string, floor float64, key string) ([]byte, error) {
	v, err := releaseScript.Run(ctx, r.client, []string{set, key}, member, strconv.FormatFloat(floor, 'f', -1, 64)).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}
