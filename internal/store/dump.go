package store

import (
	"context"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/dbdump"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// The backends as a backup's manifest names them.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Backend names the backend of o.
func Backend(o Options) string {
	if IsPostgres(o.DB) {
		return BackendPostgres
	}
	return BackendSQLite
}

// SchemaVersionOf returns the schema version this binary knows for the
// backend named (BackendSQLite or BackendPostgres), or 0 for another name.
func SchemaVersionOf(backend string) int {
	switch backend {
	case BackendSQLite:
		return sqlite.SchemaVersion()
	case BackendPostgres:
		return postgres.SchemaVersion()
	}
	return 0
}

// Dump writes one consistent snapshot of the database o names to sink in
// dbdump's neutral form, while servers keep using it, and returns its
// schema version; tmpDir holds SQLite's snapshot copy meanwhile. The
// database must be at this binary's schema version.
func Dump(ctx context.Context, o Options, tmpDir string, sink dbdump.Sink) (schema int, err error) {
	o.Mode = ReadOnly
	st, err := Open(ctx, o)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if pg, ok := st.(*postgres.Store); ok {
		return pg.Dump(ctx, sink)
	}
	return sqlite.Dump(ctx, datadir.Dir(o.DataDir).DB(), tmpDir, sink)
}

// Restore fills the database o names from src. SQLite: the data
// directory must hold no capf.db (the caller checks that no server runs
// there); it is created with this binary's schema and filled in one
// transaction, or not at all. PostgreSQL: the schema is brought up to
// date, then filled in one transaction that refuses a database nodes are
// serving, and one that holds data unless force.
func Restore(ctx context.Context, o Options, src dbdump.Source, force bool) error {
	if err := Check(o.DB); err != nil {
		return err
	}
	if !IsPostgres(o.DB) {
		d := datadir.Dir(o.DataDir)
		if err := d.Initialised(); err == nil {
			return fault.Conflictf("%s exists: restore into a data directory without a database", d.DB())
		}
		return sqlite.Restore(ctx, d.DB(), src)
	}
	st, err := postgres.Open(ctx, o.DB, postgres.Options{Now: o.Now})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return st.Restore(ctx, src, postgres.RestoreOptions{Force: force, NowMicros: now().UnixMicro()})
}
