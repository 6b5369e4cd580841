package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capf-server/capf/internal/fault"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema step, read from migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationLock is the key of the transaction-scoped advisory lock that
// serialises the openers migrating one database ("capf" in ASCII).
const migrationLock = 0x63617066

// loadMigrations returns the embedded migrations in version order. Versions
// must run 1, 2, 3… without gaps or repeats.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		file := e.Name()
		prefix, _, ok := strings.Cut(file, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s: name must be NNNN_name.sql", file)
		}
		body, err := migrationFiles.ReadFile(path.Join("migrations", file))
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s: %w", file, err)
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(file, ".sql"), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("embedded migration %s: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion returns the schema version this binary creates and knows:
// the number of its embedded PostgreSQL migrations.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate applies every embedded migration the database lacks, in order,
// in one transaction that first takes an advisory lock, so that nodes
// starting together apply each step once and a failing step leaves the
// schema as it was (PostgreSQL's DDL is transactional). It refuses, before
// changing anything, a database whose schema is newer than the binary.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade capf, or restore a backup made by this version", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("migration %s: record: %w", m.name, err)
			}
		}
		return nil
	})
}

// checkSchema fails unless the database has exactly the schema version
// this binary knows; it changes nothing.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	current := 0
	if exists {
		if err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
	}
	switch known := SchemaVersion(); {
	case current > known:
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade capf", current, known)
	case current < known:
		return fault.Invalidf("database schema version %d is older than this binary's (%d): run capf migrate (or capf serve) to upgrade it", current, known)
	}
	return nil
}
