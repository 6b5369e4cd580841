package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestCAExportAudited: each `capf ca export` is in the audit stream with
// its format, destination and the certificate's SHA-256; where the audit
// cannot be written (a copy of the data directory without its database, a
// read-only one) the public certificate is still exported, with a warning.
func TestCAExportAudited(t *testing.T) {
	data, capf := newTrustData(t)
	sum := sha256.Sum256(capf.Raw)
	fp := hex.EncodeToString(sum[:])
	file := filepath.Join(t.TempDir(), "capf.der")
	for _, args := range [][]string{{"ca", "export"}, {"ca", "export", "--der", "-o", file}} {
		out, errOut, code := run(t, data, args...)
		if code != ExitOK || strings.Contains(errOut, "warning") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: device.CAExportTarget})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"DER to " + file, "PEM to standard output"} // newest first
	if len(evs) != len(want) {
		t.Fatalf("%d ca.export events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		if ev.Action != device.AuditCAExport || ev.Actor.Kind != device.ActorCLI || !strings.Contains(ev.Detail, want[i]) || !strings.Contains(ev.Detail, "sha256 "+fp) {
			t.Errorf("event %d: %s by %s: %q; want %q and sha256 %s", i, ev.Action, ev.Actor, ev.Detail, want[i], fp)
		}
	}

	t.Run("copy-without-database", func(t *testing.T) {
		cp := filepath.Join(t.TempDir(), "copy")
		if err := os.MkdirAll(filepath.Join(cp, datadir.CADir), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{filepath.Join(datadir.CADir, "capf.pem"), filepath.Join(datadir.CADir, "capf.key"), "capf.json"} {
			b, err := os.ReadFile(filepath.Join(data, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cp, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, code := run(t, cp, "ca", "export")
		if code != ExitOK || !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(errOut, "warning: the export is not in the audit stream") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want the certificate and a warning", code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(cp, "capf.db")); err == nil {
			t.Error("ca export created a database in the copy")
		}
	})
	t.Run("read-only-directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may write a read-only directory")
		}
		if err := os.Chmod(data, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(data, 0o700) })
		out, errOut, code := run(t, data, "ca", "export")
		if code != ExitOK || !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(errOut, "not writable") {
			t.Fatalf("exit %d, stderr %q; want the certificate and a warning", code, errOut)
		}
	})
}
