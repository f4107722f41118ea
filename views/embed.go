package views

// EmbedCheckoutView is /embed/checkout/{checkoutId}: the page merchant sites frame for the shopper. Every
// value comes from the stored payment, never from the page's URL.
type EmbedCheckoutView struct {
	Nonce      string     // CSP nonce for this response
	Demo       bool       // the server talks to the embedded sandbox: say that no real money moves
	Payment    PaymentRow // amount, reference, status (URL is not used: the shopper has no staff page)
	PaymentURL string     // Bead's hosted payment page, opened as a new top-level window
	QRCodeURL  string     // a QR code of PaymentURL, served by this server ("" for none)
	StatusURL  string     // JSON the page polls until final: {"trackingId","statusCode","statusLabel","final","paid","pendingPaid"}
	// PendingPaid: a verified webhook announced a paid status that Bead has not confirmed yet; the page
	// says the payment was received and offers no "Pay now".
	PendingPaid bool
	// ParentOrigin is where the page posts its status messages: an origin of FRAME_ANCESTORS that the
	// embedding page named (or that its Referer showed), or "" when none was, and then nothing is posted.
	ParentOrigin string
}

// EmbedMessageView is what a shopper sees in the frame when the checkout cannot be shown: a calm
// sentence and a reference to quote, never the diagnosis staff pages show.
type EmbedMessageView struct {
	Nonce        string
	Heading      string // e.g. "This payment link does not work"
	Detail       string // what the shopper can do
	Reference    string // the request id, for the merchant's support
	ParentOrigin string // as in EmbedCheckoutView: the frame still reports its height
}
