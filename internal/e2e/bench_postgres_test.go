package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/bench"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestBenchPostgres runs capf bench with --db: the spawned server and the
// provisioning use a schema of its own in that PostgreSQL database (not
// the SQLite database of its data directory), every phone enrols there,
// and the schema is dropped after the run unless --keep.
func TestBenchPostgres(t *testing.T) {
	base := pgtest.DSN(t) // the runs' schemas are created beside this one
	const phones = 20
	args := []string{"--db", base, "--phones", "20", "--concurrency", "8", "--phone-key", "ec256", "--capf-key", "ec256", "--quiet"}

	// Kept: the issuances are in the run's schema, none in SQLite.
	rep := runBenchBinary(t, append(args, "--keep")...)
	checkBenchCounts(t, rep, phones)
	p := rep.Params
	if p.Mode != bench.ModeSpawned || p.DB != bench.BackendPostgres || p.DBSchema == "" || p.DBURL == "" {
		t.Fatalf("params %+v: want a spawned server on a PostgreSQL schema", p)
	}
	t.Cleanup(func() {
		pgtest.Exec(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{p.DBSchema}.Sanitize()+" CASCADE")
		if rep.DataDir != "" {
			_ = os.RemoveAll(rep.DataDir)
		}
	})
	if rep.DataDir == "" {
		t.Fatal("--keep reported no data directory")
	}
	if _, err := os.Stat(filepath.Join(rep.DataDir, datadir.DBFile)); !os.IsNotExist(err) {
		t.Errorf("the server's data directory has a SQLite database (stat: %v); want none", err)
	}
	if n := countRows(t, pgtest.WithParam(t, base, "search_path", p.DBSchema), "SELECT count(*) FROM issuances"); n != phones {
		t.Errorf("issuances in schema %s: %d, want %d", p.DBSchema, n, phones)
	}
	if n := countRows(t, pgtest.WithParam(t, base, "search_path", p.DBSchema), "SELECT count(*) FROM devices"); n != phones {
		t.Errorf("devices in schema %s: %d, want %d", p.DBSchema, n, phones)
	}

	// Not kept: a second run on the same database gets a schema of its own
	// and drops it. Its URL carries a pool setting, which the server
	// understands and the run's own connection must too.
	args[1] = pgtest.WithParam(t, base, "pool_max_conns", "8")
	rep2 := runBenchBinary(t, args...)
	checkBenchCounts(t, rep2, phones)
	if s := rep2.Params.DBSchema; s == "" || s == p.DBSchema {
		t.Fatalf("second run's schema %q, first %q: want a new one", s, p.DBSchema)
	}
	if n := countRows(t, base, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", rep2.Params.DBSchema); n != 0 {
		t.Errorf("schema %s still exists after the run", rep2.Params.DBSchema)
	}
}

// countRows runs a count query on dsn.
func countRows(t *testing.T, dsn, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
