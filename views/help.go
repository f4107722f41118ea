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
	Status     int // what this server answered
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
