package session

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RouteRedisLogs sends go-redis's own messages (pool dial failures and the like, which it prints to stderr
// by default) to log as structured warnings. go-redis keeps one logger per process, so main calls this
// once; tests leave it alone.
func RouteRedisLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log: log.With("component", "go-redis")})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
