package sandbox

import "strconv"

// stats are the counters GET /_sandbox/stats shows. They let a test assert what the product
// did to Bead (one password grant, no token per transaction, one refresh after expiry) without
// watching the wire.
type stats struct {
	tokenRequests     map[string]int // by grant type: password, refresh_token, other
	tokenResponses    map[string]int // by HTTP status
	apiRequests       map[string]int // by HTTP status, faulted answers included
	refreshTokenReuse int
	logouts           int
	paymentsCreated   int
	webhookDelivered  int // attempts answered 2xx
	webhookFailed     int // attempts that failed (non-2xx, timeout, refused)
	webhookAbandoned  int // deliveries that failed every attempt
	faultsApplied     map[string]int
}

func newStats() stats {
	return stats{
		tokenRequests:  map[string]int{"password": 0, "refresh_token": 0},
		tokenResponses: map[string]int{},
		apiRequests:    map[string]int{},
		faultsApplied:  map[string]int{},
	}
}

// statsView is the JSON of GET /_sandbox/stats.
type statsView struct {
	TokenRequests     map[string]int `json:"tokenRequests"`
	TokenResponses    map[string]int `json:"tokenResponses"`
	APIRequests       map[string]int `json:"apiRequests"`
	RefreshTokenReuse int            `json:"refreshTokenReuse"`
	Logouts           int            `json:"logouts"`
	PaymentsCreated   int            `json:"paymentsCreated"`
	WebhookDeliveries map[string]int `json:"webhookDeliveries"`
	FaultsApplied     map[string]int `json:"faultsApplied"`
}

func (st *stats) view() statsView {
	clone := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return statsView{
		TokenRequests:     clone(st.tokenRequests),
		TokenResponses:    clone(st.tokenResponses),
		APIRequests:       clone(st.apiRequests),
		RefreshTokenReuse: st.refreshTokenReuse,
		Logouts:           st.logouts,
		PaymentsCreated:   st.paymentsCreated,
		WebhookDeliveries: map[string]int{
			"delivered": st.webhookDelivered,
			"failed":    st.webhookFailed,
			"abandoned": st.webhookAbandoned,
		},
		FaultsApplied: clone(st.faultsApplied),
	}
}

func (s *Sandbox) countTokenRequest(grant string, status int) {
	if grant != "password" && grant != "refresh_token" {
		grant = "other" // the key set stays bounded whatever callers send
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.stats.tokenRequests[grant]++
	s.state.stats.tokenResponses[strconv.Itoa(status)]++
}

func (s *Sandbox) countAPIRequest(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.stats.apiRequests[strconv.Itoa(status)]++
}
