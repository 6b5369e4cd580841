package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// resetOutcome is the outcome column's value for r.
func resetOutcome(r device.Reset) string {
	if r.OK {
		return "ok"
	}
	return "error"
}

// RecordReset keeps r as the device's latest reset and appends ev, in one
// transaction; NotFound if the device does not exist.
func (s *Store) RecordReset(ctx context.Context, r device.Reset, ev device.AuditEvent) error {
	what := fmt.Sprintf("record reset of device %q", r.Device)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE name = ?`, r.Device).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fault.NotFoundf("device %q not found", r.Device)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_resets (device, at, actor, outcome, reason) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (device) DO UPDATE SET at = excluded.at, actor = excluded.actor, outcome = excluded.outcome, reason = excluded.reason`,
			r.Device, r.At.UnixMicro(), r.Actor, resetOutcome(r), r.Reason); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// LastReset returns the device's latest reset, or a zero Reset.
func (s *Store) LastReset(ctx context.Context, name string) (device.Reset, error) {
	var (
		r       = device.Reset{Device: name}
		at      sql.NullInt64
		outcome string
	)
	err := s.read.QueryRowContext(ctx, `SELECT at, actor, outcome, reason FROM device_resets WHERE device = ?`, name).
		Scan(&at, &r.Actor, &outcome, &r.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return device.Reset{}, nil
	}
	if err != nil {
		return device.Reset{}, fmt.Errorf("last reset of device %q: %w", name, err)
	}
	r.At = fromMicros(at)
	r.OK = outcome == "ok"
	return r, nil
}
