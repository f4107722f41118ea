package bff

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"beadbff/bff/bead"
	"beadbff/session"
	"beadbff/static"
	"beadbff/views"
)

// The embeddable checkout: /embed/checkout/{checkoutId}, the page merchant sites frame for their
// shoppers. It needs no login and sets no cookie, so it works with third-party cookies blocked; the
// unguessable checkout id (256 random bits) is the only key. Everything it shows comes from the stored
// payment, never from its URL. Its status is the stored one, refreshed from Bead (at most every
// embedPollEvery per payment and process) with a token of the payment's terminal: the terminal's shared
// token while any of its staff are logged in, or the service account's login when BEAD_TERMINAL_USERNAME
// is that terminal's (unattendedCall). With neither it is what staff reads and Bead's webhooks last
// recorded.

// embedPollEvery bounds the Bead reads of one payment that watching shoppers cause, per process.
const embedPollEvery = 3 * time.Second

// embedBeadTimeout: a shopper's status poll should never hang on Bead; the next poll tries again.
const embedBeadTimeout = 5 * time.Second

// embedHeaders replaces the page policy of securityHeaders for everything under /embed: frame-ancestors
// from FRAME_ANCESTORS ('none' when it is empty) instead of 'none', payment allowed to the frame itself
// (the merchant's iframe delegates it with allow="payment"), no form posts, and no caching: the status
// is live and the nonce is per response. It never sets X-Frame-Options, which would contradict the CSP.
func (s *Server) embedHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonceOf(c)+"'; style-src 'self'; "+
		"img-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors "+s.frameAncestorsSources())
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), payment=(self)")
	c.Set("Cache-Control", "no-store")
	return c.Next()
}

func (s *Server) frameAncestorsSources() string {
	if s.web.frameAncestors.empty() {
		return "'none'"
	}
	return strings.Join(s.web.frameAncestors.sources, " ")
}

// checkoutIDLen is the length of randomToken's ids (32 bytes, unpadded URL-safe base64).
const checkoutIDLen = 43

// validCheckoutID spares the store ids that randomToken cannot have made.
func validCheckoutID(id string) bool {
	if len(id) != checkoutIDLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil && len(b) == 32
}

var errNoCheckout = errors.New("bff: no such checkout")

func (s *Server) checkoutPayment(c *fiber.Ctx) (*session.Payment, error) {
	id := c.Params("checkoutId")
	if !validCheckoutID(id) {
		return nil, errNoCheckout
	}
	p, err := s.store.PaymentByCheckout(c.UserContext(), utils.CopyString(id))
	if errors.Is(err, session.ErrNotFound) {
		return nil, errNoCheckout
	}
	return p, err
}

// embedParentOrigin is the embedding page's origin, to post status messages to: the parentOrigin query
// parameter (which beadbff-embed.js sets) if FRAME_ANCESTORS lists it, else the Referer's origin (the
// page that loaded the frame, the same as the frame's document.referrer) if listed; else "" and the
// page posts nothing. The browser itself refuses to post to a window of another origin, so a listed
// origin named by someone else's page reaches no one.
func (s *Server) embedParentOrigin(c *fiber.Ctx) string {
	if o := c.Query("parentOrigin"); o != "" && s.web.frameAncestors.allows(o) {
		return utils.CopyString(o)
	}
	if ref, err := url.Parse(c.Get(fiber.HeaderReferer)); err == nil && ref.Scheme != "" && ref.Host != "" {
		if o := ref.Scheme + "://" + ref.Host; s.web.frameAncestors.allows(o) {
			return o
		}
	}
	return ""
}

func (s *Server) embedCheckoutPage(c *fiber.Ctx) error {
	p, err := s.checkoutPayment(c)
	if err != nil {
		return s.embedFailure(c, err)
	}
	p = s.currentCheckoutStatus(c, p)
	id := url.PathEscape(p.CheckoutID)
	v := views.EmbedCheckoutView{
		Nonce:        nonceOf(c),
		Demo:         s.cfg.Demo,
		Payment:      s.paymentRow(p),
		PaymentURL:   p.PaymentURL,
		StatusURL:    "/embed/checkout/" + id + "/status",
		ParentOrigin: s.embedParentOrigin(c),
		PendingPaid:  liveStatusOf(p).PendingPaid,
	}
	if p.PaymentURL != "" {
		v.QRCodeURL = "/embed/checkout/" + id + "/qr.png"
	}
	return render(c, http.StatusOK, views.EmbedCheckout(v))
}

// checkoutStatusJSON is what the embedded page polls; the same words the parent receives.
type checkoutStatusJSON struct {
	TrackingID  string `json:"trackingId"`
	StatusCode  string `json:"statusCode"`
	StatusLabel string `json:"statusLabel"`
	Final       bool   `json:"final"`
	Paid        bool   `json:"paid"`
	// PendingPaid: a verified webhook announced a paid status Bead has not confirmed yet (as on the
	// event stream), so a page that polls because the stream does not reach it stops offering "Pay now".
	PendingPaid bool `json:"pendingPaid"`
}

func (s *Server) embedCheckoutStatus(c *fiber.Ctx) error {
	p, err := s.checkoutPayment(c)
	if err != nil {
		status, word := s.embedFailureStatus(c, err)
		return c.Status(status).JSON(fiber.Map{"error": word, "requestId": requestIDOf(c)})
	}
	p = s.currentCheckoutStatus(c, p)
	st := bead.Status(p.StatusCode)
	return c.JSON(checkoutStatusJSON{TrackingID: p.TrackingID, StatusCode: p.StatusCode, StatusLabel: st.Label(),
		Final: st.Final(), Paid: st.Paid(), PendingPaid: liveStatusOf(p).PendingPaid})
}

// embedCheckoutQR draws the stored hosted-page URL, like paymentQR: never a URL from the request.
func (s *Server) embedCheckoutQR(c *fiber.Ctx) error {
	p, err := s.checkoutPayment(c)
	if err == nil && p.PaymentURL == "" {
		err = errNoCheckout
	}
	if err != nil {
		status, _ := s.embedFailureStatus(c, err)
		return c.SendStatus(status)
	}
	if err := sendQRCode(c, p.PaymentURL); err != nil {
		s.log.Error("checkout QR code", "requestId", requestIDOf(c), "err", err)
		return c.SendStatus(http.StatusInternalServerError)
	}
	return nil
}

// currentCheckoutStatus is the payment with the freshest status this server can have without a staff
// session. It never fails: when Bead cannot be asked, or does not answer, the stored status is the answer
// (the page polls again), and the reason goes to the log, not to the shopper.
func (s *Server) currentCheckoutStatus(c *fiber.Ctx, p *session.Payment) *session.Payment {
	if bead.Status(p.StatusCode).Final() || !s.web.polls.due(p.TrackingID, s.now()) {
		s.web.metrics.embedStatus.WithLabelValues("stored").Inc()
		return p
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), embedBeadTimeout)
	defer cancel()
	st, err := s.unattendedTracking(ctx, p, "tracking (embed)")
	switch {
	case errors.Is(err, errNoToken):
		s.web.metrics.embedStatus.WithLabelValues("stored").Inc() // no token of its terminal at hand
		return p
	case err != nil:
		s.web.metrics.embedStatus.WithLabelValues("bead_failed").Inc()
		s.log.Warn("embedded checkout: status not refreshed from Bead; the stored one is shown",
			"requestId", requestIDOf(c), "trackingId", p.TrackingID, "err", err)
		return p
	}
	s.web.metrics.embedStatus.WithLabelValues("bead").Inc()
	next := mergeStatus(p, st, s.now())
	if statusMoved(p, next) {
		if err := s.recordPayment(c.UserContext(), next); err != nil {
			s.log.Warn("embedded checkout: status not recorded", "requestId", requestIDOf(c), "trackingId", p.TrackingID, "err", err)
		}
	}
	return next
}

// embedFailureStatus logs what went wrong and says which calm answer the shopper gets.
func (s *Server) embedFailureStatus(c *fiber.Ctx, err error) (int, string) {
	if errors.Is(err, errNoCheckout) {
		return http.StatusNotFound, "not_found"
	}
	s.log.Error("embedded checkout failed", "requestId", requestIDOf(c), "path", loggedPath(c.Path()), "err", err)
	if errors.Is(err, session.ErrUnavailable) {
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "unavailable"
}

// embedFailure is the page a shopper sees instead of the checkout: one calm sentence and a reference to
// quote, in the frame (the embed CSP still applies), never the causes and evidence of the staff pages.
func (s *Server) embedFailure(c *fiber.Ctx, err error) error {
	status, _ := s.embedFailureStatus(c, err)
	v := views.EmbedMessageView{Nonce: nonceOf(c), Reference: requestIDOf(c), ParentOrigin: s.embedParentOrigin(c),
		Heading: "This payment cannot be shown right now",
		Detail:  "Please try again in a moment. If it keeps happening, contact the shop and quote the reference below."}
	if status == http.StatusNotFound {
		v.Heading = "This payment link does not work"
		v.Detail = "It may be mistyped or too old. Please go back to the shop and start the payment again."
	}
	if status == http.StatusServiceUnavailable {
		c.Set(fiber.HeaderRetryAfter, "5")
	}
	return render(c, status, views.EmbedMessage(v))
}

func (s *Server) embedNotFound(c *fiber.Ctx) error { return s.embedFailure(c, errNoCheckout) }

// embedHelperScript serves static/assets/beadbff-embed.js under a name that does not change, for merchants
// to paste once; an hour's cache lets a fix reach their pages the same day. Other sites load it with
// <script src>, hence Cross-Origin-Resource-Policy: cross-origin.
func (s *Server) embedHelperScript(c *fiber.Ctx) error {
	body, ctype, ok := static.Lookup(strings.TrimPrefix(static.URL("beadbff-embed.js"), static.Prefix))
	if !ok {
		return s.embedNotFound(c)
	}
	c.Set("Cache-Control", "public, max-age=3600")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	c.Set(fiber.HeaderContentType, ctype)
	return c.Send(body)
}
