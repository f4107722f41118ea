package bff

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"beadbff/session"
)

// Regression: /help/403 explains every cause (a 401 of the realm, a 429, a Bead that does not answer),
// yet its tab said "Troubleshooting 403 Forbidden", and the footer of every page "Troubleshooting:
// requests Bead refused (403)". Only the URL keeps 403 (CONTRACT.md names it); the words hold for every
// cause.
func TestHelpWordsHoldForEveryCause(t *testing.T) {
	st, err := session.NewMemory(session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := terminalServer(t, st, &fakeBead{}, nil)
	resp, err := srv.App().Test(httptest.NewRequest(http.MethodGet, "/help/403", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/help/403: %d", resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	footer := doc.Find(`[data-testid="help-link"]`)
	for what, words := range map[string]string{"title": doc.Find("title").Text(), "heading": doc.Find("h1").Text(), "footer link": footer.Text()} {
		if strings.Contains(words, "403") || strings.Contains(words, "Forbidden") || strings.Contains(words, "refused") {
			t.Errorf("the %s claims every cause is a refusal (403): %q", what, words)
		}
	}
	if href, _ := footer.Attr("href"); href != "/help/403" {
		t.Errorf("footer link goes to %q, want /help/403 (the URL stays)", href)
	}
	for _, code := range []string{CauseRefreshTokenInvalid, CauseRateLimited, CauseBeadUnavailable} {
		if doc.Find("section#"+code).Length() != 1 {
			t.Errorf("no section #%s", code)
		}
	}
}
