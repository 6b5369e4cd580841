package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/system"
)

// TestRemoteConfig: capf config show and set through internal/api read
// and change the server's parameters, audited as the token, with the
// local command's checks and messages; a host-only setting is refused by
// the server and nothing changes.
func TestRemoteConfig(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, _ := remoteServer(t, data, systemAPI(t, data))
	rcapf := func(args ...string) (string, string, int) {
		return run(t, data, append(append([]string(nil), remote...), args...)...)
	}
	// show: the same parameters as the local command, named as the
	// server's.
	local, _, _ := run(t, data, "config", "show", "--json")
	out, errOut, code := rcapf("config", "show", "--json")
	if code != ExitOK || out != local {
		t.Fatalf("config show --json through the API: exit %d %s\nremote: %s\nlocal:  %s", code, errOut, out, local)
	}
	out, _, code = rcapf("config", "show")
	if code != ExitOK || !strings.Contains(out, "Node settings (capf.json of the node serving "+remote[1]) || !strings.Contains(out, "Fleet parameters (database of "+remote[1]) {
		t.Fatalf("config show through the API: exit %d\n%s", code, out)
	}

	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"fleet", []string{"config", "set", "maintenance_windows", `["Mon-Fri 22:00-06:00"]`}, ExitOK, "stored in the database of " + remote[1]},
		{"again", []string{"config", "set", "maintenance_windows", `["Mon-Fri 22:00-06:00"]`}, ExitOK, "nothing changed"},
		{"bare-string", []string{"config", "set", "retry_delay", "45s"}, ExitOK, `retry_delay: "1m0s" → "45s"`},
		{"node-setting", []string{"config", "set", "log_level", "debug"}, ExitOK, "written to capf.json of the node serving " + remote[1] + ": restart capf serve on that node"},
		{"unknown", []string{"config", "set", "colour", "blue"}, ExitUsage, `unknown service parameter "colour"`},
		{"bad-value", []string{"config", "set", "retry_delay", "forever"}, ExitUsage, "retry_delay"},
		{"host-only", []string{"config", "set", "database", "postgres://evil.example/capf"}, ExitFailure, "database"},
		{"host-only-module", []string{"config", "set", "pkcs11_module", "/tmp/evil.so"}, ExitFailure, "pkcs11_module"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := rcapf(tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
	var ps []system.Parameter
	out, _, _ = run(t, data, "config", "show", "--json")
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		switch got := jsonText(p.Value); p.Name {
		case "maintenance_windows":
			if got != `["Mon-Fri 22:00-06:00"]` {
				t.Errorf("maintenance_windows = %s after the remote set", got)
			}
		case "retry_delay":
			if got != `"45s"` {
				t.Errorf("retry_delay = %s after the remote set", got)
			}
		case "database", "pkcs11_module":
			if got != `""` {
				t.Errorf("%s = %s: a host-only setting changed through the API", p.Name, got)
			}
		}
	}
	if out, _, _ := run(t, data, "audit", "--limit", "5"); !strings.Contains(out, "remote-test") {
		t.Errorf("the remote changes are not audited as the token:\n%s", out)
	}
}
