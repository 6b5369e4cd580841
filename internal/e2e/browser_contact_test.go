package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserWhyNotEnrolled walks what an administrator does on the first
// day, in a real headless Chromium against a real `capf serve` whose only
// maintenance window is hours away: the dashboard and the phone list say
// no window is open and when the next opens; a phone that called is held
// and its page says why (when, from where, RETRY_LATER, the next window);
// a phone that asked for a device that is not configured is counted on
// the dashboard; the phone page gives the configuration snippet with the
// port the service really listens on; a CSV in CallManager's words
// imports, and a bad one names every bad row and imports nothing;
// Security > Trust File shows the ITL serve keeps, signed, listing the
// current CAPF certificate with the CAPF role.
func TestBrowserWhyNotEnrolled(t *testing.T) {
	opens := time.Now().UTC().Add(12 * time.Hour).Truncate(time.Minute)
	window := fmt.Sprintf("%s %s-%s", opens.Weekday().String()[:3], opens.Format("15:04"), opens.Add(time.Minute).Format("15:04"))
	tftp := filepath.Join(t.TempDir(), "tftp")
	if err := os.Mkdir(tftp, 0o755); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverParams{"maintenance_windows": []string{window}, "maintenance_time_zone": "UTC", "trust_file_dir": tftp}, "")
	base := adminURL(t, s)
	pw, err := os.ReadFile(filepath.Join(s.data, "admin-initial-password"))
	if err != nil {
		t.Fatal(err)
	}
	const phone, stranger = "SEP0A0B0C0D0E21", "SEP0A0B0C0D0EEE"
	s.mustCapf("device", "add", phone, "--description", "Reception", "--auth-mode", "null", "--operation", "install")
	if out, errOut, code := s.capf("phone", "--server", s.addr, "--ca", s.caFile, phone, "--auth-mode", "null", "--retries", "0"); code == 0 {
		t.Fatalf("the phone enrolled outside the window:\n%s%s", out, errOut)
	}
	if _, _, code := s.capf("phone", "--server", s.addr, "--ca", s.caFile, stranger, "--auth-mode", "null", "--retries", "0"); code == 0 {
		t.Fatal("a phone that is not configured enrolled")
	}
	waitFor(t, func() bool { out, _, _ := s.capf("device", "show", phone); return strings.Contains(out, "retry-later") })
	_, port, _ := strings.Cut(s.addr, "127.0.0.1:")

	b := newBrowser(t, 1280, 900)
	b.run("log in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), strings.TrimSpace(string(pw))),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#dash-devices")))

	next := opens.Format("2006-01-02 15:04")
	b.run("dashboard banner and strangers",
		poll(`document.getElementById("banner-window") && document.getElementById("banner-window").textContent.includes(`+jsString(next)+`)`, 10*time.Second),
		poll(`document.getElementById("dash-unconfigured").textContent.trim() === "1"`, 10*time.Second),
		poll(`document.getElementById("dash-unconfigured-names").textContent.includes(`+jsString(stranger)+`)`, 10*time.Second))
	b.run("phone list banner", chromedp.Navigate(base+"/phones"),
		poll(`document.getElementById("banner-window") !== null && document.getElementById("result-count") !== null`, 10*time.Second))
	// The API's dashboard says the same, for scripts.
	b.run("the API's dashboard has the notice", chromedp.Navigate(base+"/api/v1/dashboard"),
		poll(`(() => { try { const d = JSON.parse(document.body.innerText); return d.notices.some(n => n.kind === "window-closed" && n.next_open === `+jsString(opens.Format(time.RFC3339))+`) } catch (e) { return false } })()`, 10*time.Second))

	b.run("phone page says why", chromedp.Navigate(base+"/phones/"+phone),
		chromedp.WaitVisible(chromedp.CSS("#last-contact")),
		poll(`document.getElementById("last-contact-outcome").textContent.includes("retry later")`, 10*time.Second),
		poll(`document.getElementById("last-contact-reason").textContent.includes("outside the maintenance windows; next opens `+opens.Format(time.RFC3339)+`")`, 10*time.Second),
		poll(`document.getElementById("last-contact-remote").textContent.startsWith("127.0.0.1:")`, 10*time.Second),
		poll(`document.getElementById("phone-config").textContent.includes("<phonePort>`+port+`</phonePort>")`, 10*time.Second))
	b.shot("phone-why")
	// The API gives the same snippet, with the same port, to the session.
	b.run("the API's snippet has the real port", chromedp.Navigate(base+"/api/v1/devices/"+phone+"/phone-config"),
		poll(`(() => { try { const c = JSON.parse(document.body.innerText); return c.port === `+jsString(port)+` && c.config.includes("<phonePort>`+port+`</phonePort>") } catch (e) { return false } })()`, 10*time.Second))

	// A phone whose page is open when it calls: the page follows without
	// a reload.
	const later = "SEP0A0B0C0D0E22"
	s.mustCapf("device", "add", later, "--auth-mode", "null", "--operation", "install")
	b.run("open a phone never in contact", chromedp.Navigate(base+"/phones/"+later),
		chromedp.WaitVisible(chromedp.CSS("#last-contact-none")), chromedp.WaitNotVisible(chromedp.CSS("#last-contact")))
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`window.capfNoReload = 1`)); err != nil {
		b.fail("mark the page", err)
	}
	if _, _, code := s.capf("phone", "--server", s.addr, "--ca", s.caFile, later, "--auth-mode", "null", "--retries", "0"); code == 0 {
		t.Fatal("the phone enrolled outside the window")
	}
	b.run("the page follows the contact",
		poll(`!document.getElementById("last-contact").hidden && document.getElementById("last-contact-none").hidden && window.capfNoReload === 1 && document.getElementById("last-contact-reason").textContent.includes("next opens")`, 20*time.Second),
		chromedp.WaitVisible(chromedp.CSS("#last-contact")), chromedp.WaitNotVisible(chromedp.CSS("#last-contact-none")))

	// A file in the UI's and CallManager's words imports.
	dir := t.TempDir()
	labelled := filepath.Join(dir, "bat.csv")
	if err := os.WriteFile(labelled, []byte("Device Name,Security Profile,Authentication Mode,Certificate Operation,Key\r\n"+
		"SEPC00000000011,Non Secure,By Null String,Install/Upgrade,RSA 2048\r\n"+
		"SEPC00000000012,Authenticated,By Existing Certificate (precedence to LSC),install/upgrade,EC P-256\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("import a labelled file",
		chromedp.Navigate(base+"/import"), chromedp.WaitVisible(chromedp.CSS("#file")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{labelled}),
		chromedp.Click(chromedp.CSS("#import")),
		poll(`document.getElementById("import-created") && document.getElementById("import-created").textContent.trim() === "2"`, 10*time.Second))
	if d := s.device("SEPC00000000012"); d.AuthMode != "lsc" || d.Operation != "install" {
		t.Errorf("imported %+v", d)
	}
	if out := s.mustCapf("device", "show", "SEPC00000000012"); !regexp.MustCompile(`(?m)^Key:\s+ec256$`).MatchString(out) {
		t.Errorf("imported key:\n%s", out)
	}

	// A bad file names every bad row and imports nothing.
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("Device Name,Key\nSEPC00000000013,RSA 2048\nSEPC00000000014,RSA 9\nNOT A PHONE,ec256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("import a bad file",
		chromedp.Navigate(base+"/import"), chromedp.WaitVisible(chromedp.CSS("#file")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{bad}),
		chromedp.Click(chromedp.CSS("#import")),
		poll(`document.getElementById("import-problems") && document.querySelectorAll("#import-problems tbody tr").length === 2`, 10*time.Second))
	rows, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("#import-problems tbody")))
	if err != nil {
		b.fail("read the problems", err)
	}
	if !regexp.MustCompile(`(?s)3\s+Key\s+key "RSA 9".*4\s+Device Name`).MatchString(rows) {
		t.Errorf("problems table:\n%s", rows)
	}
	if _, _, code := s.capf("device", "show", "SEPC00000000013"); code == 0 {
		t.Error("a rejected file imported its good row")
	}
	b.shot("import-problems")

	// Security > Trust File: the ITL serve keeps in trust_file_dir, its
	// signature verifying and the current CAPF certificate listed with the
	// CAPF role (what a phone needs to trust this CAPF).
	b.run("trust file lists the CAPF",
		chromedp.Navigate(base+"/security/trust-file"), chromedp.WaitVisible(chromedp.CSS("#trust-file")),
		poll(`document.getElementById("trust-path") !== null && document.getElementById("trust-path").textContent.includes(`+jsString(filepath.Join(tftp, "ITLFile.tlv"))+`)`, 10*time.Second),
		poll(`document.getElementById("trust-signature").textContent.trim() === "verifies"`, 10*time.Second),
		poll(`document.getElementById("trust-capf").textContent.includes("listed with the CAPF role") && !document.getElementById("trust-capf").textContent.includes("not listed")`, 10*time.Second),
		poll(`document.getElementById("trust-problems") === null`, 10*time.Second),
		poll(`Array.from(document.querySelectorAll("#trust-records td.role")).some(td => td.textContent.trim() === "CAPF")`, 10*time.Second))
	b.shot("trust-file")
	b.run("the API's trust file lists the CAPF", chromedp.Navigate(base+"/api/v1/trust-file"),
		poll(`(() => { try { const f = JSON.parse(document.body.innerText); return f.file.signature_verified && f.capf.length === 1 && f.capf[0].listed && f.problems.length === 0 } catch (e) { return false } })()`, 10*time.Second))

	// Accounts (admin only): the first start's administrator is listed.
	b.run("accounts", chromedp.Navigate(base+"/system/accounts"), chromedp.WaitVisible(chromedp.CSS("#account-admin")))
	b.shot("accounts")
}

// lastContact waits until the device's last contact (capf device show
// --json) has the outcome and its reason contains every part, and fails
// the test if it does not within 10 s (refusals are written in batches).
func lastContact(t *testing.T, s *server, name, outcome string, parts ...string) {
	t.Helper()
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var d struct {
			LastContact *struct {
				Outcome string `json:"outcome"`
				Reason  string `json:"reason"`
			} `json:"last_contact"`
		}
		out := s.mustCapf("device", "show", name, "--json")
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		if c := d.LastContact; c != nil {
			got = c.Outcome + ": " + c.Reason
			ok := c.Outcome == outcome
			for _, p := range parts {
				ok = ok && strings.Contains(c.Reason, p)
			}
			if ok {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("last contact of %s = %q, want %s with %q", name, got, outcome, parts)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return fmt.Sprintf("%q", s) }
