package config

import "testing"

// Issue 4: "`*`, `null` and catch-all patterns refused by Validate()". A wildcard directly below a public
// suffix is a catch-all: https://*.co.uk admits every British company's site, https://*.github.io every
// GitHub Pages site (anyone can publish one in a minute), and each would be allowed to call the API with
// the staff session's credentials or to frame the checkout.
func TestBreak2PublicSuffixWildcardRefused(t *testing.T) {
	for _, pattern := range []string{"https://*.co.uk", "https://*.github.io", "https://*.com.au", "https://*.herokuapp.com"} {
		for _, name := range []string{"CORS_ALLOWED_ORIGINS", "FRAME_ANCESTORS"} {
			c := Load(env(map[string]string{name: pattern}))
			if ps := c.Validate(); !ps.has(name) {
				t.Errorf("%s=%s: accepted (problems %v); a pattern over a public suffix matches sites of anyone", name, pattern, ps)
			}
		}
	}
}

// BFF_PUBLIC_URL is compared with the Origin browsers send, which is always lower case and never names
// the default port. A URL that differs only in those must be either normalised or refused by Validate:
// accepted as is, it makes every same-origin form post and API call look cross-site (see the bff test
// TestBreak2PublicURLNotCanonical).
func TestBreak2PublicURLCanonicalOrRefused(t *testing.T) {
	for _, pub := range []string{"https://pay.example.com:443", "https://Pay.Example.com", "http://localhost:80"} {
		c := Load(env(map[string]string{"BFF_PUBLIC_URL": pub}))
		ps := c.Validate()
		browser := map[string]string{"https://pay.example.com:443": "https://pay.example.com",
			"https://Pay.Example.com": "https://pay.example.com", "http://localhost:80": "http://localhost"}[pub]
		if !ps.has("BFF_PUBLIC_URL") && c.Origin() != browser {
			t.Errorf("BFF_PUBLIC_URL=%s accepted, but Origin() = %q while browsers send %q", pub, c.Origin(), browser)
		}
	}
}
