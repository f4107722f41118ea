package bff

import (
	"sync"

	"beadbff/session"
)

// tokenCache is this process's copy of each terminal's token, so that a call to Bead in steady state costs
// no store read beyond the session's own. A copy can be older than the store's (another server refreshed);
// that is harmless, because an access token stays valid until it expires, and the store is read again
// before any refresh (newerToken).
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]*session.TerminalToken
}

// maxCachedTerminals bounds the cache; past it, the cache starts again empty (each terminal then costs one
// store read to come back).
const maxCachedTerminals = 10000

func newTokenCache() *tokenCache { return &tokenCache{m: make(map[string]*session.TerminalToken)} }

func (c *tokenCache) get(terminalID string) *session.TerminalToken {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[terminalID]
}

// put keeps t unless the cache already has a copy stored later (two readers racing must not put an older
// copy back over a newer one).
func (c *tokenCache) put(t *session.TerminalToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if have := c.m[t.TerminalID]; have != nil && have.Version != t.Version && have.StoredAt.After(t.StoredAt) {
		return
	}
	if len(c.m) >= maxCachedTerminals {
		clear(c.m)
	}
	c.m[t.TerminalID] = t
}

// drop forgets the terminal's token if it is of version (any version when version is "").
func (c *tokenCache) drop(terminalID, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if have := c.m[terminalID]; have != nil && (version == "" || have.Version == version) {
		delete(c.m, terminalID)
	}
}
