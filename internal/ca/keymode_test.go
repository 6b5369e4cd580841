package ca

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestLoadRefusesKeyReadableByOthers(t *testing.T) {
	opts := testOptions(t, ECP256)
	if _, _, err := LoadOrCreate(opts); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(opts.Dir, KeyFile)
	tests := []struct {
		name    string
		mode    os.FileMode
		wantErr bool
	}{
		{name: "ok/0600", mode: 0o600},
		{name: "ok/0400", mode: 0o400},
		{name: "fail/0644-world-readable", mode: 0o644, wantErr: true},
		{name: "fail/0640-group-readable", mode: 0o640, wantErr: true},
		{name: "fail/0604-other-readable", mode: 0o604, wantErr: true},
		{name: "fail/0620-group-writable", mode: 0o620, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Chmod(keyPath, tt.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(keyPath, 0o600) })
			for _, load := range []struct {
				name string
				f    func() error
			}{
				{"Load", func() error { _, err := Load(opts); return err }},
				{"LoadOrCreate", func() error { _, _, err := LoadOrCreate(opts); return err }},
			} {
				err := load.f()
				if !tt.wantErr {
					if err != nil {
						t.Errorf("%s: %v", load.name, err)
					}
					continue
				}
				if !errors.Is(err, fault.ErrInvalid) {
					t.Fatalf("%s = %v, want an invalid error", load.name, err)
				}
				for _, want := range []string{keyPath, "chmod 600"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: error %q does not name %q", load.name, err, want)
					}
				}
			}
			// Refusing changes nothing.
			if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != tt.mode {
				t.Errorf("key mode now %v (%v), want %04o unchanged", fi.Mode().Perm(), err, tt.mode)
			}
		})
	}
}
