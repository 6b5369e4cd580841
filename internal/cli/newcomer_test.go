package cli

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// listing returns the names under dir, relative to it, sorted; nil when dir
// does not exist.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func TestUninitialisedDataDirectoryIsRefused(t *testing.T) {
	parent := t.TempDir()
	missing := filepath.Join(parent, "typo", "capf-data")
	empty := t.TempDir()
	tests := []struct {
		name string
		data string
		args []string
	}{
		{"fail/list-missing-dir", missing, []string{"device", "list"}},
		{"fail/add-missing-dir", missing, []string{"device", "add", "SEP58971ECC97C1"}},
		{"fail/show-empty-dir", empty, []string{"device", "show", "SEP58971ECC97C1"}},
		{"fail/rm-empty-dir", empty, []string{"device", "rm", "SEP58971ECC97C1"}},
		{"fail/report-empty-dir", empty, []string{"report", "csv"}},
		{"fail/ca-show-missing-dir", missing, []string{"ca", "show"}},
		{"fail/ca-export-empty-dir", empty, []string{"ca", "export"}},
		{"fail/config-show-missing-dir", missing, []string{"config", "show"}},
		{"fail/config-validate-empty-dir", empty, []string{"config", "validate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.data, tt.args...)
			want := "no CAPF data in " + tt.data + ": run `capf serve` (or `capf init`) there first, or pass --data"
			if code != ExitNotFound || !strings.Contains(errOut, want) {
				t.Fatalf("exit %d, want %d; stderr lacks %q:\n%s%s", code, ExitNotFound, want, out, errOut)
			}
		})
	}
	if got := listing(t, filepath.Join(parent, "typo")); got != nil {
		t.Errorf("a refused command created %v", got)
	}
	if got := listing(t, empty); len(got) != 1 { // "." only
		t.Errorf("a refused command wrote into the empty directory: %v", got)
	}
}

func TestInit(t *testing.T) {
	data := filepath.Join(t.TempDir(), "new", "capf-data")
	out, errOut, code := run(t, data, "init")
	if code != ExitOK {
		t.Fatalf("init: exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"created data directory", "created node settings", "created database", "created CAPF key", "created CAPF certificate"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	if err := exec.Command("openssl", "x509", "-in", filepath.Join(data, "ca", "capf.pem"), "-noout").Run(); err != nil {
		t.Errorf("openssl does not read the CAPF certificate init made: %v", err)
	}
	pem1, _ := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	// Idempotent: a second init keeps everything.
	out, errOut, code = run(t, data, "init")
	if code != ExitOK || strings.Contains(out, "created") || !strings.Contains(out, "kept") {
		t.Fatalf("second init: exit %d:\n%s%s", code, out, errOut)
	}
	if pem2, _ := os.ReadFile(filepath.Join(data, "ca", "capf.pem")); string(pem1) != string(pem2) {
		t.Error("a second init replaced the CAPF certificate")
	}
	// The directory is ready for the admin commands.
	if out, errOut, code := run(t, data, "device", "list"); code != ExitOK || !strings.Contains(out, "0 of 0 devices") {
		t.Fatalf("list after init: exit %d: %s%s", code, out, errOut)
	}
}

func TestInitRefusesBadConfigAndCreatesNothing(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(`{"capf_key": "dsa"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, data, "init")
	if code != ExitUsage || !strings.Contains(errOut, `capf_key "dsa"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := listing(t, data); len(got) != 2 { // ".", capf.json
		t.Errorf("init with a bad capf.json wrote %v", got)
	}
}

func TestConfigValidateChecksWhatServeChecks(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    []string
		wantNot []string
	}{
		{"fail/listen-no-port", `{"listen": "3804"}`, []string{`listen "3804": want host:port`}, nil},
		{"fail/listen-port-range", `{"listen": "0.0.0.0:70000"}`, []string{`port "70000": want a number 0 to 65535`}, nil},
		{"fail/metrics-listen-unresolvable", `{"metrics_listen": "no-such-host.invalid:9804"}`, []string{`metrics_listen "no-such-host.invalid:9804": host "no-such-host.invalid" does not resolve`}, nil},
		{"fail/same-port-twice", `{"listen": ":3804", "metrics_listen": "127.0.0.1:3804"}`, []string{`the CAPF protocol listens there`}, nil},
		{"fail/decode-and-values", "{\"retry_delay\": 5, \"certificate_validity_days\": 9999,\n \"colour\": \"red\", \"listen\": \":x\"}",
			[]string{`retry_delay: want a duration string`, `certificate_validity_days 9999`, `unknown key "colour"`, `listen ":x"`}, nil},
		{"fail/syntax-position", "{\n  \"listen\": \":3804\"\n  \"tls_profile\": \"modern\"\n}", []string{"line 3, column 3"}, nil},
		{"fail/type-names-in-json-terms", `{"max_concurrent_operations": "many"}`, []string{`max_concurrent_operations: want a whole number, got a string`}, []string{"Go value", "int"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := initData(t)
			if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := run(t, data, "config", "validate")
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d: %s%s", code, ExitUsage, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q: %s", w, errOut)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(errOut, w) {
					t.Errorf("stderr has %q: %s", w, errOut)
				}
			}
			// serve refuses the same file, before it binds or writes.
			before := listing(t, data)
			_, serveErr, code := run(t, data, "serve")
			if code != ExitUsage || !strings.Contains(serveErr, tt.want[0]) {
				t.Errorf("serve: exit %d: %s", code, serveErr)
			}
			if after := listing(t, data); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("a refused serve changed the data directory: %v → %v", before, after)
			}
		})
	}
}

func TestServeOnBusyPortWritesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	tests := []struct {
		name  string
		flags []string
	}{
		{"fail/phone-port-busy", []string{"--listen", busy.Addr().String()}},
		{"fail/metrics-port-busy", []string{"--listen", "127.0.0.1:0", "--metrics-listen", busy.Addr().String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := filepath.Join(t.TempDir(), "capf-data")
			_, errOut, code := run(t, fresh, append([]string{"serve"}, tt.flags...)...)
			if code != ExitFailure || !strings.Contains(errOut, "address already in use") {
				t.Fatalf("exit %d, want %d: %s", code, ExitFailure, errOut)
			}
			if got := listing(t, fresh); got != nil {
				t.Errorf("a serve that could not listen created %v", got)
			}
		})
	}
}

func TestServeStartsOnFreshDirectory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "capf-data")
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--data", data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, out, out)
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "listening (phones)") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, out)
		case <-deadline:
			t.Fatalf("serve did not start: %s", out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("serve exit %d: %s", code, out)
	}
	for _, p := range []string{"capf.db", "capf.json", "ca/capf.key", "ca/capf.pem"} {
		if _, err := os.Stat(filepath.Join(data, p)); err != nil {
			t.Errorf("first start did not create %s: %v", p, err)
		}
	}
}

func TestCAExport(t *testing.T) {
	data := initData(t)
	outDir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"fail/dir-missing", []string{"ca", "export", "--dir", filepath.Join(outDir, "nope")}, ExitNotFound, "no such directory (create it first)"},
		{"fail/dir-is-file", []string{"ca", "export", "--dir", filepath.Join(data, "capf.json")}, ExitUsage, "not a directory"},
		{"fail/der-with-dir", []string{"ca", "export", "--der", "--dir", outDir}, ExitUsage, "--der and --dir exclude each other"},
		{"fail/output-with-dir", []string{"ca", "export", "-o", filepath.Join(outDir, "x.pem"), "--dir", outDir}, ExitUsage, "-o and --dir exclude each other"},
		{"ok/dir", []string{"ca", "export", "--dir", outDir}, ExitOK, "wrote " + outDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
	entries, _ := os.ReadDir(outDir)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".0") {
		t.Fatalf("export --dir wrote %v, want one HASH.0", entries)
	}
	// OpenSSL finds the CAPF certificate through -CApath.
	cmd := exec.Command("openssl", "verify", "-CApath", outDir, filepath.Join(data, "ca", "capf.pem"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("openssl verify -CApath: %v\n%s", err, b)
	}
}

func TestListFlagsRefuseWhatTheyWouldIgnore(t *testing.T) {
	data := initData(t)
	if _, errOut, code := run(t, data, "device", "add", "SEP58971ECC97C1", "--operation", "install"); code != ExitOK {
		t.Fatal(errOut)
	}
	if _, errOut, code := run(t, data, "device", "add", "SEP58971ECC97C2", "--description", ""); code != ExitOK {
		t.Fatal(errOut)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"fail/where-without-value", []string{"device", "list", "--where", "name:equals"}, ExitUsage, "match equals needs a value"},
		{"fail/where-empty-with-value", []string{"device", "list", "--where", "description:is-empty:x"}, ExitUsage, "match is-empty takes no value"},
		{"ok/where-is-empty", []string{"device", "list", "--where", "description:is-empty"}, ExitOK, "2 of 2 devices"},
		{"ok/where-equals", []string{"device", "list", "--where", "operation:equals:install"}, ExitOK, "1 of 1 devices"},
		{"fail/sort-bogus", []string{"device", "list", "--sort", "bogus"}, ExitUsage, "want one of name, description, security-profile, auth-mode, auth-string, operation, status, lsc-expires"},
		{"fail/report-json", []string{"report", "csv", "--json"}, ExitUsage, "unknown flag: --json"},
		{"fail/report-sort-bogus", []string{"report", "csv", "--sort", "colour"}, ExitUsage, "--sort \"colour\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
}

// TestSortFieldsAreSortable holds the CLI's list of sort fields equal to
// what device.Query accepts.
func TestSortFieldsAreSortable(t *testing.T) {
	for _, f := range device.SortFields {
		if err := (device.Query{Sort: f}).Validate(); err != nil {
			t.Errorf("sort field %q: %v", f, err)
		}
	}
	if err := (device.Query{Sort: device.FieldLSCStatus}).Validate(); err == nil {
		t.Errorf("device.Query sorts by %s, which sortFields leaves out", device.FieldLSCStatus)
	}
}

func TestExitCodes(t *testing.T) {
	data := initData(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"fail/unknown-command", []string{"frobnicate"}, ExitUsage, "unknown command"},
		{"fail/unknown-subcommand", []string{"device", "frobnicate"}, ExitUsage, `unknown command "frobnicate" for "capf device"`},
		{"fail/missing-argument", []string{"device", "show"}, ExitUsage, "accepts 1 arg"},
		{"fail/bad-flag-value", []string{"device", "list", "--limit", "many"}, ExitUsage, "invalid argument"},
		{"fail/unknown-flag", []string{"device", "list", "--colour"}, ExitUsage, "unknown flag"},
		{"ok/group-help", []string{"device"}, ExitOK, "Available Commands"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
}

// TestExitCodeTable checks the one mapping from error kinds, and that an
// error a command returns is classified by its kind even when its text
// reads like one of cobra's.
func TestExitCodeTable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"invalid", runError{fault.Invalidf("bad")}, ExitUsage},
		{"not-found", runError{fault.NotFoundf("gone")}, ExitNotFound},
		{"conflict", runError{fault.Conflictf("there")}, ExitConflict},
		{"unavailable", runError{fault.New(fault.Unavailable, "busy")}, ExitFailure},
		{"internal-with-flag-like-text", runError{os.ErrClosed}, ExitFailure},
		{"internal-unknown-flag-text", runError{errString("unknown flag: --x")}, ExitFailure},
		{"cobra-parse-error", errString("anything"), ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	for k := fault.Internal; k <= fault.Unavailable; k++ {
		if _, ok := exitCodes[k]; !ok {
			t.Errorf("kind %v has no exit code", k)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestArmingRules: the device rules a newcomer tripped over, at the CLI:
// arming an operation whose deadline has passed, and a string outside
// string mode, are refused with the reason and change nothing.
func TestArmingRules(t *testing.T) {
	data := initData(t)
	name := "SEP58971ECC97C1"
	if _, e, code := run(t, data, "device", "add", name, "--deadline", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); code != ExitOK {
		t.Fatal(e)
	}
	// Time passes: move the deadline into the past behind the CLI's back.
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.UpdateDevice(context.Background(), name, device.CLIActor("test"), func(d *device.Device) error {
		d.Deadline = time.Now().Add(-time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fail/arm-past-deadline", []string{"device", "set", name, "--operation", "install"}, ExitUsage, "is in the past; choose a later time or none"},
		{"fail/string-in-null-mode", []string{"device", "set", name, "--auth-string", "1234"}, ExitUsage, "only used By Authentication String"},
		{"fail/generate-and-string", []string{"device", "set", name, "--auth-mode", "string", "--auth-string", "1234", "--generate-string"}, ExitUsage, "exclude each other"},
		{"ok/arm-with-new-deadline", []string{"device", "set", name, "--operation", "install", "--deadline", "none"}, ExitOK, "Operation Pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, %s%s; want %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}
