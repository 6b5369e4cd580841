package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// closedWindow returns a maintenance window (UTC) of one minute, twelve
// hours from now: closed for the whole test.
func closedWindow(now time.Time) (window string, opens time.Time) {
	opens = now.UTC().Add(12 * time.Hour).Truncate(time.Minute)
	end := opens.Add(time.Minute)
	return fmt.Sprintf("%s %s-%s", opens.Weekday().String()[:3], opens.Format("15:04"), end.Format("15:04")), opens
}

// TestLastContactOutsideTheWindow: a phone that calls outside the
// maintenance windows is told to retry later, and `capf device show` (and
// its JSON) says so: when, from where, and when the next window opens. A
// phone that asks for a device that is not configured is counted, not
// stored.
func TestLastContactOutsideTheWindow(t *testing.T) {
	data := initData(t)
	window, opens := closedWindow(time.Now())
	cfg := fmt.Sprintf(`{"maintenance_windows": [%q], "maintenance_time_zone": "UTC"}`, window)
	if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const name = "SEP0011223344AA"
	if out, errOut, code := run(t, data, "device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("add: %d %s%s", code, out, errOut)
	}
	out, _ := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", out.String())
	}
	phoneOut, phoneErr, code := run(t, data, "phone", name, "--server", m[1], "--ca", filepath.Join(data, "ca", "capf.pem"), "--retries", "0", "--auth-mode", "null")
	if code == ExitOK {
		t.Fatalf("the phone enrolled outside the window:\n%s%s", phoneOut, phoneErr)
	}
	next := "next opens " + opens.Format(time.RFC3339)
	var show string
	eventually(t, "the refusal on record", func() bool {
		show, _, _ = run(t, data, "device", "show", name)
		return strings.Contains(show, "retry-later")
	})
	line := regexp.MustCompile(`(?m)^Last Contact:\s+(.*)$`).FindStringSubmatch(show)
	if line == nil || !strings.Contains(line[1], "from 127.0.0.1:") || !strings.Contains(line[1], "outside the maintenance windows") || !strings.Contains(line[1], next) {
		t.Fatalf("Last Contact line missing or incomplete (want time, address, outcome, %q):\n%s", next, show)
	}
	js, _, _ := run(t, data, "device", "show", name, "--json")
	var v struct {
		LastContact *struct {
			At      time.Time `json:"at"`
			Remote  string    `json:"remote"`
			Outcome string    `json:"outcome"`
			Reason  string    `json:"reason"`
		} `json:"last_contact"`
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	if c := v.LastContact; c == nil || c.Outcome != "retry-later" || !strings.HasPrefix(c.Remote, "127.0.0.1:") || !strings.Contains(c.Reason, next) ||
		time.Since(c.At) > time.Minute {
		t.Fatalf("last_contact = %+v in:\n%s", v.LastContact, js)
	}
	// A device never in contact says so.
	if out, errOut, code := run(t, data, "device", "add", "SEP0011223344BB"); code != ExitOK {
		t.Fatalf("add: %d %s%s", code, out, errOut)
	}
	if show, _, _ := run(t, data, "device", "show", "SEP0011223344BB"); !regexp.MustCompile(`(?m)^Last Contact:\s+none on record$`).MatchString(show) {
		t.Errorf("a device never in contact:\n%s", show)
	}
	if js, _, _ := run(t, data, "device", "show", "SEP0011223344BB", "--json"); strings.Contains(js, "last_contact") {
		t.Errorf("last_contact of a device never in contact:\n%s", js)
	}
}

// TestImportCallManagerFile: capf device import takes a file in the UI's
// and CallManager's words; a bad file names every bad row on stderr, one
// a line, exits 2 and imports nothing.
func TestImportCallManagerFile(t *testing.T) {
	data := initData(t)
	good := filepath.Join(data, "bat.csv")
	csv := "Device Name,Security Profile,Authentication Mode,Certificate Operation,Key\r\n" +
		"SEP000000000011,Non Secure,By Null String,Install/Upgrade,RSA 2048\r\n" +
		"SEP000000000012,authenticated,By Existing Certificate (precedence to LSC),INSTALL/UPGRADE,EC P-256\r\n"
	if err := os.WriteFile(good, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, data, "device", "import", good); code != ExitOK || !strings.Contains(out, "2 added") {
		t.Fatalf("import: %d %s%s", code, out, errOut)
	}
	if out, _, _ := run(t, data, "device", "show", "SEP000000000012"); !strings.Contains(out, "By Existing Certificate (Precedence LSC)") || !regexp.MustCompile(`(?m)^Key:\s+ec256$`).MatchString(out) {
		t.Errorf("imported device:\n%s", out)
	}
	bad := filepath.Join(data, "bad.csv")
	badCSV := "Device Name,Key,Authentication Mode\n" +
		"SEP000000000013,RSA 2048,null\n" +
		"SEP000000000014,RSA 9,null\n" +
		"SEP000000000015,ec256,By Guessing\n"
	if err := os.WriteFile(bad, []byte(badCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, data, "device", "import", bad)
	if code != ExitUsage {
		t.Fatalf("bad import: exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"bad.csv: line 3: column Key: ", "\nline 4: column Authentication Mode: ", "\n2 problems; nothing was imported"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, _, code := run(t, data, "device", "show", "SEP000000000013"); code != ExitNotFound {
		t.Error("a rejected file imported its good row")
	}
}

// TestPhoneConfigUsesTheRealPort: while serve runs, phone-config gives the
// port it really listens on (a --listen flag of serve, an ephemeral port),
// not capf.json's; --port overrides it; after serve stops, capf.json's.
func TestPhoneConfigUsesTheRealPort(t *testing.T) {
	data := initData(t)
	if out, errOut, code := run(t, data, "device", "add", "SEP58971ECC97C1", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("add: %d %s%s", code, out, errOut)
	}
	out, stop := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): 127\.0\.0\.1:(\d+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", out.String())
	}
	cfg, _, code := run(t, data, "phone-config", "SEP58971ECC97C1", "--host", "capf.example.net")
	if code != ExitOK || !strings.Contains(cfg, "<phonePort>"+m[1]+"</phonePort>") {
		t.Fatalf("phone-config while serve listens on %s (exit %d):\n%s", m[1], code, cfg)
	}
	if cfg, _, _ := run(t, data, "phone-config", "SEP58971ECC97C1", "--host", "h", "--port", "5061"); !strings.Contains(cfg, "<phonePort>5061</phonePort>") {
		t.Errorf("--port not used:\n%s", cfg)
	}
	if _, errOut, code := run(t, data, "phone-config", "SEP58971ECC97C1", "--host", "h", "--port", "99999"); code != ExitUsage || !strings.Contains(errOut, "1 to 65535") {
		t.Errorf("bad --port: exit %d %s", code, errOut)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exit %d", code)
	}
	if cfg, _, _ := run(t, data, "phone-config", "SEP58971ECC97C1", "--host", "h"); !strings.Contains(cfg, "<phonePort>3804</phonePort>") {
		t.Errorf("after serve stopped, want capf.json's port:\n%s", cfg)
	}
}
