package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/store/postgres"
)

// Database backends, as reported.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// schemaTimeout bounds creating or dropping a run's schema.
const schemaTimeout = time.Minute

// runSchema is the PostgreSQL schema a run created for the server it
// starts, first in the search path of dsn, dropped by drop.
type runSchema struct {
	name string
	dsn  string // the run's DSN: the base DSN with search_path=name
	base string // the DSN the run was given
}

// createSchema creates a new schema capf_bench_<random> in the database
// base names (a postgres:// URL) and returns it; every connection made
// with its DSN uses it first, so repeated or concurrent runs on one
// database do not collide.
func createSchema(ctx context.Context, base string) (*runSchema, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", postgres.Redact(base), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := &runSchema{name: "capf_bench_" + hex.EncodeToString(b), base: base}
	q := u.Query()
	q.Set("search_path", s.name)
	u.RawQuery = q.Encode()
	s.dsn = u.String()
	if err := s.exec(ctx, "CREATE SCHEMA "+s.name); err != nil {
		return nil, err
	}
	return s, nil
}

// drop drops the schema and everything in it.
func (s *runSchema) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
	defer cancel()
	return s.exec(ctx, "DROP SCHEMA "+s.name+" CASCADE")
}

// exec runs sql (a statement on the schema name, which is ours and safe
// unquoted) on a connection of its own to the base database.
func (s *runSchema) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, schemaTimeout)
	defer cancel()
	// Parsed as the server parses it, so that pool settings in the URL
	// (pool_max_conns, …) are understood rather than sent as parameters.
	cfg, err := pgxpool.ParseConfig(s.base)
	if err != nil {
		return fmt.Errorf("database %s: %w", postgres.Redact(s.base), err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("database %s: connect: %w", postgres.Redact(s.base), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("database %s: %s: %w", postgres.Redact(s.base), sql, err)
	}
	return nil
}

// describeDB names the database of a run for its report: the backend, and
// for PostgreSQL the URL without its password.
func describeDB(db string) (backend, where string) {
	if !store.IsPostgres(db) {
		return BackendSQLite, ""
	}
	return BackendPostgres, postgres.Redact(db)
}
