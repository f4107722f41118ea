package bff

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"beadbff/bff/bead"
	"beadbff/session"
	"beadbff/views"
)

// The staff page of webhooks (/webhooks) and its "register this server's webhook" action.

// webhookRegistrar is the part of the Bead client the register action needs; *bead.Client has it. It
// is asserted rather than added to beadAPI so that the fakes of other tests need not grow it.
type webhookRegistrar interface {
	RegisterWebhook(ctx context.Context, accessToken, terminalID, webhookURL string) (string, error)
}

// webhookURL is where Bead should send this server's callbacks.
func (s *Server) webhookURL() string { return s.cfg.Origin() + "/webhooks/bead" }

const timeLayout = "2006-01-02 15:04:05 MST"

func (s *Server) webhooksPage(c *fiber.Ctx) error {
	sess := sessionOf(c)
	ctx := c.UserContext()
	deliveries, err := s.store.WebhookDeliveries(ctx, sess.TerminalID, 0)
	if err != nil {
		return storeUnavailable(err)
	}
	refusals, err := s.store.WebhookDeliveries(ctx, "", 0)
	if err != nil {
		return storeUnavailable(err)
	}
	secrets, err := s.store.WebhookSecrets(ctx)
	if err != nil {
		return storeUnavailable(err)
	}
	v := views.WebhooksView{
		Page:              s.page(c, "Webhooks"),
		EndpointURL:       s.webhookURL(),
		ConfiguredSecrets: len(s.cfg.WebhookSecrets),
		LegacyHex:         s.cfg.WebhookLegacyHex,
	}
	for _, sec := range secrets {
		if sec.TerminalID == sess.TerminalID {
			v.Registration = &views.WebhookRegistration{URL: sec.URL, RegisteredAt: sec.RegisteredAt.UTC().Format(timeLayout),
				Rotating: len(sec.Previous) > 0}
		}
	}
	if c.Query("registered") == "1" && v.Registration != nil {
		sender := "Bead"
		if s.cfg.Demo {
			sender = "The sandbox" // demo mode registers with the built-in sandbox, not Bead
		}
		v.Flash = "Registered: " + sender + " now sends this terminal's status changes to " + v.Registration.URL + "."
	}
	for _, d := range deliveries {
		v.Deliveries = append(v.Deliveries, deliveryRow(d, true))
	}
	for _, d := range refusals {
		v.Refusals = append(v.Refusals, deliveryRow(d, false))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render(c, http.StatusOK, views.Webhooks(v))
}

func deliveryRow(d session.WebhookDelivery, ownTerminal bool) views.WebhookDeliveryRow {
	row := views.WebhookDeliveryRow{At: d.At.UTC().Format(timeLayout), Outcome: d.Outcome, Check: d.Check, Detail: d.Detail,
		RequestID: d.RequestID, HTTPStatus: d.HTTPStatus}
	if ownTerminal {
		row.TrackingID, row.StatusCode, row.StatusLabel = d.TrackingID, d.StatusCode, bead.Status(d.StatusCode).Label()
		if bead.ValidID(d.TrackingID) {
			row.PaymentURL = "/payments/" + url.PathEscape(d.TrackingID)
		}
	}
	return row
}

// webhookRegisterSubmit registers this server's URL as the terminal's webhook with the staff token, and
// keeps the returned secret, sealed, to verify deliveries with from now on (every process within
// secretCacheTTL).
func (s *Server) webhookRegisterSubmit(c *fiber.Ctx) error {
	sess := sessionOf(c)
	registrar, ok := s.bead.(webhookRegistrar)
	if !ok {
		return &Problem{Status: http.StatusNotImplemented, Cause: CauseInternal, Title: "Registration not available",
			Detail: "This server's Bead client cannot register webhooks."}
	}
	hook := s.webhookURL()
	var secret string
	err := s.withBead(c, sess, "register webhook", func(ctx context.Context, token string) error {
		var err error
		secret, err = registrar.RegisterWebhook(ctx, token, sess.TerminalID, hook)
		return err
	})
	if errors.Is(err, bead.ErrUnexpectedAnswer) {
		return &Problem{Status: http.StatusBadGateway, Cause: CauseUnknown, Title: "Bead's answer had no usable signing secret",
			Detail: "Bead accepted the webhook URL but its answer did not carry a base64 signingSecret, so deliveries cannot be verified with it. Set BEAD_WEBHOOK_SECRET to the terminal's secret instead.", Err: err}
	}
	if err != nil {
		return err
	}
	key, err := bead.DecodeSigningSecret(secret)
	if err != nil {
		return err // RegisterWebhook checked it; this is a bug
	}
	if err := s.store.SaveWebhookSecret(c.UserContext(), sess.TerminalID, key, hook); err != nil {
		// Bead now signs with a secret we could not keep: say so, the registration must be repeated.
		s.log.Error("webhook registered at Bead but its secret not stored", "requestId", requestIDOf(c), "terminalId", sess.TerminalID, "err", err)
		return storeUnavailable(err)
	}
	s.hooks.forgetSecrets()
	s.log.Info("webhook registered", "requestId", requestIDOf(c), "terminalId", sess.TerminalID, "url", hook,
		"at", s.now().UTC().Format(time.RFC3339))
	return c.Redirect("/webhooks?registered=1", http.StatusSeeOther)
}
