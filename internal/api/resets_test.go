package api

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/notify"
	"github.com/capf-server/capf/internal/view"
)

// newResetEnv is newEnv with a device service whose notifier is n.
func newResetEnv(t *testing.T, n device.Notifier) *env {
	t.Helper()
	e := newEnv(t)
	e.devices = device.NewService(device.ServiceOptions{Store: e.store, Now: func() time.Time { return testNow }, Notifier: n})
	e.srv = newServer(Options{
		Devices: e.devices, Campaigns: e.campaigns, Accounts: e.accounts, System: e.system, Certificate: e.cert,
		Certificates: lsc.NewService(lsc.Options{Store: e.store, Now: func() time.Time { return testNow }}),
		ParseTTL:     parseTestTTL, RetryAfter: retryAfter,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: e.logs}, nil)),
	})
	e.h = withTestPrincipal(e.srv.mux)
	return e
}

// resetScript writes a script that appends its argument to a file and
// fails for the device names in fail; it returns the notifier running it
// and the file.
func resetScript(t *testing.T, failFor string) (device.Notifier, string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "notified")
	p := filepath.Join(dir, "reset.sh")
	body := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> " + out + "\ncase \"$1\" in " + failFor + ") echo \"no such endpoint $1\" >&2; exit 2;; esac\n"
	if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := notify.NewCommand(notify.CommandOptions{Argv: []string{p}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return n, out
}

func TestResetDevice(t *testing.T) {
	n, out := resetScript(t, "SEP0000000000BB")
	e := newResetEnv(t, n)
	for _, name := range []string{"SEP0000000000AA", "SEP0000000000BB"} {
		decode[view.Device](t, e.do(asAdmin, "POST", Prefix+"/devices", map[string]any{"name": name}), http.StatusCreated)
	}

	// A viewer may not reset.
	problem(t, e.do(asViewer, "POST", Prefix+"/devices/SEP0000000000AA/reset", nil), http.StatusForbidden)

	r := decode[view.Reset](t, e.do(asAdmin, "POST", Prefix+"/devices/sep0000000000aa/reset", nil), http.StatusOK)
	if !r.OK || r.Device != "SEP0000000000AA" || r.Actor == "" {
		t.Errorf("reset %+v", r)
	}
	p := problem(t, e.do(asAdmin, "POST", Prefix+"/devices/SEP0000000000BB/reset", nil), http.StatusServiceUnavailable)
	if !strings.Contains(p.Detail, "failed (exit status 2): no such endpoint SEP0000000000BB") {
		t.Errorf("detail %q", p.Detail)
	}
	problem(t, e.do(asAdmin, "POST", Prefix+"/devices/SEP0000000000CC/reset", nil), http.StatusNotFound)

	d := decode[view.DeviceDetail](t, e.do(asViewer, "GET", Prefix+"/devices/SEP0000000000BB", nil), http.StatusOK)
	if d.LastReset == nil || d.LastReset.OK || !strings.Contains(d.LastReset.Reason, "no such endpoint") {
		t.Errorf("last_reset %+v", d.LastReset)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "SEP0000000000AA\nSEP0000000000BB\n" {
		t.Errorf("the script was run for %q", b)
	}

	// A bulk reset of a search result: both phones, one failing.
	bulk := decode[view.BulkReset](t, e.do(asAdmin, "POST", Prefix+"/devices/reset", map[string]any{"criteria": map[string]any{"name": "SEP"}}), http.StatusOK)
	if bulk.Matched != 2 || len(bulk.Resets) != 2 || bulk.Failed != 1 {
		t.Errorf("bulk %+v", bulk)
	}
	problem(t, e.do(asViewer, "POST", Prefix+"/devices/reset", map[string]any{"criteria": map[string]any{"name": "SEP"}}), http.StatusForbidden)

	// Audited, request and outcome.
	evs, err := e.store.ListAudit(t.Context(), device.AuditQuery{Target: "SEP0000000000AA"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	if got := strings.Join(actions, ","); !strings.HasPrefix(got, "device.reset-outcome,device.reset,device.reset-outcome,device.reset,") {
		t.Errorf("audit %s", got)
	}
}

func TestResetWithoutNotifier(t *testing.T) {
	e := newResetEnv(t, nil)
	decode[view.Device](t, e.do(asAdmin, "POST", Prefix+"/devices", map[string]any{"name": "SEP0000000000AA"}), http.StatusCreated)
	p := problem(t, e.do(asAdmin, "POST", Prefix+"/devices/SEP0000000000AA/reset", nil), http.StatusServiceUnavailable)
	if !strings.Contains(p.Detail, "no notifier is configured") || !strings.Contains(p.Detail, "reset_command") {
		t.Errorf("detail %q", p.Detail)
	}
}
