package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/kek"
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
