package bead

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestRegisterWebhook(t *testing.T) {
	const terminal = "0123456789abcdef01234567"
	const hook = "https://shop.example/webhooks/bead"
	tests := []struct {
		name       string
		handle     http.HandlerFunc
		want       string
		wantErr    error
		wantPaths  []string
		wantStatus int // of an *APIError
	}{
		{"documented answer", answerJSON(200, `{"terminalId":"`+terminal+`","webhookUrl":"`+hook+`","signingSecret":"`+vectorSecret+`","updated":"2026-03-01T12:00:00Z"}`),
			vectorSecret, nil, []string{"/Terminals/" + terminal + "/webhook"}, 0},
		{"field name in Pascal case", answerJSON(200, `{"SigningSecret":"`+vectorSecret+`"}`), vectorSecret, nil, nil, 0},
		{"webhookSecret", answerJSON(200, `{"webhookSecret":"`+vectorSecret+`"}`), vectorSecret, nil, nil, 0},
		{"inside data", answerJSON(200, `{"data":{"signingSecret":"`+vectorSecret+`"}}`), vectorSecret, nil, nil, 0},
		{"inside result", answerJSON(200, `{"result":{"secret":"`+vectorSecret+`"},"success":true}`), vectorSecret, nil, nil, 0},
		{"a bare JSON string", answerJSON(200, `"`+vectorSecret+`"`), vectorSecret, nil, nil, 0},
		{"plain text", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, vectorSecret+"\n")
		}, vectorSecret, nil, nil, 0},
		{"404: the oldest route is tried once", func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/set-webhook-url") {
				answerJSON(200, `{"signingSecret":"`+vectorSecret+`"}`)(w, r)
				return
			}
			w.WriteHeader(http.StatusNotFound)
		}, vectorSecret, nil, []string{"/Terminals/" + terminal + "/webhook", "/Terminals/" + terminal + "/set-webhook-url"}, 0},
		{"no secret in the answer", answerJSON(200, `{"terminalId":"`+terminal+`","webhookUrl":"`+hook+`"}`), "", ErrNoSigningSecret, nil, 0},
		{"empty 204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, "", ErrNoSigningSecret, nil, 0},
		{"secret not base64", answerJSON(200, `{"signingSecret":"not*base64"}`), "", ErrUnexpectedAnswer, nil, 0},
		{"403 is an APIError, not retried", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) },
			"", nil, []string{"/Terminals/" + terminal + "/webhook"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.handle)
			got, err := newTestClient(t, f).RegisterWebhook(context.Background(), sampleToken(t), terminal, hook)
			switch {
			case tt.wantStatus != 0:
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != tt.wantStatus {
					t.Fatalf("err = %v, want an APIError %d", err, tt.wantStatus)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
			reqs := f.requests()
			if tt.wantPaths != nil {
				var paths []string
				for _, r := range reqs {
					paths = append(paths, r.Path)
				}
				if strings.Join(paths, " ") != strings.Join(tt.wantPaths, " ") {
					t.Errorf("paths %v, want %v", paths, tt.wantPaths)
				}
			}
			first := reqs[0]
			var body map[string]string
			if first.Method != http.MethodPut || json.Unmarshal([]byte(first.Body), &body) != nil || body["webhookUrl"] != hook {
				t.Errorf("first request %s %s, want PUT {\"webhookUrl\":%q}", first.Method, first.Body, hook)
			}
			if !strings.HasPrefix(first.Header.Get("Authorization"), "Bearer ") {
				t.Errorf("Authorization %q, want the bearer token", first.Header.Get("Authorization"))
			}
		})
	}
}

func TestRegisterWebhookRefusesBadInput(t *testing.T) {
	f := newFake(t, answerJSON(200, `{"signingSecret":"`+vectorSecret+`"}`))
	c := newTestClient(t, f)
	if _, err := c.RegisterWebhook(context.Background(), sampleToken(t), "../admin", "https://x.example/h"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("bad terminal id: %v", err)
	}
	for _, u := range []string{"", "/webhooks/bead", "javascript:alert(1)", "ftp://x.example/h"} {
		if _, err := c.RegisterWebhook(context.Background(), sampleToken(t), "0123456789abcdef01234567", u); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("url %q: %v, want ErrInvalidRequest", u, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests reached Bead; refused input must send nothing", n)
	}
}
