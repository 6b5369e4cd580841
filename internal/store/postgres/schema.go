package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/fault"
)

// SchemaState reads the schema version of the database dsn names without
// migrating or changing anything, and lists the embedded migrations Open
// would apply to it, in order. A database without schema_migrations is at
// version 0.
func SchemaState(ctx context.Context, dsn string) (current int, pending []string, err error) {
	what := Redact(dsn)
	ms, err := loadMigrations()
	if err != nil {
		return 0, nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, nil, fault.Invalidf("postgres store %s: the connection string is not valid", what)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, nil, fmt.Errorf("postgres store %s: %w", what, connectErr(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, nil, fmt.Errorf("postgres store %s: read schema version: %w", what, err)
	}
	if exists {
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return 0, nil, fmt.Errorf("postgres store %s: read schema version: %w", what, err)
		}
	}
	for _, m := range ms {
		if m.version > current {
			pending = append(pending, m.name)
		}
	}
	return current, pending, nil
}
