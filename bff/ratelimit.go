package bff

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"beadbff/config"
)

// Login throttling: at most LOGIN_LIMIT_PER_USERNAME failed logins per username and
// LOGIN_LIMIT_PER_ADDRESS per client address in any window, counted in the session store so that every
// server behind one Redis shares the counts. An attempt takes its slots before the password goes to Bead
// and gives them back unless the realm refused the password: so only wrong passwords count (a correct one
// does not use up the limit), yet while the limit is full even the correct password waits, since nothing
// reaches Bead until a slot frees. Concurrent guesses cannot slip past the limit either: each one needs a
// slot of its own before it is sent.

// CauseLoginThrottled is ours, beyond CONTRACT.md's list: too many failed logins for this username or
// from this address. (rate_limited stays what CONTRACT.md says: Bead answered 429.)
const CauseLoginThrottled = "login_throttled"

// loginAttempt holds the slots one login attempt took.
type loginAttempt struct {
	s       *Server
	tickets [][2]string // (limiter name, ticket)
}

// takeLoginAttempt takes a slot for the client address, then one for the username; when either is full
// it gives back what it took and answers 429 with Retry-After.
func (s *Server) takeLoginAttempt(c *fiber.Ctx, username string) (*loginAttempt, error) {
	a := &loginAttempt{s: s}
	limits := []struct {
		by   string
		name string
		rate config.Rate
	}{
		{"address", "login:addr:" + addressKey(s.clientAddress(c)), s.cfg.LoginLimitAddress},
		{"username", "login:user:" + s.usernameKey(username), s.cfg.LoginLimitUsername},
	}
	for _, l := range limits {
		if l.rate.Off() {
			continue
		}
		ticket, wait, err := s.store.TakeAttempt(c.UserContext(), l.name, l.rate.N, l.rate.Window)
		if err != nil {
			a.giveBack(c)
			return nil, storeUnavailable(err)
		}
		if ticket == "" {
			a.giveBack(c)
			s.web.metrics.loginThrottled.WithLabelValues(l.by).Inc()
			s.log.Warn("login throttled", "requestId", requestIDOf(c), "by", l.by, "address", s.clientAddress(c),
				"retryAfterSeconds", retrySeconds(wait))
			return nil, &Problem{Status: http.StatusTooManyRequests, Cause: CauseLoginThrottled, Title: "Too many failed logins",
				Detail: fmt.Sprintf("Too many wrong passwords were tried for this %s. Wait %s and try again; "+
					"until then no login is tried, not even with the right password.", l.by, waitText(wait)),
				RetryAfter: wait}
		}
		a.tickets = append(a.tickets, [2]string{l.name, ticket})
	}
	return a, nil
}

// settle keeps the slots of an attempt that counts (the realm refused the password) and gives back the
// others: a login that worked, or one Bead could not answer.
func (a *loginAttempt) settle(c *fiber.Ctx, counts bool) {
	if !counts {
		a.giveBack(c)
	}
}

func (a *loginAttempt) giveBack(c *fiber.Ctx) {
	for _, t := range a.tickets {
		if err := a.s.store.ReturnAttempt(c.UserContext(), t[0], t[1]); err != nil {
			// The slot then frees itself at the end of its window; the limit errs on the strict side.
			a.s.log.Warn("login attempt not given back", "requestId", requestIDOf(c), "err", err)
		}
	}
	a.tickets = nil
}

// usernameKey names a login the way the realm will see it (the suffix appended as the Bead client does,
// case folded), hashed: store keys need no usernames in them.
func (s *Server) usernameKey(username string) string {
	u := strings.ToLower(strings.TrimSpace(username))
	if !strings.Contains(u, "@") {
		u += strings.ToLower(s.cfg.UsernameSuffix)
	}
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:16])
}

// clientAddress is the address a request came from: the peer, unless the peer is one of
// BFF_TRUSTED_PROXIES, in which case the nearest address in X-Forwarded-For that is not a trusted proxy.
// Reading from the right matters: everything left of what our own proxies appended was written by the
// client and can be anything.
func (s *Server) clientAddress(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.IP()
	}
	peer = peer.Unmap()
	if !s.trustedProxy(peer) {
		return peer.String()
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing further left
		}
		if a = a.Unmap(); !s.trustedProxy(a) {
			return a.String()
		}
	}
	return peer.String()
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addressKey groups IPv6 clients by their /64, which one subscriber usually holds whole: otherwise each
// guess could come from a fresh address.
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func retrySeconds(d time.Duration) int { return max(int((d+time.Second-1)/time.Second), 1) }

// waitText says a wait in words a person reads at a glance: "40 seconds", "12 minutes".
func waitText(d time.Duration) string {
	secs := retrySeconds(d)
	switch {
	case secs == 1:
		return "1 second"
	case secs < 90:
		return strconv.Itoa(secs) + " seconds"
	default:
		return strconv.Itoa((secs+59)/60) + " minutes"
	}
}

// setRetryAfter sends d as Retry-After in whole seconds, rounded up; nothing when d is not positive.
func setRetryAfter(c *fiber.Ctx, d time.Duration) {
	if d > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retrySeconds(d)))
	}
}
