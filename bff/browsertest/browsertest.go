// Package browsertest is the browser test kit: it starts real headless Chromium (Debian's chromium package)
// for a test, drives it with chromedp, and keeps screenshots as test artifacts. Browser behaviour (cookies,
// CORS, frames, pages) is proven here, in the browser that enforces it, never assumed.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath finds Chromium: $BEADBFF_CHROMIUM, else chromium or chromium-browser on PATH. A test that
// needs a browser fails (never skips) when there is none, saying what to install.
func ExecPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BEADBFF_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: apt-get install chromium (make deps does it), or set BEADBFF_CHROMIUM=/path/to/chromium")
	return ""
}

// Options shape the browser window.
type Options struct {
	Width, Height int           // default 1280 x 900
	Timeout       time.Duration // for the whole test's browsing; default 60 s
}

// New starts a fresh headless Chromium with an empty profile and returns a chromedp context on one tab.
// The browser is stopped when the test ends.
func New(t testing.TB, o Options) context.Context {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ExecPath(t)),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
		// The machine's network is closed: keep Chromium from dialling out at start.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), o.Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelTimeout() })
	if err := chromedp.Do(tab); err != nil { // starts the browser now, so a broken install fails here
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// Screenshot saves the whole page as NAME.png in the test's artifact directory (kept with
// `go test -artifacts`, as make test runs it) and returns the file's path.
func Screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// Check fails the test when a browsing step failed, keeping a screenshot of where the browser was.
func Check(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	if err != nil {
		Screenshot(t, ctx, "failure")
		t.Fatalf("%s: %v", what, err)
	}
}
