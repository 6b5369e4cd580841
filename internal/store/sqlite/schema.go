package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// SchemaState reads the schema version of the database at path without
// creating, migrating or changing any file, and lists the embedded
// migrations Open would apply to it, in order. A database without
// schema_migrations (an empty file) is at version 0. NotFound if there is
// no file.
func SchemaState(ctx context.Context, path string) (current int, pending []string, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil, fmt.Errorf("sqlite store: no database at %s: %w", path, err)
	} else if err != nil {
		return 0, nil, fmt.Errorf("sqlite store: %w", err)
	}
	ms, err := loadMigrations()
	if err != nil {
		return 0, nil, err
	}
	db, err := openReader(ctx, dsn(path, DefaultBusyTimeout, false)+"&mode=ro", 1)
	if err != nil {
		return 0, nil, fmt.Errorf("sqlite store %s: open read-only: %w", path, err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("sqlite store %s: read schema version: %w", path, err)
	}
	if n > 0 {
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return 0, nil, fmt.Errorf("sqlite store %s: read schema version: %w", path, err)
		}
	}
	for _, m := range ms {
		if m.version > current {
			pending = append(pending, m.name)
		}
	}
	return current, pending, nil
}
