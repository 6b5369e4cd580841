package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMigrationImportedKeys upgrades a database from before the import was
// marked per key: one whose capf.json was imported is marked for the nine
// fleet keys of that version (so the first node of this version imports
// only the keys that moved since), one not yet imported for none.
func TestMigrationImportedKeys(t *testing.T) {
	nine := []string{"auth_string_backoff", "auth_string_max_failures", "default_key", "key_generation_max_attempts",
		"key_generation_max_time", "maintenance_time_zone", "maintenance_windows", "message_timeout", "retry_delay"}
	for _, tc := range []struct {
		name     string
		imported int
		want     []string
	}{
		{"imported", 1, nine},
		{"not-imported", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "capf.db")
			db, err := sql.Open("sqlite", dsn(path, 5*time.Second, true))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := loadMigrations()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,
				name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range ms {
				if strings.Contains(m.name, "fleet_imported_keys") {
					found = true
					break
				}
				if err := applyMigration(ctx, db, m, len(ms)); err != nil {
					t.Fatal(err)
				}
			}
			if !found {
				t.Fatal("no fleet_imported_keys migration")
			}
			if _, err := db.ExecContext(ctx, `UPDATE fleet_parameters_state SET imported = ?, version = 3 WHERE id = 1`, tc.imported); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fp, err := s.FleetParameters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fp.Imported != (tc.imported == 1) || fp.Version != 3 || !reflect.DeepEqual(fp.ImportedKeys, tc.want) && len(fp.ImportedKeys)+len(tc.want) > 0 {
				t.Fatalf("after the migration: %+v; want imported keys %v", fp, tc.want)
			}
		})
	}
}
