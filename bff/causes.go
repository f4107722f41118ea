package bff

import "beadbff/config"

const supportEmail = config.BeadSupportEmail

// causeInfo explains one cause on /help/403, in our own words.
type causeInfo struct {
	Code    string
	Title   string
	Meaning string
	Fix     string
}

// localCauses are the causes only this server's own refusals have; the rest of /help/403 is the
// diagnosis package's cause table (see helpSections).
var localCauses = []causeInfo{
	{CauseCSRFTokenInvalid, "Form refused",
		"A form was sent from another site or without this session's form token. Nothing was done.",
		"Reload the page and submit the form again from beadbff itself."},
	{CauseLoginThrottled, "Too many failed logins",
		"Too many wrong passwords were tried for this username, or from this address, within the window of LOGIN_LIMIT_PER_USERNAME or LOGIN_LIMIT_PER_ADDRESS. Until a try expires no login is sent to Bead, not even with the right password.",
		"Wait for the time given (Retry-After) and log in once with the right password. Operators behind a reverse proxy: list it in BFF_TRUSTED_PROXIES, or every client shares the proxy's address."},
	{CauseInternal, "Internal error",
		"Something went wrong inside beadbff. It is logged with the request id.",
		"Try again; if it persists, give the request id to whoever runs this server."},
}
