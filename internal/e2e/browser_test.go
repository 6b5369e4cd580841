package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// findChromium returns the system browser the tests drive. The test script
// installs Debian's chromium; when it is missing the browser test fails in
// CI (a skipped UI test would prove nothing) and is skipped elsewhere.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium installed: scripts/install-deps.sh installs Debian's chromium")
	}
	t.Skip("no Chromium installed (scripts/install-deps.sh installs it)")
	return ""
}

// adminURL returns the admin listener's base URL from serve's output.
func adminURL(t *testing.T, s *server) string {
	t.Helper()
	// startServer returns once the phone line is printed; the admin line
	// follows it in the same banner, a moment later on a busy machine.
	re := regexp.MustCompile(`admin:\s+(https://\S+)/`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin listener in serve's output:\n%s", s.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// browserSession is a headless Chromium with a screenshot helper.
type browserSession struct {
	t   *testing.T
	ctx context.Context
	// shots is where named screenshots go: $CAPF_SCREENSHOTS (the README's
	// docs/ pictures are taken that way) or nowhere.
	shots string
	// failures is where a failing step's screenshot goes.
	failures string
}

func newBrowser(t *testing.T, width, height int) *browserSession {
	t.Helper()
	exe := findChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		// The admin listener's certificate comes from the data directory's
		// own admin CA, which this throwaway profile does not trust.
		chromedp.IgnoreCertErrors,
		chromedp.WindowSize(width, height))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	failures := filepath.Join(os.TempDir(), "capf-browser-failures")
	return &browserSession{t: t, ctx: ctx, shots: os.Getenv("CAPF_SCREENSHOTS"), failures: failures}
}

// run runs the step's actions; on failure it saves a screenshot and fails
// the test naming the step.
func (b *browserSession) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

// fail saves a screenshot of the page and fails the test naming the step.
func (b *browserSession) fail(step string, err error) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if where, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 2000)`)); err == nil {
		b.t.Logf("the page at the failing step: %s", where)
	}
	if png, serr := chromedp.Run(sctx, chromedp.FullScreenshot(100)); serr == nil && os.MkdirAll(b.failures, 0o755) == nil {
		name := strings.NewReplacer("/", "-", " ", "-").Replace(b.t.Name() + "-" + step)
		file := filepath.Join(b.failures, name+".png")
		if os.WriteFile(file, png, 0o644) == nil {
			b.t.Logf("screenshot of the failing step: %s", file)
		}
	}
	b.t.Fatalf("%s: %v", step, err)
}

// value returns the value of the form field sel.
func (b *browserSession) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return v
}

// shot saves a screenshot named name when $CAPF_SCREENSHOTS is set.
func (b *browserSession) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// poll waits until the JavaScript expression is true. It evaluates the
// expression again and again, through page loads (a form's submit
// navigates while the poll runs), and reports the last error or value.
func poll(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(timeout)
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = fmt.Errorf("still false after %s: %s", timeout, expr)
				}
				return chromedp.Void{}, err
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// dialable reports whether the phone port accepts a TCP connection now.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestBrowser drives the administrator's workplace in a real headless
// Chromium against a real `capf serve`: log in with the first start's
// password, find a phone, arm it with a generated string, watch a phone
// session (the simulator) complete on the open page without a reload,
// bulk-schedule a search result, import a CSV with a bad row, download the
// report, deactivate and reactivate the service, log out.
func TestBrowser(t *testing.T) {
	s := startServer(t, nil, "")
	base := adminURL(t, s)
	pw, err := os.ReadFile(filepath.Join(s.data, "admin-initial-password"))
	if err != nil {
		t.Fatalf("the first start did not keep the admin password: %v", err)
	}
	if !strings.Contains(s.out.String(), strings.TrimSpace(string(pw))) {
		t.Fatal("the first start did not print the admin password")
	}
	const phone = "SEP0A0B0C0D0E01"
	s.mustCapf("device", "add", phone, "--description", "Lobby 8845")
	for i := 1; i <= 3; i++ {
		s.mustCapf("device", "add", fmt.Sprintf("SEPB0000000000%d", i), "--description", "bulk floor 2")
	}

	b := newBrowser(t, 1280, 800)

	// Log in.
	b.run("login page", chromedp.Navigate(base+"/phones"), chromedp.WaitVisible(chromedp.CSS("#username")))
	b.run("log in",
		chromedp.SendKeys(chromedp.CSS("#username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), strings.TrimSpace(string(pw))),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#result-count"))) // back on /phones, where it wanted to go

	// Find and List Phones: the phone by its name's beginning.
	b.run("find phone",
		chromedp.SetValue(chromedp.CSS("#field"), "name"),
		chromedp.SetValue(chromedp.CSS("#match"), "begins-with"),
		chromedp.SendKeys(chromedp.CSS("#value"), "SEP0A0B"),
		chromedp.Click(chromedp.CSS("#find")),
		poll(`document.getElementById("result-count").dataset.total === "1"`, 10*time.Second),
		chromedp.WaitVisible(chromedp.CSS("#status-"+phone)))
	b.run("open phone", chromedp.Click(`a[href="/phones/`+phone+chromedp.CSS(`"]`)), chromedp.WaitVisible(chromedp.CSS("#status")))

	// Phone Configuration: Install/Upgrade By Authentication String with a
	// generated string.
	var str string
	b.run("generate string",
		chromedp.SetValue(chromedp.CSS("#operation"), "install"),
		chromedp.SetValue(chromedp.CSS("#auth_mode"), "string"),
		chromedp.Click(chromedp.CSS("#generate_string")),
		poll(`/^[0-9]{8}$/.test(document.getElementById("auth_string").value)`, 10*time.Second))
	str = b.value("#auth_string")
	b.run("save",
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")),
		poll(`document.getElementById("status").textContent.trim() === "Operation Pending"`, 10*time.Second))
	if d := s.device(phone); d.AuthString != str || d.Operation != "install" {
		t.Fatalf("after Save the device is %+v, want operation install and string %s", d, str)
	}

	// The phone enrols while its page is open; the page follows without a
	// reload (the marker set on the window survives).
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`window.capfNoReload = 1`)); err != nil {
		b.fail("mark the page", err)
	}
	out, errOut, code := s.capf("phone", "--server", s.addr, "--ca", s.caFile, phone, "--auth-string", str, "--json")
	if code != 0 {
		t.Fatalf("capf phone: exit %d: %s%s", code, out, errOut)
	}
	b.run("live status",
		poll(`document.getElementById("status").textContent.trim() === "Upgrade Success" && window.capfNoReload === 1`, 20*time.Second),
		poll(`document.getElementById("lsc_serial").textContent.trim().length > 0`, 10*time.Second))
	b.shot("phone-page")

	// Bulk: schedule Install/Upgrade with generated strings for a search
	// result, confirming the count.
	b.run("search for bulk", chromedp.Navigate(base+"/phones?where=description:contains:bulk"),
		poll(`document.getElementById("result-count").dataset.total === "3"`, 10*time.Second))
	b.shot("phone-list")
	b.run("bulk form", chromedp.Click(chromedp.CSS("#bulk-link")), chromedp.WaitVisible(chromedp.CSS("#bulk-form")))
	b.run("bulk review",
		chromedp.SetValue(chromedp.CSS(`#bulk-form [name="operation"]`), "install"),
		chromedp.SetValue(chromedp.CSS(`#bulk-form [name="auth_mode"]`), "string"),
		chromedp.Click(chromedp.CSS(`#bulk-form [name="generate_string"]`)),
		chromedp.Click(chromedp.CSS("#review")),
		poll(`document.getElementById("confirm-text") && document.getElementById("confirm-text").textContent.includes("3 phones")`, 10*time.Second))
	b.run("bulk confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#campaign-search")))
	strs := map[string]bool{}
	for i := 1; i <= 3; i++ {
		d := s.device(fmt.Sprintf("SEPB0000000000%d", i))
		if d.Operation != "install" || len(d.AuthString) != 8 {
			t.Fatalf("bulk left %s as %+v", d.Name, d)
		}
		strs[d.AuthString] = true
	}
	if len(strs) != 3 {
		t.Errorf("bulk gave %d distinct strings to 3 phones", len(strs))
	}
	b.run("campaigns list", chromedp.Navigate(base+"/campaigns"),
		poll(`document.querySelectorAll("#campaigns tbody tr").length === 1 && document.querySelector("#campaigns tbody").textContent.includes("bulk")`, 10*time.Second))
	b.shot("campaigns")

	// Import a CSV whose third line is bad: the line is named (with its
	// column) and nothing is imported.
	csvFile := filepath.Join(t.TempDir(), "phones.csv")
	csv := "Device Name,Description\nSEPC00000000001,ok\nNOT A PHONE NAME!,bad\n"
	if err := os.WriteFile(csvFile, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("import",
		chromedp.Navigate(base+"/import"), chromedp.WaitVisible(chromedp.CSS("#file")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csvFile}),
		chromedp.Click(chromedp.CSS("#import")),
		poll(`document.getElementById("import-error") !== null && document.querySelector("#import-problems tbody tr td") !== null && document.querySelector("#import-problems tbody tr td").textContent.trim() === "3"`, 10*time.Second))
	if _, _, code := s.capf("device", "show", "SEPC00000000001"); code == 0 {
		t.Error("a failed import added the good row")
	}

	// Download the CAPF report.
	dl := t.TempDir()
	events := true
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl, EventsEnabled: &events}); err != nil {
		b.fail("allow downloads", err)
	}
	done := make(chan string, 1)
	dctx, stopEvents := context.WithCancel(b.ctx)
	defer stopEvents()
	go func() {
		for e, err := range chromedp.BrowserEvents(dctx, browser.DownloadProgress) {
			if err != nil {
				return
			}
			if e.State == browser.DownloadProgressStateCompleted {
				done <- e.GUID
				return
			}
		}
	}()
	b.run("download report", chromedp.Click(chromedp.CSS("#report-download")))
	select {
	case guid := <-done:
		body, err := os.ReadFile(filepath.Join(dl, guid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), phone) || !strings.Contains(string(body), "Upgrade Success") {
			t.Errorf("the downloaded report lacks the enrolled phone:\n%s", body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the report download did not complete")
	}

	// Deactivate the service: the phone port stops accepting, the admin side
	// keeps working; reactivate it.
	b.run("deactivate",
		chromedp.Navigate(base+"/serviceability/activation"), chromedp.WaitVisible(chromedp.CSS("#service-status")),
		chromedp.Click(chromedp.CSS("#deactivate")),
		poll(`document.getElementById("service-status").textContent.trim() === "Deactivated"`, 10*time.Second))
	waitFor(t, func() bool { return !dialable(s.addr) })
	b.run("activate",
		chromedp.Click(chromedp.CSS("#activate")),
		poll(`document.getElementById("service-status").textContent.trim() === "Activated"`, 10*time.Second))
	waitFor(t, func() bool { return dialable(s.addr) })

	// Log out: the session is gone.
	b.run("logout", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#username")))
	b.run("after logout", chromedp.Navigate(base+"/phones"), chromedp.WaitVisible(chromedp.CSS("#username")))
}
