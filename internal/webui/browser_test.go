// The browser test runs the UI's script in a real headless Chromium under
// the admin listener's CSP. It is skipped when no Chromium is installed,
// except in CI (scripts/install-deps.sh installs Debian's chromium there).

package webui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/capf-server/capf/internal/device"
)

// csp is webauth.SecurityHeaders' policy.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestBrowserLiveStatus(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium installed: scripts/install-deps.sh installs Debian's chromium")
		}
		t.Skip("no Chromium installed")
	}
	e, trustFiles := trustEnv(t, 0)
	e.add(device.Device{Name: "SEP000000000001", Operation: device.OpInstall}, device.Device{Name: "SEP000000000002"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		e.h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	// The test middleware's principal, on every request the page makes
	// (the EventSource and the polls too).
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Test-As": "admin"}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var console []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, string(m.Type)+": "+m.Text)
			mu.Unlock()
		}
	}()
	shot := func(name string) {
		if b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			dir := os.Getenv("WEBUI_SCREENSHOTS")
			if dir == "" {
				dir = t.TempDir()
			}
			_ = os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
		}
	}
	fail := func(name string, err error) {
		t.Helper()
		shot("failed-" + name)
		t.Fatalf("%s: %v", name, err)
	}

	// The phone's page follows its status without a reload.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/phones/SEP000000000001"), chromedp.WaitVisible(chromedp.ID("status"))); err != nil {
		fail("phone page", err)
	}
	time.Sleep(300 * time.Millisecond) // the stream is open
	e.giveLSC("SEP000000000001")
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("status").textContent === "Upgrade Success" &&
		document.getElementById("lsc_serial").textContent === "ABCDEF01" && document.getElementById("lsc_status").textContent === "valid" &&
		!document.getElementById("stale").hidden`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		fail("live phone status", err)
	}
	shot("phone")

	// The list's status cells follow too.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/phones"), chromedp.WaitVisible(chromedp.ID("status-SEP000000000002"))); err != nil {
		fail("list", err)
	}
	op := device.OpInstall
	if _, err := e.devices.Change(context.Background(), device.CLIActor("test"), "SEP000000000002", device.Change{Operation: &op}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("status-SEP000000000002").textContent === "Operation Pending"`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		fail("live list status", err)
	}
	shot("list")

	// The campaign page replaces its live section.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/campaigns/7"), chromedp.WaitVisible(chromedp.ID("rate-chart"))); err != nil {
		fail("campaign", err)
	}
	e.campaigns.mu.Lock()
	e.campaigns.progress.Done, e.campaigns.progress.Pending = 7, 0
	e.campaigns.mu.Unlock()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("count-done").textContent === "7"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		fail("live campaign", err)
	}
	shot("campaign")

	// Security > Trust File lists the CAPF certificate with its role.
	if _, err := trustFiles.Sync(context.Background(), device.Actor{Kind: device.ActorSystem, Name: "serve"}, false); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/security/trust-file"), chromedp.WaitVisible(chromedp.ID("trust-records"))); err != nil {
		fail("trust file", err)
	}
	if listed, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("#trust-records td.role")].some(td => td.textContent === "CAPF") &&
		document.getElementById("trust-capf").textContent.includes("listed with the CAPF role") && !document.getElementById("trust-problems")`)); err != nil || !listed {
		fail("trust file lists the CAPF", err)
	}
	shot("trust-file")

	// A phone-sized screen: nothing wider than the viewport.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/phones/SEP000000000001"), chromedp.WaitVisible(chromedp.ID("status"))); err != nil {
		fail("mobile", err)
	}
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("form, fieldset, .card")].some(el => el.getBoundingClientRect().right > window.innerWidth + 1)`))
	if err != nil || wide {
		fail("mobile layout", err)
	}
	shot("phone-mobile")

	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		if strings.Contains(m, "Content Security Policy") || strings.HasPrefix(m, "exception") {
			t.Errorf("console: %s", m)
		}
	}
}
