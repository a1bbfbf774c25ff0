package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser is headless Chromium (Debian's) driven through the DevTools
// protocol by chromedp, logged in as its user (HTTP Basic) when it has one.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// screenshotDir is where the console tests leave their screenshots, to be
// looked at: HAMQ_SCREENSHOTS, else hamq-console-screenshots in the
// temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("HAMQ_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "hamq-console-screenshots")
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newBrowser(t *testing.T, user, password string) *browser {
	t.Helper()
	chromium := tool(t, "chromium", "chromium")
	// The flags that work here: without the background-networking ones
	// Chromium tries Google's hosts, which this machine refuses.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as its
	// context: it takes no timeout.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if user != "" {
		// What the browser sends once a person has answered the console's
		// Basic challenge, on every request of the page.
		login := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Basic " + login}}); err != nil {
			t.Fatalf("chromium: %v", err)
		}
	}
	return &browser{t: t, ctx: ctx}
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page, awaiting it when
// it is a promise.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("chromium: %s: %v", expr, err)
	}
	return v
}

// text is the text of what sel finds first, as the page shows it.
func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	if err != nil {
		return ""
	}
	return s
}

// waitText waits until what sel finds shows every one of want.
func (b *browser) waitText(sel string, want ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := b.text(sel)
		missing := ""
		for _, w := range want {
			// Case aside: the style sheet capitalises headings.
			if !strings.Contains(strings.ToLower(got), strings.ToLower(w)) {
				missing = w
				break
			}
		}
		if missing == "" {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s does not show %q within 20s; it shows:\n%s", sel, missing, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shoot waits until the page shows every one of want, then saves a
// screenshot of the whole page as name.png.
func (b *browser) shoot(dir, name string, want ...string) {
	b.t.Helper()
	b.waitText("body", want...)
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("chromium: screenshot: %v", err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

// page opens a view of the console by its hash route.
func (b *browser) page(route string) {
	b.t.Helper()
	eval[string](b, fmt.Sprintf(`location.hash = %q`, route))
}
