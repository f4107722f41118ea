package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// DefaultIncidentTTL is how long a diagnosed failure stays viewable: about a day, long enough to send the
// support bundle, short enough not to pile up.
const DefaultIncidentTTL = 24 * time.Hour

// SaveIncident keeps a diagnosed failure (opaque bytes: the web server's JSON) for ttl, sealed like a
// session, under the session that met it: only LoadIncident with the same session id finds it again.
func (s *store) SaveIncident(ctx context.Context, sessionID, incidentID string, data []byte, ttl time.Duration) error {
	if sessionID == "" || incidentID == "" || ttl <= 0 {
		return errors.New("session: save incident: session id, incident id and a positive ttl are required")
	}
	ctx, cancel, err := s.call(ctx, "save incident")
	defer cancel()
	if err != nil {
		return err
	}
	key := s.incidentKey(sessionID, incidentID)
	if err := s.be.set(ctx, key, s.keys.Seal(key, data), ttl); err != nil {
		return unavailable("save incident", err)
	}
	return nil
}

// LoadIncident returns the incident saved under this session, or ErrNotFound: for another session's
// incident, an expired one, a malformed id or an unreadable blob alike, so that nothing tells them apart.
func (s *store) LoadIncident(ctx context.Context, sessionID, incidentID string) ([]byte, error) {
	if sessionID == "" || incidentID == "" || len(incidentID) > 128 {
		return nil, fmt.Errorf("session: load incident: %w", ErrNotFound)
	}
	ctx, cancel, err := s.call(ctx, "load incident")
	defer cancel()
	if err != nil {
		return nil, err
	}
	key := s.incidentKey(sessionID, incidentID)
	blob, err := s.be.get(ctx, key)
	if err != nil {
		return nil, backendErr("load incident", err)
	}
	data, err := s.keys.Open(key, blob)
	if err != nil {
		return nil, fmt.Errorf("session: load incident: %w: %w", ErrNotFound, err)
	}
	return data, nil
}

// incidentKey names an incident by a hash of its session's id (never the id: it is the cookie) and its
// own id.
func (s *store) incidentKey(sessionID, incidentID string) string {
	sum := sha256.Sum256([]byte(sessionID))
	return s.opts.Prefix + "inc:" + hex.EncodeToString(sum[:16]) + ":" + url.QueryEscape(incidentID)
}
