package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestKEKNeedsPostgres: a KEK with the SQLite database of a data directory
// is a usage error for serve (which then creates nothing), cluster init
// and kek rotate; SQLite nodes keep their keys as files.
func TestKEKNeedsPostgres(t *testing.T) {
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek")
	if _, err := kek.Generate(kekFile, nil); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"serve", []string{"--kek-file", kekFile, "serve", "--listen", "127.0.0.1:0", "--admin-listen", ""}, "needs a PostgreSQL --db"},
		{"cluster-init", []string{"--kek-file", kekFile, "cluster", "init"}, "cluster init needs a PostgreSQL --db"},
		{"cluster-init-mysql", []string{"--db", "mysql://x@y/z", "--kek-file", kekFile, "cluster", "init"}, "want a postgres:// URL"},
		{"kek-rotate", []string{"--kek-file", kekFile, "kek", "rotate", "--new-kek-file", filepath.Join(dir, "k2"), "--generate"}, "needs a PostgreSQL --db"},
		{"init", []string{"--kek-file", kekFile, "init"}, "needs a PostgreSQL --db"},
		{"kek-rotate-no-new", []string{"--kek-file", kekFile, "kek", "rotate"}, "--new-kek-file is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := run(t, data, c.args...)
			if code != ExitUsage || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, %q; want %d saying %q", code, errOut, ExitUsage, c.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data directory after the refusal: %v, want none", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "k2")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a new KEK was written: %v", err)
			}
		})
	}
}

// TestInitWithoutKEKOnClusterDatabase: `capf init` on a database that
// holds a cluster's keys, without the KEK, is refused before it creates
// anything, as serve is: it used to make the node a CA of its own, which
// would present another CAPF certificate than the cluster's nodes. With
// the KEK it keeps the cluster's. The trust and ca commands without the
// KEK are refused as well (trust used to make SAST signers of the node's
// own, which phones trusting the cluster's would not accept).
func TestInitWithoutKEKOnClusterDatabase(t *testing.T) {
	t.Setenv("CAPF_DB", "")
	t.Setenv("CAPF_KEK_FILE", "")
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek")
	var initOut, initErr strings.Builder
	if code := Run(t.Context(), []string{"--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"}, &initOut, &initErr); code != ExitOK {
		t.Fatalf("cluster init: exit %d\n%s%s", code, initOut.String(), initErr.String())
	}
	data := filepath.Join(dir, "admin-host")
	out, errOut, code := run(t, data, "--db", dsn, "init")
	if code != ExitUsage || !strings.Contains(errOut, "the database holds this cluster's keys") || !strings.Contains(errOut, "--kek-file") {
		t.Fatalf("init without the KEK: exit %d; want refused naming --kek-file\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused init left %s: %v", data, err)
	}
	out, errOut, code = run(t, data, "--db", dsn, "--kek-file", kekFile, "init")
	if code != ExitOK || !strings.Contains(out, "the database (cluster key") {
		t.Fatalf("init with the KEK: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "ca")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("init with the KEK made a CA directory of its own: %v", err)
	}
	// The key commands of that node, without the KEK: refused, rather
	// than making SAST signers of the node's own (trust) or looking for a
	// CA in the data directory (ca).
	for _, args := range [][]string{{"trust", "signers"}, {"trust", "build", "--out", filepath.Join(dir, "ITLFile.tlv")}, {"ca", "show"}} {
		out, errOut, code := run(t, data, append([]string{"--db", dsn}, args...)...)
		if code != ExitUsage || !strings.Contains(errOut, "--kek-file") {
			t.Errorf("%v without the KEK: exit %d; want refused naming --kek-file\n%s%s", args, code, out, errOut)
		}
	}
	for _, sub := range []string{"trust", "ca"} {
		if _, err := os.Stat(filepath.Join(data, sub)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused command made %s/: %v", sub, err)
		}
	}
}
