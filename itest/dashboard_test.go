//go:build itest

package itest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser returns a headless Chromium context (Debian's chromium package;
// `make test` installs it) that ends with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no chromium on PATH: install Debian's chromium package (make deps does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 1400),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(testCtx(t, 3*time.Minute), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	return ctx
}

// TestDashboard loads the dashboard in headless Chromium with regtest data
// in it: a paid challenge, an unpaid one, LND and watcher up. It signs in
// through the form, checks the figures and takes a screenshot.
func TestDashboard(t *testing.T) {
	d := startDaemon(t, testNet(t).Node("alice"))
	paid := createChallenge(t, d, "/api/dashboard/paid", 42)
	payInvoice(t, "bob", paid.Invoice)
	createChallenge(t, d, "/api/dashboard/unpaid", 7)
	waitSettled(t, d, paid.PaymentHash, 42)
	waitFor(t, 30*time.Second, "watcher streaming and LND up", func() error {
		_, out := d.call(t, "GET", "/healthz", nil)
		if out["status"] != "ok" {
			return fmt.Errorf("%v", out)
		}
		return nil
	})

	ctx := browser(t)
	run(t, ctx, chromedp.Navigate("http://"+d.listen+"/dashboard"))
	run(t, ctx, chromedp.WaitVisible("#key"))
	run(t, ctx, chromedp.SendKeys("#key", d.apiKey(t)))
	run(t, ctx, chromedp.Click("#signin"))
	run(t, ctx, chromedp.WaitVisible("#revenue-chart"))
	revenue := run(t, ctx, chromedp.Text("#revenue-total"))
	challenges := run(t, ctx, chromedp.Text("#challenges-30d"))
	lndState := run(t, ctx, chromedp.Text("#lnd-state"))
	watcher := run(t, ctx, chromedp.Text("#watcher-state"))
	recent := run(t, ctx, chromedp.Text("#recent"))
	spending := run(t, ctx, chromedp.Text("#spending"))
	shot := run(t, ctx, chromedp.FullScreenshot(100))
	if !strings.Contains(revenue, "42 sats") || strings.TrimSpace(challenges) != "2" || lndState != "up" || watcher != "streaming" {
		t.Fatalf("dashboard shows revenue %q, challenges %q, lnd %q, watcher %q", revenue, challenges, lndState, watcher)
	}
	if !strings.Contains(recent, "/api/dashboard/paid") || !strings.Contains(recent, "settled") || !strings.Contains(recent, "pending") {
		t.Fatalf("recent challenges: %q", recent)
	}
	if !bytes.HasPrefix(shot, []byte("\x89PNG")) || len(shot) < 10_000 {
		t.Fatalf("screenshot is not a PNG of a rendered page (%d bytes)", len(shot))
	}
	dir, _ := filepath.Abs(".artifacts")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		p := filepath.Join(dir, "dashboard.png")
		if err := os.WriteFile(p, shot, 0o644); err == nil {
			t.Logf("screenshot: %s (%d bytes); spending section: %q", p, len(shot), strings.TrimSpace(spending))
		}
	}
}

// run runs one browser action and fails the test on error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
