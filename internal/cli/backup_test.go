package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/backup"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestRestoreRefuses: restore of a damaged, cut or foreign file, into a
// directory that is not empty or in use, or of an archive from another
// schema, exits non-zero with a message that says why, and the target is
// left exactly as it was (a new one not even created).
func TestRestoreRefuses(t *testing.T) {
	data := initData(t)
	if _, errOut, code := run(t, data, "device", "add", "SEP0011AABBCCDD"); code != ExitOK {
		t.Fatal(errOut)
	}
	archive := filepath.Join(t.TempDir(), "b.tar")
	if out, errOut, code := run(t, data, "backup", "--out", archive); code != ExitOK {
		t.Fatalf("backup: %d %s%s", code, out, errOut)
	}
	good, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	i := bytes.Index(flipped, []byte("SEP0011AABBCCDD"))
	flipped[i] = 'X'
	random := make([]byte, 2048)
	rand.Read(random)
	var foreign bytes.Buffer
	tw := tar.NewWriter(&foreign)
	tw.WriteHeader(&tar.Header{Name: "notes.txt", Size: 2, Mode: 0o644})
	tw.Write([]byte("hi"))
	tw.Close()
	otherSchema := retar(t, good, func(m []byte) []byte {
		return bytes.Replace(m, []byte(`"schema_version": `), []byte(`"schema_version": 9`), 1)
	})

	inUse := filepath.Join(t.TempDir(), "in-use")
	os.Mkdir(inUse, 0o700)
	lock, err := os.OpenFile(filepath.Join(inUse, "serve.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		data   []byte
		target string // "" for a new directory
		force  bool
		code   int
		want   string
	}{
		{"fail/corrupted", flipped, "", false, ExitUsage, "is corrupted: db/devices.jsonl does not match its SHA-256 in the manifest"},
		{"fail/truncated", good[:len(good)*2/3], "", false, ExitUsage, "is truncated"},
		{"fail/foreign-random", random, "", false, ExitUsage, "is not a capf backup archive"},
		{"fail/foreign-tar", foreign.Bytes(), "", false, ExitUsage, `is not a capf backup archive: its first entry is "notes.txt"`},
		{"fail/other-schema", otherSchema, "", false, ExitUsage, "restore it with that capf version"},
		{"fail/not-empty", good, data, false, ExitConflict, "is not empty"},
		{"fail/in-use", good, inUse, true, ExitConflict, "in use by another capf serve"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "archive.tar")
			if err := os.WriteFile(file, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			target := c.target
			if target == "" {
				target = filepath.Join(t.TempDir(), "new")
			}
			before := snapshot(t, target)
			args := []string{"restore", file}
			if c.force {
				args = append(args, "--force")
			}
			out, errOut, code := run(t, target, args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("restore: exit %d %s%s; want %d and %q", code, out, errOut, c.code, c.want)
			}
			if after := snapshot(t, target); after != before {
				t.Errorf("the refused restore changed %s:\nbefore %s\nafter  %s", target, before, after)
			}
		})
	}

	t.Run("ok/force", func(t *testing.T) {
		other := initData(t)
		if out, errOut, code := run(t, other, "restore", archive, "--force"); code != ExitOK {
			t.Fatalf("restore --force: %d %s%s", code, out, errOut)
		}
		if out, _, _ := run(t, other, "device", "list"); !strings.Contains(out, "SEP0011AABBCCDD") {
			t.Errorf("after restore --force the device is missing:\n%s", out)
		}
	})
}

// snapshot describes a directory tree: each file's path, mode and
// content; "absent" when it does not exist.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String())
		if d.Type().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + string(c))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRestorePostgresRefuses: a database a node serves is refused even
// with --force, and nothing in it changes.
func TestRestorePostgresRefuses(t *testing.T) {
	data := initData(t)
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	if out, errOut, code := run(t, data, "backup", "--out", archive); code != ExitOK {
		t.Fatalf("backup: %d %s%s", code, out, errOut)
	}
	dsn := pgtest.DSN(t)
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), []string{"--db", dsn, "--data", t.TempDir(), "device", "add", "SEPFFFF00001111"}, &out, &errOut); code != ExitOK {
		t.Fatalf("device add: %d %s", code, errOut.String())
	}
	pgtest.Exec(t, "INSERT INTO "+schemaOf(t, dsn)+".nodes (id, started_at, last_seen, expires_at) VALUES ('n1', 0, 0, 9000000000000000)")
	out.Reset()
	errOut.Reset()
	kek := filepath.Join(t.TempDir(), "kek")
	os.WriteFile(kek, []byte(strings.Repeat("ab", 31)+"cd\n"), 0o600)
	code := Run(t.Context(), []string{"--db", dsn, "--kek-file", kek, "restore", archive, "--force"}, &out, &errOut)
	if code != ExitConflict || !strings.Contains(errOut.String(), "is in use: 1 capf serve node(s) are running on it") {
		t.Fatalf("restore into a served database: exit %d %s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	Run(t.Context(), []string{"--db", dsn, "--data", t.TempDir(), "device", "list"}, &out, &errOut)
	if !strings.Contains(out.String(), "SEPFFFF00001111") || !strings.Contains(out.String(), "1 of 1 devices") {
		t.Errorf("the refused restore changed the database:\n%s", out.String())
	}
}

// schemaOf returns the search_path of a pgtest DSN.
func schemaOf(t *testing.T, dsn string) string {
	t.Helper()
	_, after, ok := strings.Cut(dsn, "search_path=")
	if !ok {
		t.Fatalf("no search_path in the test DSN")
	}
	s, _, _ := strings.Cut(after, "&")
	return s
}

// retar rewrites a tar archive with its first entry (the manifest)
// changed by edit, every other entry as it was.
func retar(t *testing.T, in []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(in))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for first := true; ; first = false {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		if first {
			b = edit(b)
		}
		h.Size = int64(len(b))
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	return out.Bytes()
}

type failingAudit struct{}

func (failingAudit) AppendAudit(context.Context, device.AuditEvent) error {
	return errors.New("disk full")
}

// TestWebBackup: the web UI's backup is a valid archive, audited (with its
// SHA-256) before it is handed out; one whose audit event cannot be
// written is refused.
func TestWebBackup(t *testing.T) {
	data := initData(t)
	o := store.Options{DataDir: data, Mode: store.ReadWrite}
	st, err := store.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wb := &webBackups{o: o, audit: st}
	name, size, body, err := wb.Backup(t.Context(), device.Actor{Kind: device.ActorWeb, Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || int64(len(b)) != size || !strings.HasSuffix(name, ".tar.gz") {
		t.Fatalf("%s: %d bytes of %d, %v", name, len(b), size, err)
	}
	file := filepath.Join(t.TempDir(), name)
	os.WriteFile(file, b, 0o600)
	a, err := backup.Open(file, t.TempDir())
	if err != nil || !a.Manifest.PrivateKeys {
		t.Fatalf("the downloaded archive: %v, %+v", err, a)
	}
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: "backup"})
	if err != nil || len(evs) != 1 || evs[0].Action != ActionBackupDownload || !strings.Contains(evs[0].Detail, fmt.Sprintf("%x", sha256.Sum256(b))) {
		t.Fatalf("audit %+v %v; want one %s event with the archive's SHA-256", evs, err, ActionBackupDownload)
	}
	if _, _, _, err := (&webBackups{o: o, audit: failingAudit{}}).Backup(t.Context(), device.Actor{Kind: device.ActorWeb, Name: "alice"}); err == nil || !strings.Contains(err.Error(), "audit the backup download") {
		t.Fatalf("a backup whose audit failed: %v", err)
	}
}

// TestRestoreClosesOpenAttempts: an attempt open when the backup was taken
// is failed as interrupted by the restore, so its device is not blocked
// until the attempt grows stale.
func TestRestoreClosesOpenAttempts(t *testing.T) {
	data := initData(t)
	if _, errOut, code := run(t, data, "device", "add", "SEP0011AABBCCDD", "--operation", "install"); code != ExitOK {
		t.Fatal(errOut)
	}
	st, err := store.Open(t.Context(), store.Options{DataDir: data, Mode: store.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartAttempt(t.Context(), device.Attempt{Device: "SEP0011AABBCCDD", Operation: device.OpInstall, Node: "gone", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	archive := filepath.Join(t.TempDir(), "b.tar")
	if out, errOut, code := run(t, data, "backup", "--out", archive); code != ExitOK {
		t.Fatalf("backup: %d %s%s", code, out, errOut)
	}
	restored := filepath.Join(t.TempDir(), "r")
	out, errOut, code := run(t, restored, "restore", archive)
	if code != ExitOK || !strings.Contains(out, "1 attempt(s) open when the backup was taken failed as interrupted") {
		t.Fatalf("restore: %d %s%s", code, out, errOut)
	}
	st, err = store.Open(t.Context(), store.Options{DataDir: restored, Mode: store.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountOpenAttempts(t.Context()); err != nil || n != 0 {
		t.Fatalf("open attempts after the restore: %d %v", n, err)
	}
}
