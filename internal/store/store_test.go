package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/sqlite"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		db       string
		postgres bool
		ok       bool
	}{
		{"", false, true},
		{"postgres://capf@db/capf", true, true},
		{"postgresql://capf@db/capf", true, true},
		{"POSTGRES://capf@db/capf", true, true},
		{"mysql://capf@db/capf", false, false},
		{"/var/lib/capf/capf.db", false, false},
		{"host=db user=capf", false, false},
	}
	for _, c := range cases {
		if got := IsPostgres(c.db); got != c.postgres {
			t.Errorf("IsPostgres(%q) = %v, want %v", c.db, got, c.postgres)
		}
		err := Check(c.db)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q) = %v, want ok %v", c.db, err, c.ok)
		}
		if err != nil && fault.KindOf(err) != fault.Invalid {
			t.Errorf("Check(%q): kind %v, want Invalid", c.db, fault.KindOf(err))
		}
	}
	if err := Check("mysql://capf:s3cret@db/capf"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Check of a URL with a password: %v, want an error without it", err)
	}
}

// TestOpenSQLite: the SQLite branch keeps SQLite's notions: a data
// directory without capf.db is not initialised (NotFound, nothing
// created) unless the caller creates; read-only opens create nothing.
func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	for _, m := range []Mode{ReadWrite, ReadOnly} {
		_, err := Open(t.Context(), Options{DataDir: dir, Mode: m})
		if fault.KindOf(err) != fault.NotFound {
			t.Errorf("mode %d on an empty directory: %v, want NotFound", m, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "capf.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("capf.db after refused opens: %v", err)
	}
	st, err := Open(t.Context(), Options{DataDir: dir, Mode: Create})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*sqlite.Store); !ok {
		t.Errorf("Open without --db = %T, want *sqlite.Store", st)
	}
	if err := st.CreateDevice(t.Context(), device.Device{Name: "SEP001122334455"}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ro, err := Open(t.Context(), Options{DataDir: dir, Mode: ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.GetDevice(t.Context(), "SEP001122334455"); err != nil {
		t.Error(err)
	}
	if err := ro.CreateDevice(t.Context(), device.Device{Name: "SEP001122334466"}, device.AuditEvent{}); err == nil {
		t.Error("a write through a read-only store succeeded")
	}
	if got, want := Describe(Options{DataDir: dir}), filepath.Join(dir, "capf.db"); got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	if err := Initialised(Options{DataDir: dir}); err != nil {
		t.Errorf("Initialised: %v", err)
	}
}

// TestOpenPostgres: a postgres URL opens PostgreSQL in every mode, needs
// no data directory, and the activation peek reads it without migrating.
func TestOpenPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	nowhere := filepath.Join(t.TempDir(), "none")
	st0, err := PeekServiceState(t.Context(), Options{DB: dsn, DataDir: nowhere})
	if err != nil || !st0.Active {
		t.Fatalf("peek of an empty database = %+v, %v; want active", st0, err)
	}
	if err := Initialised(Options{DB: dsn, DataDir: nowhere}); err != nil {
		t.Errorf("Initialised: %v", err)
	}
	for _, m := range []Mode{ReadWrite, ReadOnly, Create} {
		st, err := Open(t.Context(), Options{DB: dsn, DataDir: nowhere, Mode: m})
		if err != nil {
			t.Fatalf("mode %d: %v", m, err)
		}
		if _, ok := st.(*postgres.Store); !ok {
			t.Errorf("mode %d: Open = %T, want *postgres.Store", m, st)
		}
		st.Close()
	}
	if _, err := os.Stat(nowhere); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a PostgreSQL open created the data directory: %v", err)
	}
	if got := Describe(Options{DB: "postgres://capf:s3cret@db/capf"}); strings.Contains(got, "s3cret") {
		t.Errorf("Describe = %q shows the password", got)
	}
}

// TestMigrate: on both backends, a database behind the binary is listed by
// a dry run, which changes nothing, and brought up to date by a real run;
// then it is up to date.
func TestMigrate(t *testing.T) {
	sqliteDir := t.TempDir()
	// An empty capf.db: initialised, at schema version 0.
	if err := os.WriteFile(filepath.Join(sqliteDir, "capf.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	backends := []struct {
		name  string
		o     func(t *testing.T) Options
		known int
	}{
		{"sqlite", func(*testing.T) Options { return Options{DataDir: sqliteDir} }, sqlite.SchemaVersion()},
		{"postgres", func(t *testing.T) Options { return Options{DB: pgtest.DSN(t), DataDir: t.TempDir()} }, postgres.SchemaVersion()},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			o := b.o(t)
			for range 2 {
				sc, err := Migrate(t.Context(), o, true)
				if err != nil {
					t.Fatal(err)
				}
				if sc.Current != 0 || sc.Known != b.known || len(sc.Pending) != b.known {
					t.Fatalf("dry run = %+v, want version 0 with all %d migrations pending", sc, b.known)
				}
			}
			sc, err := Migrate(t.Context(), o, false)
			if err != nil || len(sc.Pending) != b.known {
				t.Fatalf("migrate = %+v, %v", sc, err)
			}
			sc, err = Migrate(t.Context(), o, true)
			if err != nil || sc.Current != b.known || len(sc.Pending) != 0 {
				t.Fatalf("after migrate: %+v, %v; want up to date", sc, err)
			}
			st, err := Open(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.ListDevices(t.Context(), device.Query{}); err != nil {
				t.Errorf("the migrated database: %v", err)
			}
		})
	}
	if _, err := Migrate(t.Context(), Options{DataDir: t.TempDir()}, true); fault.KindOf(err) != fault.NotFound {
		t.Errorf("dry run on an empty directory: %v, want NotFound", err)
	}
}

// TestReadOnlyNeverMigratesPostgres: a look-only command on a database
// behind the binary refuses it and changes nothing; a newer one is refused
// too.
func TestReadOnlyNeverMigratesPostgres(t *testing.T) {
	o := Options{DB: pgtest.DSN(t), DataDir: t.TempDir(), Mode: ReadOnly}
	_, err := Open(t.Context(), o)
	if err == nil || !strings.Contains(err.Error(), "older") || !strings.Contains(err.Error(), "capf migrate") {
		t.Fatalf("read-only open of an empty database: %v, want it refused as older", err)
	}
	if sc, err := Migrate(t.Context(), o, true); err != nil || sc.Current != 0 {
		t.Fatalf("schema after the read-only open: %+v, %v; want version 0", sc, err)
	}
	if _, err := Migrate(t.Context(), o, false); err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.Context(), o)
	if err != nil {
		t.Fatalf("read-only open of an up-to-date database: %v", err)
	}
	st.Close()
}
