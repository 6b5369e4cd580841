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
