package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/api"
	"github.com/capf-server/capf/internal/device"
)

// setNodeSettings merges kv into the data directory's capf.json.
func setNodeSettings(t *testing.T, data string, kv map[string]any) {
	t.Helper()
	p := filepath.Join(data, "capf.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		m[k] = v
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceReset(t *testing.T) {
	data := initData(t)
	for _, name := range []string{"SEP0000000000AA", "SEP0000000000BB", "CSFJDOE"} {
		if out, errOut, code := run(t, data, "device", "add", name); code != ExitOK {
			t.Fatalf("add %s: %d %s%s", name, code, out, errOut)
		}
	}

	// No notifier: a clear error saying how to configure one.
	out, errOut, code := run(t, data, "device", "reset", "SEP0000000000AA")
	if code == ExitOK || !strings.Contains(out+errOut, "no notifier is configured: set reset_ami_address") {
		t.Fatalf("reset without a notifier: exit %d: %s%s", code, out, errOut)
	}

	// A command notifier: a script that records its argument and fails
	// for SEP0000000000BB.
	dir := t.TempDir()
	log := filepath.Join(dir, "notified")
	script := filepath.Join(dir, "reset.sh")
	body := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> " + log + "\n[ \"$1\" = SEP0000000000BB ] && { echo 'peer not found' >&2; exit 1; }\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	setNodeSettings(t, data, map[string]any{"reset_command": []string{script}})

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"ok/one", []string{"device", "reset", "sep0000000000aa"}, ExitOK, "reset SEP0000000000AA: ok"},
		{"fail/one", []string{"device", "reset", "SEP0000000000BB"}, ExitFailure, "reset SEP0000000000BB: failed: reset command reset.sh failed (exit status 1): peer not found"},
		{"fail/unknown", []string{"device", "reset", "SEP0000000000CC"}, ExitNotFound, "not found"},
		{"fail/name-and-search", []string{"device", "reset", "SEP0000000000AA", "--name", "SEP"}, ExitUsage, "not both"},
		{"fail/nothing", []string{"device", "reset"}, ExitUsage, "give a device name"},
		{"ok/show", []string{"device", "show", "SEP0000000000BB"}, ExitOK, "failed (by cli:"},
		{"fail/search-one-fails", []string{"device", "reset", "--name", "SEP"}, ExitFailure, "1 of 2 phones reset"},
		{"ok/search", []string{"device", "reset", "--name", "CSF"}, ExitOK, "1 of 1 phones reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.wantOut) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.wantOut, out, errOut)
			}
		})
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "SEP0000000000AA\nSEP0000000000BB\nSEP0000000000AA\nSEP0000000000BB\nCSFJDOE\n" {
		t.Errorf("the script was run for %q", got)
	}
	out, _, code = run(t, data, "device", "show", "SEP0000000000AA", "--json")
	var d struct {
		LastReset struct {
			OK    bool   `json:"ok"`
			Actor string `json:"actor"`
		} `json:"last_reset"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &d) != nil || !d.LastReset.OK || !strings.HasPrefix(d.LastReset.Actor, "cli:") {
		t.Errorf("show --json: exit %d, last_reset %+v:\n%s", code, d.LastReset, out)
	}
	out, _, _ = run(t, data, "audit", "--device", "SEP0000000000BB")
	if !strings.Contains(out, "device.reset-outcome") || !strings.Contains(out, "device.reset ") {
		t.Errorf("audit lacks the resets:\n%s", out)
	}
}

func TestDeviceResetAMISecretFileMode(t *testing.T) {
	data := initData(t)
	if _, _, code := run(t, data, "device", "add", "SEP0000000000AA"); code != ExitOK {
		t.Fatal("add")
	}
	secret := filepath.Join(data, "ami-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setNodeSettings(t, data, map[string]any{"reset_ami_address": "127.0.0.1:1", "reset_ami_user": "capf", "reset_ami_secret_file": "ami-secret"})
	out, errOut, code := run(t, data, "device", "reset", "SEP0000000000AA")
	if code == ExitOK || !strings.Contains(out+errOut, "has mode 0644: group or others may access it") || strings.Contains(out+errOut, "s3cret") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}

// TestConfigValidateChecksResetSecret: capf config validate (and serve,
// which plans the same way) refuses an AMI secret file others may read.
func TestConfigValidateChecksResetSecret(t *testing.T) {
	data := initData(t)
	secret := filepath.Join(data, "ami-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	setNodeSettings(t, data, map[string]any{"reset_ami_address": "127.0.0.1:5038", "reset_ami_user": "capf", "reset_ami_secret_file": "ami-secret"})
	out, errOut, code := run(t, data, "config", "validate")
	if code != ExitUsage || !strings.Contains(out+errOut, "reset notifier: AMI secret file") || !strings.Contains(out+errOut, "mode 0640") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, data, "config", "validate"); code != ExitOK {
		t.Fatalf("with mode 0600: exit %d:\n%s%s", code, out, errOut)
	}
	setNodeSettings(t, data, map[string]any{"reset_ami_address": "", "reset_command": []string{filepath.Join(data, "no-such-script")}})
	out, errOut, code = run(t, data, "config", "validate")
	if code != ExitUsage || !strings.Contains(out+errOut, "no-such-script: no such file or directory") {
		t.Fatalf("a missing reset_command: exit %d:\n%s%s", code, out, errOut)
	}
}

// failFor is a notifier that fails for one device.
type failFor string

func (f failFor) Notify(_ context.Context, name string) error {
	if name == string(f) {
		return errors.New("the PBX refused the NOTIFY to " + name)
	}
	return nil
}

// TestRemoteDeviceReset: capf --server device reset goes through the
// API's reset routes, with the same output as a local reset; a viewer's
// token is refused.
func TestRemoteDeviceReset(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	var h http.Handler
	remote, st := remoteServer(t, data, func(*device.Service) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
	})
	svc := device.NewService(device.ServiceOptions{Store: st, Notifier: failFor("SEP0000000000BB")})
	a, _ := api.New(api.Options{Devices: svc})
	h = withTestTokens(a)
	for _, name := range []string{"SEP0000000000AA", "SEP0000000000BB"} {
		if _, errOut, code := run(t, data, "device", "add", name); code != ExitOK {
			t.Fatal(errOut)
		}
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"ok/one", []string{"device", "reset", "SEP0000000000AA"}, ExitOK, "reset SEP0000000000AA: ok"},
		{"fail/one", []string{"device", "reset", "SEP0000000000BB"}, ExitFailure, "failed: the PBX refused the NOTIFY to SEP0000000000BB"},
		{"fail/search", []string{"device", "reset", "--name", "SEP"}, ExitFailure, "1 of 2 phones reset"},
		{"ok/show", []string{"device", "show", "SEP0000000000AA"}, ExitOK, "ok (by api:remote-test)"},
		{"fail/viewer", []string{"--token", viewerToken, "device", "reset", "SEP0000000000AA"}, ExitFailure, "viewer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, append(append([]string(nil), remote...), tt.args...)...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
}
