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
