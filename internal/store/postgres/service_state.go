package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
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

// PeekServiceState reads the service state of the database dsn names
// without migrating or changing anything, for `capf serve` to decide
// before it binds the phone port: a database without the state table (not
// yet migrated) or without a stored state is active.
func PeekServiceState(ctx context.Context, dsn string) (system.ServiceState, error) {
	what := Redact(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return system.ServiceState{}, fault.Invalidf("postgres store %s: the connection string is not valid", what)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return system.ServiceState{}, fmt.Errorf("postgres store %s: %w", what, connectErr(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('service_state') IS NOT NULL`).Scan(&exists); err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	if !exists {
		return system.ServiceState{Active: true}, nil
	}
	var (
		st system.ServiceState
		at *int64
	)
	err = conn.QueryRow(ctx, `SELECT active, changed_at, changed_by FROM service_state WHERE id = 1`).Scan(&st.Active, &at, &st.ChangedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return system.ServiceState{Active: true}, nil
	}
	if err != nil {
		return system.ServiceState{}, fmt.Errorf("read service state: %w", err)
	}
	st.ChangedAt = fromMicros(at)
	return st, nil
}
