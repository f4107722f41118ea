package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"beadbff/bff/browsertest"
)

// headerBox is where the header's parts sit on the screen (CSS pixels, from the viewport's top).
type headerBox struct {
	Header    rect            `json:"header"`
	Parts     map[string]rect `json:"parts"`
	Scroll    float64         `json:"scrollWidth"`
	ViewWidth float64         `json:"innerWidth"`
}

type rect struct {
	Top    float64 `json:"top"`
	Bottom float64 `json:"bottom"`
	Left   float64 `json:"left"`
	Right  float64 `json:"right"`
}

func (r rect) middle() float64 { return (r.Top + r.Bottom) / 2 }

// measureHeader reads the header's box, its parts' boxes and the page's scroll width.
const measureHeader = `(() => {
	const box = el => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
	const parts = {};
	for (const [name, sel] of Object.entries({
		brand: ".site-header .brand",
		firstNav: '[data-testid="nav-payments"]',
		lastNav: '[data-testid="nav-webhooks"]',
		terminal: '[data-testid="staff-terminal"]',
		logout: '[data-testid="logout-button"]',
	})) {
		const el = document.querySelector(sel);
		if (el) parts[name] = box(el);
	}
	return {header: box(document.querySelector(".site-header")), parts,
		scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth};
})()`

// Regression: since the third header link (Webhooks) came, the staff header at 1280 px wrapped its right
// part (terminal id, "Log out") onto a second row. At a desktop width the whole header is one row: brand,
// every link, the terminal and the button share one middle line. On a phone it may wrap, but the page
// never grows wider than the screen.
func TestBrowserHeaderFitsOneRow(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := startEnv(t, envOptions{noRedis: true})
	term := e.sandbox.Terminals()[0]
	ctx := browsertest.New(t, browsertest.Options{Width: 1280, Height: 800})
	step := browserStep(t, ctx)
	step("log in", chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(e.url+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#username`), term.TerminalID),
		chromedp.SendKeys(chromedp.CSS(`#password`), term.Password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="logout-button"]`)),
	))
	pages := []struct{ name, path string }{{"dashboard", "/"}, {"new-payment", "/payments/new"}, {"webhooks", "/webhooks"}}
	for _, width := range []struct {
		name    string
		w, h    int64
		oneRow  bool
		options []chromedp.EmulateViewportOption
	}{
		{"desktop", 1280, 800, true, nil},
		{"phone", 390, 844, false, []chromedp.EmulateViewportOption{chromedp.EmulateMobile}},
	} {
		step("set the viewport", chromedp.Do(ctx, chromedp.EmulateViewport(width.w, width.h, width.options...)))
		for _, p := range pages {
			name := fmt.Sprintf("%s %s (%d px)", p.name, width.name, width.w)
			step(name, chromedp.Do(ctx, chromedp.Navigate(e.url+p.path),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="logout-button"]`)), chromedp.Sleep(200*time.Millisecond)))
			browsertest.Screenshot(t, ctx, "header-"+width.name+"-"+p.name)
			m, err := chromedp.Run(ctx, chromedp.Evaluate[headerBox](measureHeader))
			step("measure "+name, err)
			if len(m.Parts) != 5 {
				t.Fatalf("%s: found %d of the header's 5 parts: %v", name, len(m.Parts), m.Parts)
			}
			if m.Scroll > m.ViewWidth {
				t.Errorf("%s: the page is %.0f px wide on a %.0f px screen (horizontal scrolling)", name, m.Scroll, m.ViewWidth)
			}
			for part, r := range m.Parts {
				if r.Right > m.ViewWidth+0.5 || r.Left < -0.5 {
					t.Errorf("%s: the header's %s sticks out of the screen: %+v", name, part, r)
				}
			}
			if !width.oneRow {
				continue
			}
			// One row: every part is centred on the same line (the header aligns its items to the middle)
			// and the header is no taller than its tallest part plus its padding.
			line := m.Parts["firstNav"].middle()
			for part, r := range m.Parts {
				if d := r.middle() - line; d > 2 || d < -2 {
					t.Errorf("%s: the header's %s sits %.0f px off the first link's line: it wrapped to another row (%+v)", name, part, d, r)
				}
			}
			if lo, nav := m.Parts["logout"], m.Parts["firstNav"]; lo.Top > nav.Bottom {
				t.Errorf("%s: \"Log out\" starts at %.0f px, below the first link's bottom %.0f px", name, lo.Top, nav.Bottom)
			}
			tallest := 0.0
			for _, r := range m.Parts {
				tallest = max(tallest, r.Bottom-r.Top)
			}
			if h := m.Header.Bottom - m.Header.Top; h > tallest+2*12+1+2 { // padding-block 0.75rem each side, the border, 2 px slack
				t.Errorf("%s: the header is %.0f px tall for parts at most %.0f px tall: more than one row", name, h, tallest)
			}
		}
	}
}

// Regression: the focus ring was burnt orange, so a focused field looked like one in error (a red
// border). A field in error, focused, shows both, and they must not be of one hue: the ring is blue.
func TestBrowserFocusRingIsNotTheErrorColour(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	e := startEnv(t, envOptions{noRedis: true})
	term := e.sandbox.Terminals()[0]
	ctx := browsertest.New(t, browsertest.Options{})
	step := browserStep(t, ctx)
	step("log in and send a form with a wrong amount", chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#username`), term.TerminalID),
		chromedp.SendKeys(chromedp.CSS(`#password`), term.Password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="logout-button"]`)),
		chromedp.Navigate(e.url+"/payments/new"),
		chromedp.SendKeys(chromedp.CSS(`#amount`), "abc"),
		chromedp.Submit(chromedp.CSS(`#amount`)),
		chromedp.WaitVisible(chromedp.CSS(`#amount[aria-invalid="true"]`)),
		// From the keyboard, as a ring is drawn for (:focus-visible): into the next field and back.
		chromedp.Focus(chromedp.CSS(`#reference`)),
		chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)),
	))
	type colours struct {
		Outline, Border  []float64
		Focused, Visible bool
		Style            string
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[colours](`(() => {
		const rgb = s => (s.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
		const st = getComputedStyle(document.querySelector("#amount"));
		const el = document.querySelector("#amount");
		return {Outline: rgb(st.outlineColor), Border: rgb(st.borderTopColor), Focused: document.activeElement === el,
			Visible: el.matches(":focus-visible"), Style: st.outlineStyle};
	})()`))
	step("read the colours", err)
	browsertest.Screenshot(t, ctx, "focused-field-in-error")
	if len(got.Outline) != 3 || len(got.Border) != 3 || !got.Focused || !got.Visible || got.Style == "none" {
		t.Fatalf("the field is not focused with a visible ring, or its colours were not read: %+v", got)
	}
	t.Logf("focused field in error: ring rgb%v, border rgb%v", got.Outline, got.Border)
	if o, b := got.Outline, got.Border; !(b[0] > b[2]+50) || !(o[2] > o[0]+50) {
		t.Errorf("focused field in error: ring rgb%v, border rgb%v; want a reddish border and a bluish ring", o, b)
	}
}
