package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
)

// GetServiceState implements system.Store: the stored activation, or an
// active service never changed when none is stored.
func (s *Store) GetServiceState(ctx context.Context) (system.ServiceState, error) {
	var (
		st system.ServiceState
		at *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT active, changed_at, changed_by FROM service_state WHERE id = 1`).
		Scan(&st.Active, &at, &st.ChangedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return system.ServiceState{Active: true}, nil
	}
	if err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	st.ChangedAt = fromMicros(at)
	return st, nil
}

// SetServiceState implements system.Store: it stores st and appends ev in
// one transaction.
func (s *Store) SetServiceState(ctx context.Context, st system.ServiceState, ev device.AuditEvent) error {
	return s.write(ctx, "set service state", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO service_state (id, active, changed_at, changed_by)
			VALUES (1, $1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET active = excluded.active, changed_at = excluded.changed_at, changed_by = excluded.changed_by`,
			st.Active, micros(st.ChangedAt), st.ChangedBy); err != nil {
			return fmt.Errorf("set service state: %w", err)
		}
		return insertAudit(ctx, tx, ev)
	})
}
