package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/backup"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/webui"
)

func init() { subcommands = append(subcommands, newBackupCmd) }

func newBackupCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write one consistent archive of the database, the keys, the trace files and the CRLs, while the server runs",
		Long: `backup writes one archive (tar; gzip when FILE ends in .gz or .tgz; mode 0600) of the
--data directory's SQLite database, or of the PostgreSQL --db, as one consistent snapshot
taken while servers keep serving phones, with the data directory's key files (on SQLite
these are private keys in the clear: keep the archive as secret as the CAPF key), trace
files, CRLs and capf.json, and a manifest with the capf version, the schema version, the
time and a SHA-256 per entry. On PostgreSQL the cluster's keys stay sealed under the KEK:
keep the KEK file's own backup apart from the archive. capf restore reads it back, into
either backend. Browser sessions, leases, the node registry and the rate-limit window are
not archived: they belong to the nodes running now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("backup needs --out FILE")
			}
			return runBackup(cmd.Context(), g, out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the archive to write (FILE.tar, or FILE.tar.gz to compress it)")
	return cmd
}

// notBackedUp are the data directory's entries a backup leaves out: the
// database (its tables come from the snapshot instead), the lock and node
// id of the node running there, and simulated phones' state. Everything
// else goes in: the key files, trace files, CRLs, capf.json and the files
// it names (a manufacturer CA bundle, for instance).
var notBackedUp = map[string]bool{
	datadir.DBFile: true, datadir.DBFile + "-wal": true, datadir.DBFile + "-shm": true, datadir.DBFile + "-journal": true,
	datadir.LockFile: true, datadir.NodeFile: true, datadir.PhoneDir: true,
}

func runBackup(ctx context.Context, g *globals, out string) error {
	m, err := writeBackup(ctx, g.storeOptions(store.ReadOnly), out)
	if err != nil {
		return err
	}
	var rows int64
	for _, e := range m.Entries {
		rows += e.Rows
	}
	fmt.Fprintf(g.stdout, "backup written to %s: %s database (schema %d), %d tables (%d rows), %d files\n",
		out, m.Backend, m.SchemaVersion, len(m.Tables()), rows, len(m.Entries)-len(m.Tables()))
	if m.PrivateKeys {
		fmt.Fprintf(g.stdout, "the archive holds private keys (mode 0600): keep it as secret as the CAPF key\n")
	}
	return nil
}

// writeBackup writes the archive of the database o names and of its data
// directory to out, and returns its manifest.
func writeBackup(ctx context.Context, o store.Options, out string) (backup.Manifest, error) {
	o.Mode = store.ReadOnly
	if err := store.Initialised(o); err != nil {
		return backup.Manifest{}, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(out), ".capf-backup-*")
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(stage)
	b := backup.NewBuilder(stage)
	schema, err := store.Dump(ctx, o, stage, b.Sink())
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("backup: %w", err)
	}
	keysInClear, err := addDataFiles(b, o.DataDir, out, !store.IsPostgres(o.DB))
	if err != nil {
		return backup.Manifest{}, err
	}
	return b.Write(out, backup.Manifest{
		CAPFVersion:   capfVersion(),
		Backend:       store.Backend(o),
		SchemaVersion: schema,
		CreatedAt:     time.Now().UTC(),
		PrivateKeys:   keysInClear,
	})
}

// ActionBackupDownload is the audit action of a backup downloaded from
// the web UI.
const ActionBackupDownload = "backup.download"

// webBackups makes the web UI's backup downloads: an archive in a private
// temporary directory, audited before it is handed out.
type webBackups struct {
	o     store.Options
	audit interface {
		AppendAudit(ctx context.Context, ev device.AuditEvent) error
	}
	now func() time.Time
}

var _ webui.Backups = (*webBackups)(nil)

// Backup implements webui.Backups.
func (w *webBackups) Backup(ctx context.Context, actor device.Actor) (string, int64, io.ReadCloser, error) {
	dir, err := os.MkdirTemp("", "capf-web-backup-*")
	if err != nil {
		return "", 0, nil, fmt.Errorf("backup: %w", err)
	}
	now := time.Now
	if w.now != nil {
		now = w.now
	}
	name := "capf-backup-" + now().UTC().Format("20060102-150405") + ".tar.gz"
	path := filepath.Join(dir, name)
	m, err := writeBackup(ctx, w.o, path)
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, nil, fmt.Errorf("backup: %w", err)
	}
	sum := sha256.New()
	size, err := io.Copy(sum, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.RemoveAll(dir)
		return "", 0, nil, fmt.Errorf("backup: %w", err)
	}
	detail := fmt.Sprintf("downloaded from the web UI as %s: %s database, schema %d, %d entries, %d bytes, sha256 %s",
		name, m.Backend, m.SchemaVersion, len(m.Entries), size, hex.EncodeToString(sum.Sum(nil)))
	if m.PrivateKeys {
		detail += ", holds private keys"
	}
	// The download is audited before it is sent; one that cannot be is refused.
	if err := w.audit.AppendAudit(ctx, device.AuditEvent{At: now().UTC(), Actor: actor, Action: ActionBackupDownload, Target: "backup", Detail: detail}); err != nil {
		f.Close()
		os.RemoveAll(dir)
		return "", 0, nil, fmt.Errorf("audit the backup download: %w", err)
	}
	return name, size, &removeOnClose{File: f, dir: dir}, nil
}

// removeOnClose is a file whose directory is removed when it is closed.
type removeOnClose struct {
	*os.File
	dir string
}

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	os.RemoveAll(r.dir)
	return err
}

// addDataFiles stages the data directory's files (regular files only;
// not those of notBackedUp, nor a backup being written there). A missing
// directory is an error only when it must exist (SQLite). It reports
// whether a private key file went in.
func addDataFiles(b *backup.Builder, dir, out string, required bool) (keysInClear bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && !required {
		return false, nil
	}
	outAbs, _ := filepath.Abs(out)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		if notBackedUp[top] || strings.HasPrefix(d.Name(), ".capf-backup-") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if abs, _ := filepath.Abs(p); abs == outAbs || abs == outAbs+".partial" {
			return nil
		}
		if isKeyMaterial(filepath.ToSlash(rel)) && isKeyFile(d.Name()) {
			keysInClear = true
		}
		return b.AddFile(rel, p)
	})
	if err != nil {
		return false, fmt.Errorf("backup %s: %w", dir, err)
	}
	return keysInClear, nil
}

// isKeyFile reports whether a data directory file holds a private key.
func isKeyFile(name string) bool {
	return strings.HasSuffix(name, ".key") || strings.HasSuffix(name, "key.pem")
}

// capfVersion is the main module's version ("(devel)" for a source build).
func capfVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
		return v
	}
	return "unknown"
}
