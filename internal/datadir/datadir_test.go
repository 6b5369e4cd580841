package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestInitialised(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // makes dir (or not)
		wantKind fault.Kind                     // -1: nil error
		wantMsg  string
	}{
		{"fail/missing", func(t *testing.T, dir string) {}, fault.NotFound, "run `capf serve` (or `capf init`) there first, or pass --data"},
		{"fail/empty", func(t *testing.T, dir string) { mkdir(t, dir) }, fault.NotFound, "no CAPF data in"},
		{"fail/config-only", func(t *testing.T, dir string) { mkdir(t, dir); touch(t, filepath.Join(dir, "capf.json")) }, fault.NotFound, "no CAPF data in"},
		{"fail/not-a-directory", func(t *testing.T, dir string) { touch(t, dir) }, fault.Invalid, "is not a directory"},
		{"ok/database", func(t *testing.T, dir string) { mkdir(t, dir); touch(t, filepath.Join(dir, "capf.db")) }, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "capf-data")
			tt.setup(t, dir)
			err := Dir(dir).Initialised()
			if tt.wantKind == -1 {
				if err != nil {
					t.Fatalf("Initialised: %v", err)
				}
				return
			}
			if err == nil || fault.KindOf(err) != tt.wantKind || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Initialised = %v (kind %v), want %v containing %q", err, fault.KindOf(err), tt.wantKind, tt.wantMsg)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	d := Dir("/srv/capf")
	for _, tt := range []struct{ got, want string }{
		{d.DB(), "/srv/capf/capf.db"}, {d.Config(), "/srv/capf/capf.json"}, {d.CA(), "/srv/capf/ca"},
		{d.CACert(), "/srv/capf/ca/capf.pem"}, {d.CAKey(), "/srv/capf/ca/capf.key"}, {d.Trace(), "/srv/capf/trace"},
		{d.Phones(), "/srv/capf/phones"}, {d.Lock(), "/srv/capf/serve.lock"},
	} {
		if tt.got != tt.want {
			t.Errorf("path %q, want %q", tt.got, tt.want)
		}
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
