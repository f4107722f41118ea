package bead

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrNoSigningSecret: Bead accepted a webhook registration but its answer carried no signingSecret this
// client could find, so deliveries to the URL cannot be verified with a registered secret.
var ErrNoSigningSecret = errors.New("no signingSecret in the answer")

// maxSigningSecret bounds a signingSecret: Bead's are 44 base64 characters (32 bytes).
const maxSigningSecret = 512

// RegisterWebhook sets the terminal's default webhook URL (PUT /Terminals/{terminalId}/webhook with
// {"webhookUrl"}) and returns the signingSecret Bead generated for it, as sent (base64; see
// DecodeSigningSecret). It needs a token of the terminal itself (or of bead-integrator).
//
// Bead's docs show several answers; all are read: {"signingSecret", "terminalId", "webhookUrl",
// "updated"} (the field name in any case, or secret / webhookSecret), the same object inside "data" or
// "result", or the bare secret as a JSON string or as text. When Bead answers 404 or 405 (a deployment
// that only knows the oldest route), the call is made once more as PUT /Terminals/{terminalId}/set-webhook-url
// with {"Url"}, which the oldest revision documents.
func (c *Client) RegisterWebhook(ctx context.Context, accessToken, terminalID, webhookURL string) (string, error) {
	const op = "register webhook"
	if !ValidID(terminalID) {
		return "", fmt.Errorf("bead: %s: %w: terminalId", op, ErrInvalidID)
	}
	u, err := url.Parse(webhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(webhookURL) > 2048 {
		return "", fmt.Errorf("bead: %s: %w: the webhook URL must be an absolute http(s) URL", op, ErrInvalidRequest)
	}
	base := "/Terminals/" + url.PathEscape(terminalID)
	body, _ := json.Marshal(map[string]string{"webhookUrl": webhookURL}) // plain strings cannot fail
	a, err := c.callAPI(ctx, op, http.MethodPut, base+"/webhook", accessToken, body, nil)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed) {
		old, _ := json.Marshal(map[string]string{"Url": webhookURL})
		a, err = c.callAPI(ctx, op, http.MethodPut, base+"/set-webhook-url", accessToken, old, nil)
	}
	if err != nil {
		return "", err
	}
	if a.truncated {
		return "", fmt.Errorf("bead: %s: %w: more than %d bytes", op, ErrUnexpectedAnswer, maxAnswerBody)
	}
	secret := signingSecretOf(a.body)
	switch {
	case secret == "":
		return "", fmt.Errorf("bead: %s: %w: %w", op, ErrUnexpectedAnswer, ErrNoSigningSecret)
	case len(secret) > maxSigningSecret || !headerSafe(secret):
		return "", fmt.Errorf("bead: %s: %w: the signingSecret is not a base64 text", op, ErrUnexpectedAnswer)
	}
	if _, err := DecodeSigningSecret(secret); err != nil {
		return "", fmt.Errorf("bead: %s: %w: the signingSecret is not base64", op, ErrUnexpectedAnswer)
	}
	return secret, nil
}

// signingSecretOf finds the secret in every answer shape RegisterWebhook documents, or "".
func signingSecretOf(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	switch body[0] {
	case '"':
		var s string
		if json.Unmarshal(body, &s) == nil {
			return strings.TrimSpace(s)
		}
		return ""
	case '{':
		// encoding/json matches field names case-insensitively, so SigningSecret and signingsecret are
		// found too.
		var w struct {
			SigningSecret flexString      `json:"signingSecret"`
			Secret        flexString      `json:"secret"`
			WebhookSecret flexString      `json:"webhookSecret"`
			Data          json.RawMessage `json:"data"`
			Result        json.RawMessage `json:"result"`
		}
		if json.Unmarshal(body, &w) != nil {
			return ""
		}
		if s := firstNonEmpty(string(w.SigningSecret), string(w.WebhookSecret), string(w.Secret)); s != "" {
			return strings.TrimSpace(s)
		}
		for _, inner := range []json.RawMessage{w.Data, w.Result} {
			if t := bytes.TrimSpace(inner); len(t) > 0 && t[0] == '{' {
				if s := signingSecretOf(t); s != "" {
					return s
				}
			}
		}
		return ""
	}
	// A text/plain answer: the secret itself, if it is one token.
	if s := string(body); !strings.ContainsAny(s, " \t\r\n<>{}") {
		return s
	}
	return ""
}
