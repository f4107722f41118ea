package sandbox

import (
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The product refreshes many terminals' tokens at once and its users create payments in
// parallel; the sandbox must keep its books straight under that load.

func TestConcurrentRefreshesOfDistinctTokens(t *testing.T) {
	f := newFixture(t, Options{})
	const n = 100
	refreshTokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { refreshTokens[i] = f.login(t, "nonprod", "bead-terminal", f.terminal(i%3), "").RefreshToken })
	}
	wg.Wait()

	statuses := make([]int, n)
	fresh := make([]string, n)
	for i := range n {
		wg.Go(func() {
			var ans tokenAnswer
			statuses[i], ans = f.refresh(t, "nonprod", "bead-terminal", refreshTokens[i])
			fresh[i] = ans.AccessToken
		})
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Fatalf("refresh %d: status %d", i, st)
		}
	}
	seen := map[string]bool{}
	for _, tok := range fresh {
		seen[tok] = true
	}
	got := f.stats(t)
	if diff := cmp.Diff([]int{n, n, n, 0}, []int{len(seen), got.TokenRequests["password"], got.TokenRequests["refresh_token"], got.RefreshTokenReuse}); diff != "" {
		t.Errorf("[distinct new tokens, password grants, refresh grants, reuse] (-want +got):\n%s", diff)
	}
}

func TestConcurrentRefreshesOfOneTokenHaveOneWinner(t *testing.T) {
	f := newFixture(t, Options{})
	rt := f.login(t, "nonprod", "bead-terminal", f.terminal(0), "").RefreshToken
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i], _ = f.refresh(t, "nonprod", "bead-terminal", rt) })
	}
	wg.Wait()
	count := map[int]int{}
	for _, st := range statuses {
		count[st]++
	}
	if diff := cmp.Diff(map[int]int{200: 1, 400: n - 1}, count); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if got := f.stats(t).RefreshTokenReuse; got != n-1 {
		t.Errorf("refreshTokenReuse = %d, want %d", got, n-1)
	}
}

func TestConcurrentCreatesWithOneIdempotencyKeyMakeOnePayment(t *testing.T) {
	f := newFixture(t, Options{})
	token := f.token(t, 0)
	h := bearer(token)
	h.Set("Idempotency-Key", "5c8d0c2e-3b1f-4b7e-9a55-1f0f6b2d9a10")
	const n = 50
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, raw := f.call(t, http.MethodPost, "/payments/crypto", paymentBody(f.terminal(0), "7.00"), h)
			bodies[i] = string(raw)
		})
	}
	wg.Wait()
	for i, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("answer %d differs:\n%s\n%s", i, b, bodies[0])
		}
	}
	if got := f.stats(t).PaymentsCreated; got != 1 {
		t.Errorf("paymentsCreated = %d, want 1", got)
	}
}
