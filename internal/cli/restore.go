package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/backup"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/dbdump"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/trust"
)

func init() { subcommands = append(subcommands, newRestoreCmd) }

func newRestoreCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a capf backup archive into an empty data directory (SQLite) or an empty PostgreSQL --db",
		Long: `restore verifies every entry of the archive FILE against its manifest first and refuses a
corrupted, truncated or foreign file, writing nothing. It then restores into the --data
directory's SQLite database (the directory must be empty or absent, and no capf serve may
run there) or into the PostgreSQL --db (no node may be serving it, and it must hold no
data), so that a server started on it presents the same CAPF certificate and serves the
same devices, history, accounts, tokens and parameters. --force replaces what a non-empty
target holds. Either backend's archive restores into either: a SQLite archive's key files
are sealed into the PostgreSQL database under --kek-file, and a PostgreSQL archive's
sealed keys are opened with --kek-file and written as the data directory's key files.
Administrators log in again afterwards (browser sessions are not archived).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dataGiven := cmd.Flags().Changed("data") || os.Getenv("CAPF_DATA") != ""
			return runRestore(cmd.Context(), g, args[0], force, dataGiven)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "restore into a data directory or database that is not empty, replacing what it holds")
	return cmd
}

// keyDirs are the data directory's folders of key material.
var keyDirs = []string{datadir.CADir, datadir.TrustDir, admintls.DirName}

func isKeyMaterial(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	return slices.Contains(keyDirs, first)
}

func runRestore(ctx context.Context, g *globals, file string, force, dataGiven bool) error {
	if err := store.Check(g.db); err != nil {
		return err
	}
	toPG := store.IsPostgres(g.db)
	stage, err := os.MkdirTemp("", "capf-restore-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(stage)
	a, err := backup.Open(file, stage)
	if err != nil {
		return err
	}
	m := a.Manifest
	if known := store.SchemaVersionOf(m.Backend); known == 0 || m.SchemaVersion != known {
		return fault.Invalidf("%s was made by capf %s from a %s database at schema version %d; this capf's %s schema is version %d: restore it with that capf version (nothing was restored)",
			file, m.CAPFVersion, m.Backend, m.SchemaVersion, m.Backend, known)
	}
	var src dbdump.Source = a
	var files []backup.Entry
	fromFiles := hasFileKeys(a)
	dumpKeys, err := readKeyRecords(a)
	if err != nil {
		return err
	}
	switch {
	case toPG && fromFiles && len(dumpKeys) == 0 && g.kekFile == "" && dataGiven:
		// A PostgreSQL node without a KEK keeps its keys as files in its
		// data directory: restore them there.
		files = a.Files()
	case toPG && fromFiles && len(dumpKeys) == 0:
		// SQLite (or a PostgreSQL node without a KEK) into a cluster
		// database: seal the key files under the KEK.
		if g.kekFile == "" {
			return usagef("%s holds the CAPF key as a file; restoring it into PostgreSQL seals it under a key-encryption key: pass --kek-file FILE (made with: openssl rand -hex 32 > FILE; chmod 600 FILE), or --data DIR to keep them as that node's files (nothing was restored)", file)
		}
		k, err := kek.Load(g.kekFile)
		if err != nil {
			return err
		}
		recs, err := sealFileKeys(ctx, g, a, k)
		if err != nil {
			return err
		}
		if src, err = withTable(a, "keys", recs); err != nil {
			return err
		}
		for _, e := range a.Files() {
			if !isKeyMaterial(e.Name) {
				files = append(files, e)
			}
		}
	case !toPG && len(dumpKeys) > 0 && !fromFiles:
		// A cluster's sealed keys into a SQLite data directory: open them
		// and write them as its key files.
		if g.kekFile == "" {
			return usagef("%s holds the cluster's keys sealed under a key-encryption key; restoring into a SQLite data directory writes them as files: pass --kek-file FILE of the cluster (nothing was restored)", file)
		}
		k, err := kek.Load(g.kekFile)
		if err != nil {
			return err
		}
		ms, err := keys.NewService(recordStore(dumpKeys), k, nil).Load(ctx)
		if err != nil {
			return err
		}
		keyFiles, err := materialFiles(ms)
		if err != nil {
			return err
		}
		if src, err = withTable(a, "keys", nil); err != nil {
			return err
		}
		files = append(files, a.Files()...)
		return restoreSQLite(ctx, g, file, a, src, files, keyFiles, force)
	case toPG && len(dumpKeys) > 0 && g.kekFile != "":
		// The cluster's keys stay sealed; a KEK given is checked against
		// them first, so that nodes are not started with the wrong one.
		k, err := kek.Load(g.kekFile)
		if err != nil {
			return err
		}
		if _, err := keys.NewService(recordStore(dumpKeys), k, nil).Load(ctx); err != nil {
			return fmt.Errorf("%w (nothing was restored)", err)
		}
		files = a.Files()
	default:
		files = a.Files()
	}
	if toPG {
		return restorePostgres(ctx, g, file, a, src, files, force, dataGiven)
	}
	return restoreSQLite(ctx, g, file, a, src, files, nil, force)
}

// restoreSQLite restores into the data directory: it must be empty (or
// absent) unless force, and no server may hold its lock.
func restoreSQLite(ctx context.Context, g *globals, file string, a *backup.Archive, src dbdump.Source, files []backup.Entry, extra map[string][]byte, force bool) error {
	dir := g.dir()
	_, statErr := os.Stat(string(dir))
	created := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	ok := false
	defer func() {
		if !ok && created {
			_ = os.RemoveAll(string(dir)) // a directory this restore made
		}
	}()
	ents, err := os.ReadDir(string(dir))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if len(ents) > 0 && !force {
		return fault.Conflictf("the data directory %s is not empty: restore into an empty or new directory, or pass --force to replace its database and files (nothing was restored)", dir)
	}
	release, err := g.lockDataDir()
	if err != nil {
		return fmt.Errorf("%w (nothing was restored)", err)
	}
	defer release()
	if force {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(dir.DB() + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("restore: %w", err)
			}
		}
	}
	if err := store.Restore(ctx, g.storeOptions(store.Create), src, force); err != nil {
		return fmt.Errorf("restore %s: %w", file, err)
	}
	if err := closeOpenAttempts(ctx, g); err != nil {
		return err
	}
	n, err := writeFiles(string(dir), a, files, extra)
	if err != nil {
		return err
	}
	ok = true
	fmt.Fprintf(g.stdout, "restored %s (capf %s, %s, made %s) into %s: %d tables, %d files\n",
		file, a.Manifest.CAPFVersion, a.Manifest.Backend, a.Manifest.CreatedAt.Format("2006-01-02 15:04:05Z"), dir.DB(), len(src.Tables()), n)
	return nil
}

func restorePostgres(ctx context.Context, g *globals, file string, a *backup.Archive, src dbdump.Source, files []backup.Entry, force, dataGiven bool) error {
	if len(files) > 0 && !dataGiven {
		var keyFiles bool
		for _, e := range files {
			keyFiles = keyFiles || isKeyMaterial(e.Name)
		}
		if keyFiles {
			return usagef("%s holds this node's key files (a PostgreSQL node without a KEK): give --data DIR to restore them, or --kek-file to seal them into the database (nothing was restored)", file)
		}
		files = nil // trace files and capf.json need a data directory
	}
	if len(files) > 0 {
		if ents, err := os.ReadDir(g.dataDir); err == nil && len(ents) > 0 && !force {
			return fault.Conflictf("the data directory %s is not empty: give an empty one, or pass --force (nothing was restored)", g.dataDir)
		}
	}
	if err := store.Restore(ctx, g.storeOptions(store.Create), src, force); err != nil {
		return fmt.Errorf("restore %s: %w", file, err)
	}
	if err := closeOpenAttempts(ctx, g); err != nil {
		return err
	}
	n := 0
	if len(files) > 0 {
		if err := os.MkdirAll(g.dataDir, 0o700); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		var err error
		if n, err = writeFiles(g.dataDir, a, files, nil); err != nil {
			return err
		}
	}
	fmt.Fprintf(g.stdout, "restored %s (capf %s, %s, made %s) into %s: %d tables, %d files\n",
		file, a.Manifest.CAPFVersion, a.Manifest.Backend, a.Manifest.CreatedAt.Format("2006-01-02 15:04:05Z"),
		store.Describe(g.storeOptions(store.ReadWrite)), len(src.Tables()), n)
	return nil
}

// closeOpenAttempts fails the attempts that were open when the backup was
// taken, as a restart fails its own: their sessions are gone, and the
// nodes that held them are not in the restored registry, so nothing else
// would close them before they grow stale.
func closeOpenAttempts(ctx context.Context, g *globals) error {
	st, err := store.Open(ctx, g.storeOptions(store.ReadWrite))
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.FailStaleAttempts(ctx, device.StaleQuery{}, device.ReasonServerRestart)
	if err != nil {
		return fmt.Errorf("restore: close the attempts open at the backup: %w", err)
	}
	if n > 0 {
		fmt.Fprintf(g.stdout, "%d attempt(s) open when the backup was taken failed as interrupted\n", n)
	}
	return nil
}

// writeFiles writes the archive's files and extra (by relative path) into
// dir with their archived modes (keys 0600).
func writeFiles(dir string, a *backup.Archive, files []backup.Entry, extra map[string][]byte) (int, error) {
	n := 0
	write := func(rel string, b []byte, mode fs.FileMode) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if err := atomicfile.Write(p, b, mode.Perm(), false); err != nil {
			return fmt.Errorf("restore %s: %w", rel, err)
		}
		n++
		return nil
	}
	for _, e := range files {
		b, err := os.ReadFile(a.FilePath(e.Name))
		if err != nil {
			return n, fmt.Errorf("restore: %w", err)
		}
		mode := e.Mode
		if isKeyFile(e.Name) {
			mode = 0o600
		}
		if err := write(e.Name, b, mode); err != nil {
			return n, err
		}
	}
	rels := make([]string, 0, len(extra))
	for rel := range extra {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		mode := fs.FileMode(0o644)
		if isKeyFile(rel) {
			mode = 0o600
		}
		if err := write(rel, extra[rel], mode); err != nil {
			return n, err
		}
	}
	return n, nil
}

// hasFileKeys reports whether the archive holds a CAPF key file.
func hasFileKeys(a *backup.Archive) bool {
	for _, e := range a.Files() {
		if e.Name == datadir.CADir+"/"+ca.KeyFile {
			return true
		}
	}
	return false
}

// readKeyRecords reads the archive's keys table.
func readKeyRecords(a *backup.Archive) ([]keys.Record, error) {
	if !slices.Contains(a.Tables(), "keys") {
		return nil, nil
	}
	r, c, err := a.Open("keys")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h := r.Header()
	idx := map[string]int{}
	for _, col := range []string{"id", "kind", "chain", "sealed", "kek_id", "created_at"} {
		if idx[col] = h.Index(col); idx[col] < 0 {
			return nil, fault.Invalidf("the archive's keys table has no column %s", col)
		}
	}
	var out []keys.Record
	for {
		row, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		str := func(c string) string { s, _ := row[idx[c]].(string); return s }
		byt := func(c string) []byte { b, _ := row[idx[c]].([]byte); return b }
		rec := keys.Record{ID: str("id"), Kind: keys.Kind(str("kind")), Chain: byt("chain"), Sealed: byt("sealed"), KEKID: str("kek_id")}
		if n, ok := row[idx["created_at"]].(int64); ok {
			rec.CreatedAt = time.UnixMicro(n).UTC()
		}
		out = append(out, rec)
	}
}

// memKeys is a keys.Store over records in memory: ListKeys returns
// them, CreateKeys keeps what it is given. It lets keys.Service seal and
// open keys for an archive without a database.
type memKeys struct{ recs []keys.Record }

func recordStore(recs []keys.Record) *memKeys { return &memKeys{recs: recs} }

func (s *memKeys) ListKeys(context.Context) ([]keys.Record, error) { return s.recs, nil }

func (s *memKeys) CreateKeys(_ context.Context, recs []keys.Record, _ device.AuditEvent) error {
	if len(s.recs) > 0 {
		return fault.Conflictf("keys exist")
	}
	s.recs = recs
	return nil
}

func (s *memKeys) ResealKeys(context.Context, string, []keys.Record, device.AuditEvent) error {
	return fault.Invalidf("not supported")
}

func (s *memKeys) RemovePrivateKey(context.Context, string, []byte, device.AuditEvent) error {
	return fault.Invalidf("not supported")
}

// sealFileKeys reads the archive's key files as `cluster init --data`
// would read a data directory, and seals them under k.
func sealFileKeys(ctx context.Context, g *globals, a *backup.Archive, k *kek.KEK) ([]keys.Record, error) {
	tmp, err := os.MkdirTemp("", "capf-restore-keys-*")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	var cfgFiles []backup.Entry
	for _, e := range a.Files() {
		if isKeyMaterial(e.Name) || e.Name == config.FileName {
			cfgFiles = append(cfgFiles, e)
		}
	}
	if _, err := writeFiles(tmp, a, cfgFiles, nil); err != nil {
		return nil, err
	}
	g2 := *g
	g2.dataDir = tmp
	cfg, err := config.Load(tmp)
	if err != nil {
		return nil, err
	}
	ms, err := clusterMaterials(&g2, cfg, clusterInitFlags{}, true)
	if err != nil {
		return nil, err
	}
	plain := make([]keys.Material, len(ms))
	for i, m := range ms {
		plain[i] = m.Material
	}
	mem := recordStore(nil)
	if err := keys.NewService(mem, k, nil).Init(ctx, plain, g.actor(), "restored from a backup"); err != nil {
		return nil, err
	}
	return mem.recs, nil
}

// materialFiles writes opened keys as the files of a data directory.
func materialFiles(ms map[string]keys.Material) (map[string][]byte, error) {
	out := map[string][]byte{}
	put := func(certRel, keyRel string, m keys.Material) error {
		var cb []byte
		for _, c := range m.Chain {
			cb = append(cb, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		out[certRel] = cb
		if m.Key == nil {
			return nil
		}
		kb, err := x509.MarshalPKCS8PrivateKey(m.Key)
		if err != nil {
			return fmt.Errorf("encode key %s: %w", m.ID, err)
		}
		out[keyRel] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
		return nil
	}
	capf, ok := ms[keys.IDCAPF]
	if !ok {
		return nil, fault.Invalidf("the archive's keys hold no CAPF key")
	}
	if err := put(datadir.CADir+"/"+ca.CertFile, datadir.CADir+"/"+ca.KeyFile, capf); err != nil {
		return nil, err
	}
	for id, m := range ms { // the CA set's other keys (ADR 0017)
		if dir, ok := caKeyDir(id); ok && id != keys.IDCAPF {
			if iid, ok := strings.CutPrefix(id, caset.IssuingKeyPrefix); ok {
				// In place or former, an issuing CA's key files go to
				// DATA/ca/issuing-ID, where the node finds either.
				dir = issuingCADir + "-" + iid
			}
			if err := put(datadir.CADir+"/"+dir+"/"+ca.CertFile, datadir.CADir+"/"+dir+"/"+ca.KeyFile, m); err != nil {
				return nil, err
			}
		}
	}
	for id, name := range map[string]string{keys.IDSASTPrimary: trust.Primary, keys.IDSASTBackup: trust.Backup} {
		if m, ok := ms[id]; ok {
			if err := put(datadir.TrustDir+"/sast-"+name+".pem", datadir.TrustDir+"/sast-"+name+".key", m); err != nil {
				return nil, err
			}
		}
	}
	if m, ok := ms[keys.IDAdminCA]; ok {
		if err := put(admintls.DirName+"/"+admintls.CAFile, admintls.DirName+"/"+admintls.CAKeyFile, m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withTable returns src with table replaced by recs (none: left out).
func withTable(a *backup.Archive, table string, recs []keys.Record) (dbdump.Source, error) {
	o := &overlay{Archive: a, table: table}
	if recs == nil {
		return o, nil
	}
	var buf bytes.Buffer
	w, err := dbdump.NewWriter(&buf, dbdump.Header{Table: table, Columns: []dbdump.Column{
		{Name: "id", Type: dbdump.Text}, {Name: "kind", Type: dbdump.Text}, {Name: "chain", Type: dbdump.Bytes},
		{Name: "sealed", Type: dbdump.Bytes}, {Name: "kek_id", Type: dbdump.Text}, {Name: "created_at", Type: dbdump.Int},
	}})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if err := w.Write([]any{r.ID, string(r.Kind), r.Chain, r.Sealed, r.KEKID, r.CreatedAt.UnixMicro()}); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	o.data = buf.Bytes()
	return o, nil
}

// overlay is an archive with one table replaced or left out.
type overlay struct {
	*backup.Archive
	table string
	data  []byte // nil: the table is left out
}

func (o *overlay) Tables() []string {
	ts := slices.DeleteFunc(slices.Clone(o.Archive.Tables()), func(t string) bool { return t == o.table })
	if o.data != nil {
		ts = append(ts, o.table)
	}
	return ts
}

func (o *overlay) Open(table string) (*dbdump.Reader, io.Closer, error) {
	if table != o.table {
		return o.Archive.Open(table)
	}
	r, err := dbdump.NewReader(bytes.NewReader(o.data))
	return r, io.NopCloser(nil), err
}
