package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/dbdump"
	"github.com/capf-server/capf/internal/fault"
)

// makeArchive writes an archive with one table of rows and one file to
// dir/name and returns its path.
func makeArchive(t *testing.T, dir, name string, rows int) string {
	t.Helper()
	stage := t.TempDir()
	b := NewBuilder(stage)
	w, err := b.Sink()(dbdump.Header{Table: "devices", Columns: []dbdump.Column{{Name: "name", Type: dbdump.Text}, {Name: "n", Type: dbdump.Int}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rows; i++ {
		if err := w.Write([]any{strings.Repeat("SEP0011223344", 3), int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "capf.key")
	if err := os.WriteFile(src, []byte("-----BEGIN PRIVATE KEY-----\nnot really\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFile("ca/capf.key", src); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	if _, err := b.Write(out, Manifest{CAPFVersion: "test", Backend: "sqlite", SchemaVersion: 3, CreatedAt: time.Unix(1e9, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"b.tar", "b.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			path := makeArchive(t, t.TempDir(), name, 1000)
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("archive %v mode %v, want 0600", err, fi.Mode())
			}
			a, err := Open(path, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if a.Manifest.SchemaVersion != 3 || a.Manifest.Backend != "sqlite" || len(a.Manifest.Entries) != 2 {
				t.Fatalf("manifest %+v", a.Manifest)
			}
			if got := a.Tables(); len(got) != 1 || got[0] != "devices" {
				t.Fatalf("tables %v", got)
			}
			r, c, err := a.Open("devices")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			n := 0
			for {
				row, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if row[1].(int64) != int64(n) {
					t.Fatalf("row %d: %v", n, row)
				}
				n++
			}
			if n != 1000 || a.Manifest.Entries[0].Rows != 1000 {
				t.Fatalf("%d rows read, manifest says %d", n, a.Manifest.Entries[0].Rows)
			}
			if f := a.Files(); len(f) != 1 || f[0].Name != "ca/capf.key" || f[0].Mode != 0o600 {
				t.Fatalf("files %+v", f)
			}
		})
	}
}

// tarOf writes entries (name, content) as a tar.
func tarOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Size: int64(len(e[1])), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestOpenRefuses: a damaged, cut or foreign file is refused as Invalid
// with a message that says which, and nothing is staged but what Open
// wrote into its own staging directory.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	good := makeArchive(t, dir, "good.tar", 2000)
	goodGz := makeArchive(t, dir, "good.tar.gz", 2000)
	plain, _ := os.ReadFile(good)
	zipped, _ := os.ReadFile(goodGz)
	random := make([]byte, 4096)
	rand.Read(random)
	manifest := func(b []byte) string {
		tr := tar.NewReader(bytes.NewReader(b))
		tr.Next()
		m, _ := io.ReadAll(tr)
		return string(m)
	}(plain)
	// An entry's content changed in the middle, size kept.
	flipped := bytes.Clone(plain)
	i := bytes.Index(flipped, []byte("SEP0011223344"))
	i = bytes.Index(flipped[i+50000:], []byte("SEP")) + i + 50000
	flipped[i] = 'X'
	flippedGz := bytes.Clone(zipped)
	flippedGz[len(flippedGz)/2] ^= 0xff
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"fail/corrupted-entry", flipped, "is corrupted: db/devices.jsonl does not match its SHA-256"},
		{"fail/corrupted-gzip", flippedGz, "is corrupted"},
		{"fail/truncated-half", plain[:len(plain)/2], "is truncated"},
		{"fail/truncated-gzip", zipped[:len(zipped)/2], "is truncated"},
		{"fail/truncated-entry-missing", tarOf(t, [2]string{ManifestName, manifest}), "is truncated: 2 of its entries are missing"},
		{"fail/foreign-random", random, "is not a capf backup archive"},
		{"fail/foreign-empty", nil, "is not a capf backup archive: it is empty"},
		{"fail/foreign-tar", tarOf(t, [2]string{"etc/passwd", "root:x:0:0"}), `is not a capf backup archive: its first entry is "etc/passwd"`},
		{"fail/foreign-tar-gz", gz(t, tarOf(t, [2]string{"README", "hello"})), "is not a capf backup archive"},
		{"fail/foreign-manifest", tarOf(t, [2]string{ManifestName, `{"format":"other"}`}), "its manifest is not a capf-backup manifest"},
		{"fail/newer-format", tarOf(t, [2]string{ManifestName, `{"format":"capf-backup","format_version":99}`}), "format version 99"},
		{"fail/unlisted-entry", tarOf(t, [2]string{ManifestName, `{"format":"capf-backup","format_version":1}`}, [2]string{"db/x.jsonl", "{}"}), `holds "db/x.jsonl", which its manifest does not list`},
		{"fail/escaping-name", tarOf(t, [2]string{ManifestName, `{"format":"capf-backup","format_version":1,"entries":[{"name":"files/../../etc/passwd"}]}`}), "is corrupted: its manifest lists an entry name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "archive")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open: %v; want %q", err, c.want)
			}
			if fault.KindOf(err) != fault.Invalid {
				t.Errorf("kind %v, want Invalid", fault.KindOf(err))
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "none.tar"), t.TempDir())
	if fault.KindOf(err) != fault.NotFound {
		t.Fatalf("%v; want NotFound", err)
	}
}
