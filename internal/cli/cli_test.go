package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes capf with a data directory and returns stdout, stderr and
// the exit code.
func run(t *testing.T, data string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), append([]string{"--data", data}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// initData returns a new data directory made by capf init.
func initData(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "capf-data")
	if out, errOut, code := run(t, data, "init"); code != ExitOK {
		t.Fatalf("capf init: exit %d: %s%s", code, out, errOut)
	}
	return data
}

func TestDeviceCommands(t *testing.T) {
	data := initData(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // substring of stdout+stderr
	}{
		{"ok/add", []string{"device", "add", "SEP58971ECC97C1", "--description", "Lobby", "--auth-mode", "null", "--operation", "install", "--key", "ec256"}, ExitOK, "Operation Pending"},
		{"fail/add-again", []string{"device", "add", "sep58971ecc97c1"}, ExitConflict, "exists"},
		{"fail/authenticated-with-string", []string{"device", "add", "SEP58971ECC97C2", "--security-profile", "authenticated", "--auth-mode", "string", "--auth-string", "1234"}, ExitUsage, "cannot use By Authentication String"},
		{"fail/string-too-short", []string{"device", "add", "SEP58971ECC97C2", "--auth-string", "12"}, ExitUsage, "must be 4 to 10 digits"},
		{"fail/both-string-flags", []string{"device", "add", "SEP58971ECC97C2", "--auth-string", "1234", "--generate-string"}, ExitUsage, "exclude each other"},
		{"fail/bad-deadline", []string{"device", "add", "SEP58971ECC97C2", "--deadline", "tomorrow"}, ExitUsage, "RFC 3339"},
		{"fail/bad-operation", []string{"device", "add", "SEP58971ECC97C2", "--operation", "upgrade-all"}, ExitUsage, "certificate operation"},
		{"fail/bad-name", []string{"device", "add", "PHONE1"}, ExitUsage, "must start with SEP"},
		{"fail/set-unknown", []string{"device", "set", "SEP000000000000", "--operation", "delete"}, ExitNotFound, "not found"},
		{"fail/show-unknown", []string{"device", "show", "SEP000000000000"}, ExitNotFound, "not found"},
		{"fail/rm-unknown", []string{"device", "rm", "SEP000000000000"}, ExitNotFound, "not found"},
		{"fail/unknown-flag", []string{"device", "add", "SEP58971ECC97C2", "--colour", "red"}, ExitUsage, "unknown flag"},
		{"ok/generate", []string{"device", "add", "CSFJDOE", "--auth-mode", "string", "--generate-string", "--operation", "install"}, ExitOK, "Authentication String:"},
		{"ok/show", []string{"device", "show", "SEP58971ECC97C1"}, ExitOK, "By Null String"},
		{"ok/list-filter", []string{"device", "list", "--name", "SEP", "--description", "lob"}, ExitOK, "1 of 1 devices"},
		{"ok/list-within-results", []string{"device", "list", "--where", "name:begins-with:CSF", "--where", "operation:equals:install"}, ExitOK, "1 of 1 devices"},
		{"fail/list-bad-filter", []string{"device", "list", "--where", "colour:equals:red"}, ExitUsage, "unknown field"},
		{"ok/rm", []string{"device", "rm", "CSFJDOE"}, ExitOK, "removed CSFJDOE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.wantOut) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.wantOut, out, errOut)
			}
		})
	}
}

func TestImportAndReportRoundTrip(t *testing.T) {
	data := initData(t)
	good := filepath.Join(data, "phones.csv")
	csv := "Device Name,Description,Security Profile,Authentication Mode,Authentication String,Certificate Operation,Key,Operation Completes By\r\n" +
		"SEP000000000001,Desk 1,non-secure,string,12345,install,rsa2048,\r\n" +
		"SEP000000000002,Desk 2,encrypted,By Null String,,Install/Upgrade,ec256,2030-01-01T00:00:00Z\r\n" +
		"CSFJDOE,Jabber,,,,,,\r\n"
	if err := os.WriteFile(good, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, data, "device", "import", good)
	if code != ExitOK || !strings.Contains(out, "3 devices: 3 added") {
		t.Fatalf("import: %d %s%s", code, out, errOut)
	}

	bad := filepath.Join(data, "bad.csv")
	badCSV := "Device Name,Security Profile,Authentication Mode,Authentication String\n" +
		"SEP000000000003,non-secure,null,\n" +
		"SEP000000000004,encrypted,string,9999\n"
	if err := os.WriteFile(bad, []byte(badCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, data, "device", "import", bad)
	if code != ExitUsage || !strings.Contains(errOut, "line 3:") {
		t.Fatalf("bad import: exit %d: %s%s", code, out, errOut)
	}
	out, _, _ = run(t, data, "device", "list", "--json")
	var list struct{ Total int }
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Total != 3 {
		t.Fatalf("after a rejected import: %s (%v)", out, err)
	}

	reportFile := filepath.Join(data, "report.csv")
	if _, errOut, code := run(t, data, "report", "csv", "-o", reportFile); code != ExitOK {
		t.Fatalf("report: %s", errOut)
	}
	rep, _ := os.ReadFile(reportFile)
	for _, want := range []string{"LSC Status", "Operation Status", "SEP000000000002", "By Null String", "Operation Pending"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	// The report imports back unchanged.
	before, _, _ := run(t, data, "device", "show", "SEP000000000001", "--json")
	if out, errOut, code := run(t, data, "device", "import", reportFile); code != ExitOK || !strings.Contains(out, "0 updated, 3 unchanged") {
		t.Fatalf("re-import of the report: %d %s%s", code, out, errOut)
	}
	after, _, _ := run(t, data, "device", "show", "SEP000000000001", "--json")
	var b, a map[string]any
	_ = json.Unmarshal([]byte(before), &b)
	_ = json.Unmarshal([]byte(after), &a)
	for _, k := range []string{"auth_string", "auth_mode", "operation", "key", "status", "security_profile", "description"} {
		if a[k] != b[k] {
			t.Errorf("%s changed by the round trip: %v → %v", k, b[k], a[k])
		}
	}
}

func TestConfigCommands(t *testing.T) {
	data := initData(t)
	out, errOut, code := run(t, data, "config", "show")
	if code != ExitOK || !strings.Contains(out, "certificate_validity_days") || !strings.Contains(out, "1825") || !strings.Contains(out, "Validity of issued LSCs") {
		t.Fatalf("config show: %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "config", "validate"); code != ExitOK || !strings.Contains(out, "ok") {
		t.Fatalf("validate defaults: %d %s%s", code, out, errOut)
	}
	// On a node that serves (it holds the data directory's lock), the file
	// is checked before the restart that applies it, not refused.
	release, err := (&globals{dataDir: data}).lockDataDir()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, data, "config", "validate")
	release()
	if code != ExitOK || !strings.Contains(out, "capf.json: ok") || !strings.Contains(out, "in use by another capf serve") {
		t.Fatalf("validate while serving: %d %s%s", code, out, errOut)
	}
	bad := `{"certificate_validity_days": 4000, "maintenance_windows": ["Caturday 01:00-02:00"], "manufacturer_ca_bundle": "missing.pem"}`
	if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, data, "config", "validate")
	if code != ExitUsage || !strings.Contains(errOut, "certificate_validity_days 4000") || !strings.Contains(errOut, `day "caturday"`) {
		t.Fatalf("validate bad: %d %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(`{"manufacturer_ca_bundle": "missing.pem"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = run(t, data, "config", "validate"); code == ExitOK || !strings.Contains(errOut, "manufacturer_ca_bundle") {
		t.Fatalf("validate missing bundle: %d %s", code, errOut)
	}
}

// TestAuditCommand: each admin command is in the audit stream, by the OS
// user, with old → new values.
func TestAuditCommand(t *testing.T) {
	data := initData(t)
	for _, args := range [][]string{
		{"device", "add", "SEP001122334455", "--description", "lobby"},
		{"device", "set", "SEP001122334455", "--description", "3rd floor"},
		{"device", "rm", "SEP001122334455"},
	} {
		if _, e, code := run(t, data, args...); code != ExitOK {
			t.Fatalf("%v: %s", args, e)
		}
	}
	out, e, code := run(t, data, "audit", "--device", "sep001122334455")
	if code != ExitOK {
		t.Fatal(e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "device.delete") || !strings.Contains(lines[2], `description: "lobby" → "3rd floor"`) ||
		!strings.Contains(lines[3], "device.create") || !strings.Contains(lines[3], "cli:") {
		t.Errorf("audit:\n%s", out)
	}
}
