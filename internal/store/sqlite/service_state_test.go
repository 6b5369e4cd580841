package sqlite

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestPeekServiceState(t *testing.T) {
	ctx := t.Context()
	t.Run("no-database", func(t *testing.T) {
		dir := t.TempDir()
		st, err := PeekServiceState(ctx, filepath.Join(dir, "capf.db"))
		if err != nil || !st.Active {
			t.Fatalf("PeekServiceState without a database = %+v, %v; want active", st, err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Fatalf("PeekServiceState created %v", names)
		}
	})
	t.Run("schema-without-state", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE devices (name TEXT)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		st, err := PeekServiceState(ctx, path)
		if err != nil || !st.Active {
			t.Fatalf("PeekServiceState of a schema without the table = %+v, %v; want active", st, err)
		}
	})
	t.Run("deactivated", func(t *testing.T) {
		s, path := openTemp(t)
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := s.SetServiceState(ctx, system.ServiceState{Active: false, ChangedAt: at, ChangedBy: "cli:alice"},
			device.AuditEvent{At: at, Action: "service.deactivate", Target: "service"}); err != nil {
			t.Fatal(err)
		}
		want := system.ServiceState{Active: false, ChangedAt: at, ChangedBy: "cli:alice"}
		// While the store is open (a -wal file beside the database) and
		// after it closed (none): the same state, and no new file.
		if st, err := PeekServiceState(ctx, path); err != nil || st != want {
			t.Fatalf("PeekServiceState with the store open = %+v, %v; want %+v", st, err, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		before := dirNames(t, filepath.Dir(path))
		if st, err := PeekServiceState(ctx, path); err != nil || st != want {
			t.Fatalf("PeekServiceState after Close = %+v, %v; want %+v", st, err, want)
		}
		if after := dirNames(t, filepath.Dir(path)); !slices.Equal(before, after) {
			t.Fatalf("PeekServiceState changed the directory: %v → %v", before, after)
		}
	})
}
