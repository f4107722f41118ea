package config

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCORSMaxAge(t *testing.T) {
	tests := []struct {
		name    string
		value   string // "" leaves it unset
		want    time.Duration
		problem bool
	}{
		{"unset is the default", "", DefaultCORSMaxAge, false},
		{"zero is kept as zero, not as unset (regression: 0 must be sendable)", "0", 0, false},
		{"zero seconds as a duration", "0s", 0, false},
		{"seconds as a number", "7200", 2 * time.Hour, false},
		{"a duration", "90s", 90 * time.Second, false},
		{"negative", "-5", 0, true},
		{"beyond what browsers honour", "48h", 0, true},
		{"fractions of a second cannot be sent", "1500ms", 0, true},
		{"not a duration", "soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(map[string]string{"CORS_MAX_AGE": tt.value}))
			ps := c.Validate()
			if tt.problem {
				if !ps.has("CORS_MAX_AGE") {
					t.Errorf("CORS_MAX_AGE=%q: no problem reported (got %v)", tt.value, ps)
				}
				return
			}
			if ps != nil {
				t.Fatalf("CORS_MAX_AGE=%q: unexpected problems %v", tt.value, ps)
			}
			if c.CORSMaxAge != tt.want {
				t.Errorf("CORS_MAX_AGE=%q: %v, want %v", tt.value, c.CORSMaxAge, tt.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"5/15m", Rate{5, 15 * time.Minute}, true},
		{" 50 / 900 ", Rate{50, 15 * time.Minute}, true},
		{"off", Rate{}, true},
		{"0", Rate{}, true},
		{"5", Rate{}, false},
		{"0/15m", Rate{}, false},
		{"-1/15m", Rate{}, false},
		{"5/0s", Rate{}, false},
		{"5/500ms", Rate{}, false},
		{"1001/1h", Rate{}, false},
		{"five/15m", Rate{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseRate(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestBrowserSettingsDefaultsAndProblems(t *testing.T) {
	c := Load(env(nil))
	if c.LoginLimitUsername != (Rate{5, 15 * time.Minute}) || c.LoginLimitAddress != (Rate{50, 15 * time.Minute}) || c.TrustedProxies != nil {
		t.Errorf("defaults: %v %v %v", c.LoginLimitUsername, c.LoginLimitAddress, c.TrustedProxies)
	}
	c = Load(env(map[string]string{"BFF_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7 ,::ffff:198.51.100.1, 2001:db8::/32"}))
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if diff := cmp.Diff(want, c.TrustedProxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" || c.Validate() != nil {
		t.Errorf("BFF_TRUSTED_PROXIES (-want +got):\n%s\nproblems: %v", diff, c.Validate())
	}
	c = Load(env(map[string]string{"BFF_TRUSTED_PROXIES": "proxy.internal", "LOGIN_LIMIT_PER_USERNAME": "lots", "LOGIN_LIMIT_PER_ADDRESS": "5/never"}))
	got := map[string]int{}
	for _, p := range c.Validate() {
		got[p.Var]++
	}
	if diff := cmp.Diff(map[string]int{"BFF_TRUSTED_PROXIES": 1, "LOGIN_LIMIT_PER_USERNAME": 1, "LOGIN_LIMIT_PER_ADDRESS": 1}, got); diff != "" {
		t.Errorf("problems per variable (-want +got):\n%s", diff)
	}
}
