package bff

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"beadbff/bff/diagnose"
	"beadbff/views"
)

// Causes: the stable codes of CONTRACT.md (and the anchors of /help/403). The diagnosis package owns the
// table; the server names them here so handlers read as the server's own words. Additions only the
// server's own refusals have are at the end.
const (
	CauseTokenMissing            = diagnose.CauseTokenMissing
	CauseTokenExpired            = diagnose.CauseTokenExpired
	CauseWrongClientOrScope      = diagnose.CauseWrongClientOrScope
	CauseTerminalMismatch        = diagnose.CauseTerminalMismatch
	CauseRealmMismatch           = diagnose.CauseRealmMismatch
	CauseClockSkew               = diagnose.CauseClockSkew
	CauseRefreshTokenInvalid     = diagnose.CauseRefreshTokenInvalid
	CauseBlockedBeforeBead       = diagnose.CauseBlockedBeforeBead
	CauseWebhookSignatureInvalid = diagnose.CauseWebhookSignatureInvalid
	CauseCORSOriginNotAllowed    = diagnose.CauseCORSOriginNotAllowed
	CauseCSRFHeaderMissing       = diagnose.CauseCSRFHeaderMissing
	CauseRateLimited             = diagnose.CauseRateLimited
	CauseBeadUnavailable         = diagnose.CauseBeadUnavailable
	CauseSessionStoreUnavailable = diagnose.CauseSessionStoreUnavailable
	CauseNotAuthenticated        = diagnose.CauseNotAuthenticated
	CauseInvalidRequest          = diagnose.CauseInvalidRequest
	CauseUnknown                 = diagnose.CauseUnknown
	CauseInvalidCredentials      = diagnose.CauseInvalidCredentials // the realm refused the username or password
	CauseNotFound                = diagnose.CauseNotFound           // no such page, payment or checkout

	CauseCSRFTokenInvalid = "csrf_token_invalid" // an HTML form without this session's token, or from another site
	CauseInternal         = "internal_error"     // a bug of ours; logged with the request id
)

// Problem is an error that knows how it is shown: as application/problem+json on /api and as an error page
// in a browser. Handlers return it (or an error the mapping in errorHandler turns into one).
type Problem struct {
	Status     int
	Cause      string
	Title      string
	Detail     string
	RetryAfter time.Duration // sent as Retry-After when > 0
	LoginAgain bool          // the page offers "Log in again"
	Bundle     *views.SupportBundle
	Fields     map[string]string // per-field messages of an invalid request
	Err        error             // the underlying error, for the log only

	// A diagnosed failure of a call to Bead (see incidents.go): its stored incident and the checklist.
	IncidentID string
	Incident   *incidentRecord
}

func (p *Problem) Error() string {
	if p.Err != nil {
		return fmt.Sprintf("%s: %s: %v", p.Cause, p.Title, p.Err)
	}
	return p.Cause + ": " + p.Title
}

func (p *Problem) Unwrap() error { return p.Err }

// problemBody is the JSON shape of CONTRACT.md.
type problemBody struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Cause     string            `json:"cause"`
	RequestID string            `json:"requestId"`
	HelpURL   string            `json:"helpUrl"`
	Errors    map[string]string `json:"errors,omitempty"`

	// A diagnosed failure of a call to Bead.
	IncidentID  string           `json:"incidentId,omitempty"`
	IncidentURL string           `json:"incidentUrl,omitempty"`
	Confidence  string           `json:"confidence,omitempty"`
	Checks      []diagnose.Check `json:"checks,omitempty"`
	Support     *supportBody     `json:"support,omitempty"`
}

type supportBody struct {
	Timestamp string `json:"timestamp"`
	Path      string `json:"path"`
	RequestID string `json:"requestId"`
	JWTPrefix string `json:"jwtPrefix,omitempty"`
	Email     string `json:"email"`          // "" when there is no one to mail (demo mode)
	Note      string `json:"note,omitempty"` // why, then
}

func invalidRequest(detail string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Cause: CauseInvalidRequest, Title: "Invalid request", Detail: detail}
}

func invalidFields(fields map[string]string) *Problem {
	p := invalidRequest("Some fields are not valid; see errors.")
	p.Fields = fields
	return p
}

func notAuthenticated() *Problem {
	return &Problem{Status: http.StatusUnauthorized, Cause: CauseNotAuthenticated, Title: "Not logged in",
		Detail: "There is no session, or it has ended. Log in again.", LoginAgain: true}
}

func notFound(what string) *Problem {
	return &Problem{Status: http.StatusNotFound, Cause: CauseNotFound, Title: "Not found", Detail: what + " was not found."}
}

func storeUnavailable(err error) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Cause: CauseSessionStoreUnavailable,
		Title: "Session store unavailable", RetryAfter: time.Second,
		Detail: "beadbff cannot reach its session store right now. Your session is kept; try again in a moment.", Err: err}
}

func asProblem(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}
