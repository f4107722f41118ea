package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Settings of the browser-facing surface: preflight caching, login throttling and the proxies allowed to
// name the client address.

// Defaults of the browser-facing settings.
const (
	// DefaultCORSMaxAge lets a browser reuse a preflight for ten minutes: long enough that a front-end
	// app does not pay a round trip per call, short enough that removing an origin takes effect soon.
	DefaultCORSMaxAge = 10 * time.Minute
	// MaxCORSMaxAge is the longest cache any browser honours (Firefox; Chromium stops at 2 h).
	MaxCORSMaxAge = 24 * time.Hour

	DefaultLoginLimitUsername = "5/15m"
	DefaultLoginLimitAddress  = "50/15m"
)

// Rate is "at most N in any Window"; N == 0 means no limit.
type Rate struct {
	N      int
	Window time.Duration
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.N <= 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d per %s", r.N, r.Window)
}

// ParseRate reads "N/duration" (e.g. "5/15m"); "off" and "0" turn the limit off.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Rate{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count < 1 {
		return Rate{}, fmt.Errorf("want N/duration such as 5/15m, or off; got %q", s)
	}
	window, err := duration(strings.TrimSpace(w))
	if err != nil || window < time.Second {
		return Rate{}, fmt.Errorf("want a window of at least 1s after the slash, got %q", w)
	}
	if count > maxLoginSlots {
		return Rate{}, fmt.Errorf("at most %d attempts per window, got %d", maxLoginSlots, count)
	}
	return Rate{N: count, Window: window}, nil
}

// maxLoginSlots matches session.MaxAttemptSlots (config does not import session).
const maxLoginSlots = 1000

func loadBrowserSettings(c *Config, get func(name, def string) string, ps *Problems) {
	var err error
	c.CORSMaxAge, err = duration(get("CORS_MAX_AGE", DefaultCORSMaxAge.String()))
	if err != nil {
		*ps = append(*ps, Problem{"CORS_MAX_AGE", err.Error()})
	}
	if c.LoginLimitUsername, err = ParseRate(get("LOGIN_LIMIT_PER_USERNAME", DefaultLoginLimitUsername)); err != nil {
		*ps = append(*ps, Problem{"LOGIN_LIMIT_PER_USERNAME", err.Error()})
	}
	if c.LoginLimitAddress, err = ParseRate(get("LOGIN_LIMIT_PER_ADDRESS", DefaultLoginLimitAddress)); err != nil {
		*ps = append(*ps, Problem{"LOGIN_LIMIT_PER_ADDRESS", err.Error()})
	}
	for _, p := range list(get("BFF_TRUSTED_PROXIES", "")) {
		prefix, err := parsePrefix(p)
		if err != nil {
			*ps = append(*ps, Problem{"BFF_TRUSTED_PROXIES", fmt.Sprintf("%q: %v", p, err)})
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix)
	}
}

func validateBrowserSettings(c *Config, add func(v, format string, args ...any)) {
	if c.parseProblems.has("CORS_MAX_AGE") {
		return
	}
	switch {
	case c.CORSMaxAge < 0:
		add("CORS_MAX_AGE", "must not be negative (0 tells browsers not to cache preflights)")
	case c.CORSMaxAge > MaxCORSMaxAge:
		add("CORS_MAX_AGE", "at most %s: browsers ignore longer", MaxCORSMaxAge)
	case c.CORSMaxAge%time.Second != 0:
		add("CORS_MAX_AGE", "whole seconds only (Access-Control-Max-Age counts seconds), got %s", c.CORSMaxAge)
	}
}

// parsePrefix reads an address ("10.0.0.7") or a network ("10.0.0.0/8"), in canonical form.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("want an IP address or a CIDR network such as 10.0.0.0/8")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("want an IP address or a CIDR network such as 10.0.0.0/8")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func prefixList(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}
