package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
