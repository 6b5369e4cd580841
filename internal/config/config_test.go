package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestDefaultsAreValid(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParamsCoverEveryKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteIfMissing(dir, Defaults()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	for _, p := range Params {
		if !strings.Contains(string(b), `"`+p.Key+`"`) {
			t.Errorf("param %q has help text but is not in the file", p.Key)
		}
	}
	if n := strings.Count(string(b), `": `); n != len(Params) {
		t.Errorf("file has %d keys, Params lists %d", n, len(Params))
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr []string // substrings; empty means success
	}{
		{"ok/missing-file", "", nil},
		{"ok/partial", `{"certificate_validity_days": 365, "key_generation_max_time": "45m"}`, nil},
		{"fail/unknown-key", `{"validity": 5}`, []string{`unknown field "validity"`}},
		{"fail/all-problems-at-once", `{"certificate_validity_days": 0, "tls_profile": "old", "key_generation_max_attempts": 0}`,
			[]string{"certificate_validity_days 0", `tls_profile "old"`, "key_generation_max_attempts 0"}},
		{"fail/legacy-with-ec", `{"tls_profile": "legacy", "capf_key": "ec256"}`, []string{"needs an RSA CAPF key"}},
		{"fail/bad-duration", `{"message_timeout": "soon"}`, []string{"message_timeout"}},
		{"fail/trailing", `{} {}`, []string{"data after"}},
		{"ok/max-connections", `{"max_connections": 5000}`, nil},
		{"ok/max-connections-derived", `{"max_connections": 0}`, nil},
		{"fail/max-connections-negative", `{"max_connections": -1}`, []string{"max_connections -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(dir)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load = %+v, want error", c)
			}
			if !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("error kind = %v, want invalid", fault.KindOf(err))
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}
