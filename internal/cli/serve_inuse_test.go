package cli

import (
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/store"
)

// TestNodeInUse: the node settings a serve applied name the flag or the
// environment variable that set them, never show the database password,
// and leave the fleet parameters out.
func TestNodeInUse(t *testing.T) {
	cfg := config.Defaults()
	cfg.Listen = ":3900"
	const db = "postgres://capf:s3cret@db.example:5432/capf"
	tests := []struct {
		name, dbFrom, wantDBSource string
	}{
		{"env", store.EnvDB, "the CAPF_DB environment variable"},
		{"flag", "--db", "the --db flag"},
		{"file", "/data/capf.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := nodeInUse(cfg, map[string]any{"listen": ":3900"}, db, tt.dbFrom)
			if err != nil {
				t.Fatal(err)
			}
			if got := in["listen"]; got.Value != ":3900" || got.Source != "the --listen flag" {
				t.Errorf("listen %+v", got)
			}
			if got := in["log_level"]; got.Source != "" || got.Value != cfg.LogLevel {
				t.Errorf("log_level %+v", got)
			}
			if got := in["database"]; got.Source != tt.wantDBSource || strings.Contains(got.Value.(string), "s3cret") {
				t.Errorf("database %+v", got)
			}
			for _, k := range config.FleetKeys {
				if _, ok := in[k]; ok {
					t.Errorf("fleet parameter %s listed", k)
				}
			}
		})
	}
}
