package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
)

// GetServiceState implements system.Store: the stored activation, or an
// active service never changed when none is stored.
func (s *Store) GetServiceState(ctx context.Context) (system.ServiceState, error) {
	var (
		st     system.ServiceState
		active int64
		at     sql.NullInt64
	)
	err := s.read.QueryRowContext(ctx, `SELECT active, changed_at, changed_by FROM service_state WHERE id = 1`).
		Scan(&active, &at, &st.ChangedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return system.ServiceState{Active: true}, nil
	}
	if err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	st.Active = active != 0
	st.ChangedAt = fromMicros(at)
	return st, nil
}

// SetServiceState implements system.Store: it stores st and appends ev in
// one transaction.
func (s *Store) SetServiceState(ctx context.Context, st system.ServiceState, ev device.AuditEvent) error {
	active := 0
	if st.Active {
		active = 1
	}
	return s.submit(ctx, "set service state", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO service_state (id, active, changed_at, changed_by)
			VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET active = excluded.active, changed_at = excluded.changed_at, changed_by = excluded.changed_by`,
			active, micros(st.ChangedAt), st.ChangedBy); err != nil {
			return fmt.Errorf("set service state: %w", err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// PeekServiceState reads the service state of the database at path
// without creating or changing any file, for `capf serve` to decide before
// it binds the phone port: a missing database or one without the state
// table (a schema before it) is active. A database with no write-ahead log
// beside it is read as immutable, so SQLite creates no -wal or -shm file.
func PeekServiceState(ctx context.Context, path string) (system.ServiceState, error) {
	active := system.ServiceState{Active: true}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return active, nil
	} else if err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	mode := "&mode=ro"
	if _, err := os.Stat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		mode += "&immutable=1"
	}
	db, err := sql.Open("sqlite", dsn(path, DefaultBusyTimeout, false)+mode)
	if err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'service_state'`).Scan(&n); err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	if n == 0 {
		return active, nil
	}
	var (
		st system.ServiceState
		on int64
		at sql.NullInt64
	)
	err = db.QueryRowContext(ctx, `SELECT active, changed_at, changed_by FROM service_state WHERE id = 1`).Scan(&on, &at, &st.ChangedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return active, nil
	}
	if err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	st.Active, st.ChangedAt = on != 0, fromMicros(at)
	return st, nil
}
