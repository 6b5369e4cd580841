package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestTrustBackupOfflineOnCluster: on a cluster the backup SAST key is
// sealed in the database; export-backup --remove writes it, reads the
// file back, and only then empties its private key in the database,
// audited; the certificate stays, so trust files still list both
// signers, the backup signs only through --signer-key, a second export
// finds nothing, and a KEK rotation re-seals the rest.
func TestTrustBackupOfflineOnCluster(t *testing.T) {
	t.Setenv("CAPF_DB", "")
	t.Setenv("CAPF_KEK_FILE", "")
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek")
	var initOut strings.Builder
	if code := Run(t.Context(), []string{"--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"}, &initOut, &initOut); code != ExitOK {
		t.Fatalf("cluster init: exit %d\n%s", code, initOut.String())
	}
	data := filepath.Join(dir, "admin-host")
	on := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, data, append([]string{"--db", dsn, "--kek-file", kekFile}, args...)...)
	}
	if o, e, code := on("init"); code != ExitOK {
		t.Fatalf("init: %d %s%s", code, o, e)
	}
	backup := filepath.Join(dir, "sast-backup.pem")
	o, e, code := on("trust", "export-backup", "-o", backup, "--remove")
	if code != ExitOK || !strings.Contains(e, "no longer in the database") {
		t.Fatalf("export --remove: %d %s%s", code, o, e)
	}
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", st, err)
	}
	o, e, _ = on("trust", "signers")
	if !strings.Contains(o, "OFFLINE") || strings.Count(o, "SHA-256:") != 2 {
		t.Fatalf("signers after the removal:\n%s%s", o, e)
	}
	out := filepath.Join(dir, "ITLFile.tlv")
	if _, e, code := on("trust", "build", "--out", out, "--signer", "backup"); code != ExitNotFound || !strings.Contains(e, "not in the database") || !strings.Contains(e, "--signer-key") {
		t.Fatalf("build with the offline backup: %d %s", code, e)
	}
	if o, e, code := on("trust", "build", "--out", out, "--signer-key", backup); code != ExitOK || !strings.Contains(o, "backup SAST") {
		t.Fatalf("build --signer-key: %d %s%s", code, o, e)
	}
	if o, e, code := on("trust", "check", out); code != ExitOK {
		t.Fatalf("check: %d %s%s", code, o, e)
	}
	if _, e, code := on("trust", "export-backup", "-o", filepath.Join(dir, "again.pem"), "--remove"); code != ExitNotFound {
		t.Fatalf("second export: %d %s", code, e)
	}
	mustNotExist(t, filepath.Join(dir, "again.pem"))
	o, _, _ = on("audit", "--limit", "5")
	if !strings.Contains(o, "keys.remove-private") || !strings.Contains(o, "trust.export-backup") {
		t.Fatalf("audit:\n%s", o)
	}
	newKEK := filepath.Join(dir, "kek2")
	if o, e, code := run(t, data, "--db", dsn, "kek", "rotate", "--kek-file", kekFile, "--new-kek-file", newKEK, "--generate"); code != ExitOK {
		t.Fatalf("kek rotate after the removal: %d %s%s", code, o, e)
	}
	if o, e, code := run(t, data, "--db", dsn, "--kek-file", newKEK, "trust", "signers"); code != ExitOK || !strings.Contains(o, "OFFLINE") {
		t.Fatalf("signers under the new KEK: %d %s%s", code, o, e)
	}
}
