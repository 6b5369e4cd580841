package e2e

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFleetParameterReachesOtherNode runs two `capf serve` processes on one
// PostgreSQL database, joined as a cluster (startCluster). A maintenance window
// closed with `capf config set` through node A is in force on node B
// within seconds, without a restart: a phone with a pending operation that
// reaches B is told RETRY_LATER. Opened again through B, the window lets
// the same phone enrol through A.
func TestFleetParameterReachesOtherNode(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.nodes[0].srv, c.nodes[1].srv
	bin := c.bin
	caFile := filepath.Join(t.TempDir(), "capf.pem")
	var trust []byte
	for _, cert := range c.trust {
		trust = append(trust, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	if err := os.WriteFile(caFile, trust, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(node *binServer, args ...string) string {
		t.Helper()
		out, err := node.run(bin, args...)
		if err != nil {
			t.Fatalf("capf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// phone runs one session of a phone, no retry, against node's phone
	// port; it returns the exit code of `capf phone`.
	phone := func(node *binServer, name string) (int, string) {
		t.Helper()
		out, err := a.run(bin, "phone", "--server", node.addr, "--ca", caFile, name, "--auth-string", "80442", "--retries", "0", "--json")
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out
		case errors.As(err, &ee):
			return ee.ExitCode(), out
		}
		t.Fatalf("capf phone: %v\n%s", err, out)
		return -1, ""
	}
	addPending := func(name string) {
		t.Helper()
		run(a, "device", "add", name, "--auth-mode", "string", "--auth-string", "80442", "--operation", "install", "--key", "ec256")
	}

	// Both nodes enrol while every time is in a window.
	for _, node := range []*binServer{a, b} {
		name := newPhoneName()
		addPending(name)
		if code, out := phone(node, name); code != 0 || !strings.Contains(out, `"installed"`) {
			t.Fatalf("enrolment before the change: exit %d\n%s", code, out)
		}
	}

	// Close the window through node A: an hour that starts six hours from
	// now (UTC).
	start := time.Now().UTC().Add(6 * time.Hour)
	window := fmt.Sprintf(`["%02d:00-%02d:59"]`, start.Hour(), start.Hour())
	run(a, "config", "set", "maintenance_time_zone", "UTC")
	out := run(a, "config", "set", "maintenance_windows", window)
	if !strings.Contains(out, "every node applies it") {
		t.Fatalf("config set: %s", out)
	}
	changed := time.Now()

	// Node B: a phone with a pending operation is told to retry later.
	// Each try is a phone of its own, so a try that B still served under
	// the old window costs nothing but the try.
	var waiting string
	for {
		name := newPhoneName()
		addPending(name)
		code, out := phone(b, name)
		if code == 8 { // still RETRY_LATER after the retries
			waiting = name
			break
		}
		if code != 0 {
			t.Fatalf("phone on node B: exit %d\n%s", code, out)
		}
		if time.Since(changed) > 5*time.Second {
			t.Fatalf("node B still enrols %s after the window closed through node A; B's log:\n%s", time.Since(changed), b.stderr)
		}
	}
	t.Logf("node B applied the change after %s", time.Since(changed).Round(time.Millisecond))
	if !strings.Contains(b.stderr.String(), "fleet parameters changed") {
		t.Errorf("node B did not log the change:\n%s", b.stderr)
	}
	if show := run(b, "config", "show"); !strings.Contains(show, window) {
		t.Errorf("config show through node B lacks %s:\n%s", window, show)
	}

	// Open it again through node B: the waiting phone enrols through A.
	run(b, "config", "set", "maintenance_windows", "[]")
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out := phone(a, waiting)
		if code == 0 && strings.Contains(out, `"installed"`) {
			break
		}
		if code != 8 || time.Now().After(deadline) {
			t.Fatalf("phone on node A after the window opened: exit %d\n%s\nA's log:\n%s", code, out, a.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every change is audited once, in the one database; so is the import
	// of the first node's capf.json (message_timeout, retry_delay), which
	// the second node's, saying the same, did not repeat.
	audit := run(a, "audit", "--limit", "50")
	if n := strings.Count(audit, "parameters.update"); n != 3 {
		t.Errorf("%d parameters.update events, want 3:\n%s", n, audit)
	}
	if n := strings.Count(audit, "parameters.import"); n != 1 || !strings.Contains(audit, "system:migration") {
		t.Errorf("%d parameters.import events, want 1 by system:migration:\n%s", n, audit)
	}
	if !strings.Contains(b.stderr.String(), "sets fleet parameters that live in the database") {
		t.Errorf("node B did not warn that its capf.json's fleet parameters are ignored:\n%s", b.stderr)
	}

	// A parameter the issuer read at start before (the LSC validity) is
	// a fleet parameter too: set through node B, node A issues LSCs of
	// the new validity within seconds, without a restart.
	if out := run(b, "config", "set", "certificate_validity_days", "30"); !strings.Contains(out, "every node applies it") {
		t.Fatalf("config set certificate_validity_days: %s", out)
	}
	changed = time.Now()
	for {
		name := newPhoneName()
		addPending(name)
		code, out := phone(a, name)
		var res struct {
			Installed *struct {
				NotAfter time.Time `json:"not_after"`
			} `json:"installed"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Installed == nil {
			t.Fatalf("enrolment on node A after the validity change: exit %d\n%s", code, out)
		}
		if left := time.Until(res.Installed.NotAfter); left < 31*24*time.Hour {
			if left < 29*24*time.Hour {
				t.Fatalf("LSC valid for %s more, want about 30 days", left)
			}
			break
		}
		if time.Since(changed) > 5*time.Second {
			t.Fatalf("node A still issues LSCs of the old validity %s after the change through node B; A's log:\n%s", time.Since(changed), a.stderr)
		}
	}
	t.Logf("node A issued under the new validity after %s", time.Since(changed).Round(time.Millisecond))
}
