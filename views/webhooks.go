package views

import "strings"

// WebhooksView is /webhooks: where Bead's status callbacks for the terminal go, whether this server can
// verify them, what recently arrived, and the action that registers this server with Bead.
type WebhooksView struct {
	Page
	EndpointURL       string               // this server's receiver: BFF_PUBLIC_URL + "/webhooks/bead"
	Registration      *WebhookRegistration // nil: never registered from this server
	ConfiguredSecrets int                  // how many BEAD_WEBHOOK_SECRET entries the server has
	LegacyHex         bool                 // BEAD_WEBHOOK_LEGACY_HEX is on
	Deliveries        []WebhookDeliveryRow // this terminal's, newest first
	Refusals          []WebhookDeliveryRow // the server's refused (or unattributable) deliveries, newest first
}

// WebhookRegistration is the terminal's registration made from this server.
type WebhookRegistration struct {
	URL          string // the webhook URL registered
	RegisteredAt string // formatted, with time zone
	Rotating     bool   // the secret it replaced still verifies for a grace period
}

// WebhookDeliveryRow is one delivery as listed.
type WebhookDeliveryRow struct {
	At          string // formatted, with time zone
	Outcome     string // accepted, duplicate, ignored, refused
	TrackingID  string // "" for a refusal
	PaymentURL  string // this server's page of the payment, when known
	StatusCode  string // the status the delivery announced
	StatusLabel string
	Check       string // a refusal's failed check, e.g. timestamp_stale
	Detail      string // what was wrong, in words
	RequestID   string
	HTTPStatus  int
}

// Verifies reports whether the server holds a secret for this terminal's deliveries.
func (v WebhooksView) Verifies() bool { return v.ConfiguredSecrets > 0 || v.Registration != nil }

// outcomeLabel is an outcome in words.
func outcomeLabel(outcome string) string {
	switch outcome {
	case "accepted":
		return "Accepted"
	case "duplicate":
		return "Duplicate (already received)"
	case "ignored":
		return "Ignored"
	case "refused":
		return "Refused"
	}
	return outcome
}

// paymentEventsURL is the event stream of a payment's page, next to the page itself.
func paymentEventsURL(p PaymentRow) string {
	if p.URL == "" {
		return ""
	}
	return p.URL + "/events"
}

// checkoutEventsURL is the event stream of an embedded checkout, next to its status URL.
func checkoutEventsURL(statusURL string) string {
	base, ok := strings.CutSuffix(statusURL, "/status")
	if !ok {
		return ""
	}
	return base + "/events"
}

// DashboardEventsURL is the event stream of the dashboard.
const DashboardEventsURL = "/payments/events"
