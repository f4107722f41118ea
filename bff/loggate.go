package bff

import (
	"sync"
	"time"
)

// logGate keeps a log line that anyone on the network can cause (a refused webhook) from flooding the log:
// per key, at most limit lines a window; what it held back is counted and reported on the first line of
// the next window. Metrics still count every event.
type logGate struct {
	limit  int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*gateWindow // keys come from a fixed set (check names), so the map stays small
}

type gateWindow struct {
	start        time.Time
	passed, held int
}

func newLogGate(limit int, window time.Duration) *logGate {
	return &logGate{limit: limit, window: window, keys: map[string]*gateWindow{}}
}

// allow says whether this event of key is logged and, if it is, how many were held back before it.
func (g *logGate) allow(key string, now time.Time) (ok bool, heldBefore int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.keys[key]
	if w == nil || now.Sub(w.start) >= g.window {
		if w != nil {
			heldBefore = w.held
		}
		g.keys[key] = &gateWindow{start: now, passed: 1}
		return true, heldBefore
	}
	if w.passed < g.limit {
		w.passed++
		return true, 0
	}
	w.held++
	return false, 0
}
