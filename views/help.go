package views

// HelpCause is one section of /help/403.
type HelpCause struct {
	Code    string // the stable cause code, also the section's anchor
	Title   string
	Meaning string
	Fix     string
}

// HelpView is /help/403, the troubleshooting guide.
type HelpView struct {
	Page
	Causes       []HelpCause
	SupportEmail string
}

// IncidentView is /help/incidents/{id}: one diagnosed failure, shown only to the session that met it.
type IncidentView struct {
	Page
	ID         string // "" when the incident could not be stored (shown once, not linkable)
	At         string // when, with time zone
	Summary    string // what happened, in a sentence
	Cause      string // the stable cause code
	CauseTitle string
	Confidence string // high, medium, low
	HelpURL    string // the cause's section of /help/403
	RequestID  string
	Status     int    // what this server answered (beadbff's status, not Bead's)
	StatusText string // its words, e.g. "Bad Gateway"
	// StatusReason says why this server answered Status, e.g. "the refusal came from something on the way
	// to Bead, ..." ("" when not known).
	StatusReason string
	// BeadAnswer is what came back from the call to Bead, e.g. "A firewall or proxy in front of Bead (not
	// Bead itself) answered 403 Forbidden" or "Bead gave no answer within BEAD_TIMEOUT" ("" when not known).
	BeadAnswer string
	Evidence   []IncidentEvidence
	Fix        []string
	Tried      []string // what the server already did: refresh, retry, probe
	Checks     []IncidentCheck
	Bundle     *SupportBundle // nil for a refusal made here: Bead never saw the request
}

// IncidentEvidence is one fact and where it came from.
type IncidentEvidence struct {
	Fact   string
	Source string
}

// IncidentCheck is one step of Bead's 403 checklist as this server performed it.
type IncidentCheck struct {
	Name    string
	Status  string // passed, failed, not_applicable
	Finding string
}
