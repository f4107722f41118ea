package bff

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"beadbff/session"
	"beadbff/session/redistest"
)

// BenchmarkSessionLayer is the time the session layer adds to a request: the same tiny handler served
// with and without withOptionalSession in front, on a real Redis and on the memory store, in one run
// (issue 5's "time the session layer adds per request, beside a baseline"). It asserts nothing.
func BenchmarkSessionLayer(b *testing.B) {
	keys, _ := session.GenerateKey()
	ring, _ := session.NewKeyring(keys)
	redisURL := redistest.Start(b)
	stores := map[string]func() session.Store{
		"memory": func() session.Store { st, _ := session.NewMemory(session.Options{Keyring: ring}); return st },
		"redis": func() session.Store {
			st, err := session.NewRedis(context.Background(), redisURL, session.Options{Keyring: ring, Prefix: redistest.Prefix(b)})
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	for _, name := range []string{"memory", "redis"} {
		st := stores[name]()
		defer st.Close()
		s := terminalServer(b, st, &fakeRealm{now: time.Now, terminal: "t1"}, nil) // the whole server, as it runs
		// Tokens of real size (Bead's JWTs run to about 1,200 and 800 characters).
		id := seedSession(b, st, "t1", "m1", session.Token{AccessToken: strings.Repeat("a", 1200), RefreshToken: strings.Repeat("r", 800),
			Expiry: time.Now().Add(time.Hour)}).ID
		handler := func(c *fiber.Ctx) error { return c.SendStatus(http.StatusNoContent) }
		for _, layer := range []string{"baseline", "session"} {
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			if layer == "session" {
				app.Get("/", s.withOptionalSession, handler)
			} else {
				app.Get("/", handler)
			}
			h := app.Handler()
			cookie := s.cookieName() + "=" + id
			if got := serveFast(h, cookie); got != http.StatusNoContent {
				b.Fatalf("%s/%s answered %d", name, layer, got)
			}
			b.Run(name+"/"+layer, func(b *testing.B) {
				for b.Loop() {
					serveFast(h, cookie)
				}
			})
		}
	}
}

// serveFast runs one GET / through a Fiber handler without a network, so the benchmark measures the
// layer, not loopback TCP.
func serveFast(h fasthttp.RequestHandler, cookie string) int {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fiber.MethodGet)
	ctx.Request.SetRequestURI("/")
	ctx.Request.Header.Set("Cookie", cookie)
	h(&ctx)
	return ctx.Response.StatusCode()
}
