package views

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"beadbff/static"
)

func sampleCheckout() EmbedCheckoutView {
	return EmbedCheckoutView{
		Nonce:        testNonce,
		Payment:      samplePayment(),
		PaymentURL:   "https://pay.test.devs.beadpay.io/pay/abc",
		QRCodeURL:    "/embed/checkout/CID/qr.png",
		StatusURL:    "/embed/checkout/CID/status",
		ParentOrigin: "https://shop.example",
	}
}

func TestEmbedCheckout(t *testing.T) {
	doc, _ := render(t, EmbedCheckout(sampleCheckout()))
	if got := one(t, doc, "checkout-amount").Text(); got != "12.50 USD" {
		t.Errorf("amount %q", got)
	}
	if got := one(t, doc, "checkout-reference").Text(); got != "INV-1001" {
		t.Errorf("reference %q", got)
	}
	pay := one(t, doc, "checkout-pay")
	if attr(t, pay, "href") != "https://pay.test.devs.beadpay.io/pay/abc" || attr(t, pay, "target") != "_blank" ||
		!strings.Contains(attr(t, pay, "rel"), "noopener") {
		t.Errorf("pay button must open Bead's page as a new top-level window with noopener: %v", pay.Nodes[0].Attr)
	}
	if attr(t, one(t, doc, "checkout-qr"), "src") != "/embed/checkout/CID/qr.png" {
		t.Error("QR code src")
	}
	root := one(t, doc, "checkout")
	for name, want := range map[string]string{"data-parent-origin": "https://shop.example", "data-status-url": "/embed/checkout/CID/status",
		"data-tracking-id": "trk_7Hq2", "data-status-code": "created", "data-final": "false", "data-state": "waiting"} {
		if got := attr(t, root, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	none(t, doc, "checkout-demo")
	if doc.Find("form, iframe, header, nav, footer").Length() != 0 {
		t.Error("the checkout has a form, frame or staff chrome")
	}
}

// The same guarantees as every staff page: scripts only from /static with the nonce, nothing inline,
// one h1, alt texts, and every linked asset served.
func TestEmbedPagesAreCSPSafeAndAccessible(t *testing.T) {
	paid := sampleCheckout()
	paid.Payment.Status, paid.Payment.StatusLabel, paid.Payment.Final, paid.Payment.Paid = "completed", "Paid", true, true
	demo := sampleCheckout()
	demo.Demo = true
	pages := map[string]*goquery.Document{}
	for name, v := range map[string]EmbedCheckoutView{"waiting": sampleCheckout(), "paid": paid, "demo": demo} {
		pages[name], _ = render(t, EmbedCheckout(v))
	}
	pages["message"], _ = render(t, EmbedMessage(EmbedMessageView{Nonce: testNonce, Heading: "This payment link does not work",
		Detail: "Go back to the shop.", Reference: "req-12345678"}))
	for name, doc := range pages {
		t.Run(name, func(t *testing.T) {
			// embed.js, and on a checkout live.js (its pushed updates), each with the nonce and no inline code.
			scripts := doc.Find("script")
			scripts.Each(func(i int, sc *goquery.Selection) {
				src := attr(t, sc, "src")
				if attr(t, sc, "nonce") != testNonce || strings.TrimSpace(sc.Text()) != "" ||
					(i == 0 && src != static.URL("embed.js")) || (i == 1 && src != static.URL("live.js")) || i > 1 {
					t.Errorf("script %d (%s): want embed.js then live.js, with the nonce and no inline code", i, src)
				}
			})
			if scripts.Length() == 0 {
				t.Error("no script: the page would not load embed.js")
			}
			if doc.Find("style, [style]").Length() != 0 {
				t.Error("inline style")
			}
			doc.Find("*").Each(func(_ int, s *goquery.Selection) {
				for _, a := range s.Nodes[0].Attr {
					if strings.HasPrefix(a.Key, "on") {
						t.Errorf("inline handler %s", a.Key)
					}
				}
			})
			if got, _ := doc.Find("html").Attr("lang"); got != "en" || doc.Find("h1").Length() != 1 || doc.Find("main").Length() != 1 {
				t.Error("want lang=en, one h1, one main")
			}
			doc.Find("img").Each(func(_ int, s *goquery.Selection) {
				if alt, _ := s.Attr("alt"); alt == "" {
					t.Error("img without alt")
				}
			})
			doc.Find("[href], [src]").Each(func(_ int, s *goquery.Selection) {
				for _, a := range []string{"href", "src"} {
					if u, _ := s.Attr(a); strings.HasPrefix(u, static.Prefix) {
						if _, _, ok := static.Lookup(strings.TrimPrefix(u, static.Prefix)); !ok {
							t.Errorf("%s=%q is not served", a, u)
						}
					}
				}
			})
		})
	}
	if pages["demo"].Find(`[data-testid="checkout-demo"]`).Length() != 1 {
		t.Error("demo mode does not say that no real money moves")
	}
}

func TestEmbedCheckoutEscapesAndSanitizes(t *testing.T) {
	v := sampleCheckout()
	v.Payment.Reference, v.Payment.Description = hostile, hostile
	v.PaymentURL = "javascript:alert(1)"
	v.ParentOrigin = `"><script>alert(1)</script>`
	doc, html := render(t, EmbedCheckout(v))
	if strings.Contains(html, hostile) {
		t.Error("hostile text rendered as HTML")
	}
	if href := attr(t, one(t, doc, "checkout-pay"), "href"); strings.HasPrefix(href, "javascript:") {
		t.Errorf("pay href %q: a javascript: URL survived", href)
	}
	if doc.Find("script").Not(`[src^="`+static.Prefix+`"]`).Length() != 0 {
		t.Error("an injected script element")
	}
}
