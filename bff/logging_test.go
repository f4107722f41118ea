package bff

import "testing"

// A checkout id is the only key to an embedded checkout; no form of its path may carry it into a log
// whole (TestRequestLogRedactsCheckoutIDs in cmd/beadbff checks the log lines of a running server).
func TestLoggedPathCutsCheckoutIDs(t *testing.T) {
	const id = "BA53YGdFn1eCu0eCSvAYPFLipFaMpH_ZnvUqSvpeMAc"
	for _, tt := range []struct{ name, in, want string }{
		{"the page", "/embed/checkout/" + id, "/embed/checkout/BA53…"},
		{"a sub-path", "/embed/checkout/" + id + "/events", "/embed/checkout/BA53…/events"},
		{"a trailing slash", "/embed/checkout/" + id + "/", "/embed/checkout/BA53…/"},
		{"mis-cased, which no route serves", "/EMBED/Checkout/" + id, "/EMBED/Checkout/BA53…"},
		{"a doubled slash", "/embed/checkout//" + id + "/qr.png", "/embed/checkout//BA53…/qr.png"},
		{"percent-encoded", "/embed/%63heckout/%42A53YGdFn1eCu0eCSvAYPFLipFaMpH_ZnvUqSvpeMAc", "/embed/%63heckout/BA53…"},
		// Found by a break-it review: these spellings carried the whole id into the log.
		{"a leading doubled slash", "//embed/checkout/" + id, "//embed/checkout/BA53…"},
		{"a doubled slash inside the prefix", "/embed//checkout/" + id + "/events", "/embed//checkout/BA53…/events"},
		{"a stray bad escape elsewhere", "/embed/%63heckout/" + id + "/%zz", "/embed/%63heckout/BA53…/%zz"},
		{"an encoded slash before the id", "/embed/checkout%2F" + id, "/embed/checkout/BA53…"},
		{"an id-shaped run under any path", "/x/" + id, "/x/BA53…"},
		{"a short id shows nothing of itself", "/embed/checkout/abc", "/embed/checkout/…"},
		{"no id", "/embed/checkout/", "/embed/checkout/"},
		{"the embed helper is no checkout", "/embed/beadbff-embed.js", "/embed/beadbff-embed.js"},
		{"a tracking id opens nothing without a session", "/payments/509f4a2d0fbbf13c0351475c31a85fb5", "/payments/509f4a2d0fbbf13c0351475c31a85fb5"},
		{"other encoded paths stay as they came", "/api/v1/payments/..%2Fpayments%2Fcrypto", "/api/v1/payments/..%2Fpayments%2Fcrypto"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := loggedPath(tt.in); got != tt.want {
				t.Errorf("loggedPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
