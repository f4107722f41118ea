package sandbox

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestControlTerminals(t *testing.T) {
	f := newFixture(t, Options{})
	var got []map[string]string
	if err := json.Unmarshal(f.control(t, http.MethodGet, "/_sandbox/terminals", nil, http.StatusOK), &got); err != nil {
		t.Fatal(err)
	}
	hex24 := regexp.MustCompile(`^[0-9a-f]{24}$`)
	perMerchant := map[string]int{}
	for _, term := range got {
		if !hex24.MatchString(term["terminalId"]) || !hex24.MatchString(term["merchantId"]) {
			t.Errorf("ids of %v are not 24 hex", term)
		}
		if term["username"] != term["terminalId"]+"@beadpay.io" || term["password"] == "" {
			t.Errorf("credentials of %v", term)
		}
		perMerchant[term["merchantId"]]++
	}
	var counts []int
	for _, n := range perMerchant {
		counts = append(counts, n)
	}
	sort.Ints(counts)
	if diff := cmp.Diff([]int{1, 2}, counts); diff != "" {
		t.Errorf("terminals per merchant %v, want one merchant with two and one with one", perMerchant)
	}
	// The listed credentials log in.
	f.login(t, "nonprod", "bead-terminal", Terminal{Username: got[2]["username"], Password: got[2]["password"]}, "")
}

func TestControlStatusTransitions(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	tests := []struct {
		name       string
		path       []string // statuses posted in order; the last one is checked
		wantStatus int
	}{
		{"created to processing", []string{"processing"}, http.StatusOK},
		{"processing to completed", []string{"processing", "completed"}, http.StatusOK},
		{"legacy number", []string{"2"}, http.StatusOK},
		{"any case", []string{"Cancelled"}, http.StatusOK},
		{"completed to refunded", []string{"completed", "partiallyRefunded"}, http.StatusOK},
		{"final cannot change", []string{"expired", "completed"}, http.StatusConflict},
		{"back to processing", []string{"underpaid", "processing"}, http.StatusConflict},
		{"refund of an unpaid payment", []string{"fullyRefunded"}, http.StatusConflict},
		{"unknown status", []string{"paid"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.createPayment(t, token, paymentBody(f.terminal(0), "9.99"))
			path := "/_sandbox/payments/" + c.TrackingID + "/status"
			for _, st := range tt.path[:len(tt.path)-1] {
				f.control(t, http.MethodPost, path, map[string]string{"statusCode": st}, http.StatusOK)
			}
			raw := f.control(t, http.MethodPost, path, map[string]string{"statusCode": tt.path[len(tt.path)-1]}, tt.wantStatus)
			if tt.wantStatus == http.StatusOK {
				want, _ := canonicalStatus(tt.path[len(tt.path)-1])
				if got := decodeMap(t, raw)["statusCode"]; got != want {
					t.Errorf("answer statusCode %v, want %s", got, want)
				}
			}
		})
	}
	f.control(t, http.MethodPost, "/_sandbox/payments/"+strings.Repeat("a", 32)+"/status", map[string]string{"statusCode": "completed"}, http.StatusNotFound)
}

func TestResetStats(t *testing.T) {
	f := newFixture(t, Options{})
	f.token(t, 0)
	f.control(t, http.MethodPost, "/_sandbox/reset-stats", nil, http.StatusNoContent)
	got := f.stats(t)
	if diff := cmp.Diff(map[string]int{"password": 0, "refresh_token": 0}, got.TokenRequests); diff != "" {
		t.Errorf("tokenRequests after reset (-want +got):\n%s", diff)
	}
}

func TestConfigChangesTokenLifetimes(t *testing.T) {
	f := newFixture(t, Options{})
	raw := f.control(t, http.MethodPost, "/_sandbox/config", map[string]string{"accessTokenTtl": "2s", "refreshTokenTtl": "1m"}, http.StatusOK)
	if got := decodeMap(t, raw)["accessTokenTtl"]; got != "2s" {
		t.Errorf("config answer accessTokenTtl %v", got)
	}
	ans := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "")
	if ans.ExpiresIn != 2 || ans.RefreshExpiresIn != 60 {
		t.Errorf("expires_in %d, refresh_expires_in %d; want 2 and 60", ans.ExpiresIn, ans.RefreshExpiresIn)
	}
	for _, bad := range []map[string]string{{"accessTokenTtl": "0s"}, {"accessTokenTtl": "soon"}, {"webhookSecret": "%%%"}, {"webhookUrl": "relative/path"}} {
		f.control(t, http.MethodPost, "/_sandbox/config", bad, http.StatusBadRequest)
	}
	if strings.Contains(string(f.control(t, http.MethodGet, "/_sandbox/config", nil, http.StatusOK)), "ecret") {
		t.Error("GET /_sandbox/config shows the signing secret")
	}
}

func TestNewRefusesImpossibleOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"sub-second access tokens", Options{AccessTokenTTL: 500 * time.Millisecond}},
		{"unknown paymentUrls shape", Options{PaymentURLsShape: "qr"}},
		{"unknown statusCode format", Options{StatusCodeFormat: "roman"}},
		{"relative webhook URL", Options{WebhookURL: "/hooks"}},
		{"negative retry", Options{WebhookRetry: []time.Duration{-time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
