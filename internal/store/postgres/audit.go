package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
)

// insertAudit appends ev inside tx. A zero-value event (no action) is
// skipped, for callers that have nothing to audit.
func insertAudit(ctx context.Context, tx pgx.Tx, ev device.AuditEvent) error {
	if ev.Action == "" {
		return nil
	}
	changes := ev.Changes
	if changes == nil {
		changes = []device.FieldChange{}
	}
	b, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("audit %s %s: encode changes: %w", ev.Action, ev.Target, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_events
		(at, actor_kind, actor_name, actor_remote, action, target, changes, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ev.At.UnixMicro(), ev.Actor.Kind, ev.Actor.Name, ev.Actor.Remote, ev.Action, ev.Target, string(b), ev.Detail)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", ev.Action, ev.Target, err)
	}
	return nil
}

// AppendAudit appends an audit event that goes with no device write.
func (s *Store) AppendAudit(ctx context.Context, ev device.AuditEvent) error {
	return s.write(ctx, "append audit event", func(ctx context.Context, tx pgx.Tx) error {
		return insertAudit(ctx, tx, ev)
	})
}

// ListAudit returns audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error) {
	query := `SELECT id, at, actor_kind, actor_name, actor_remote, action, target, changes, detail FROM audit_events`
	var args []any
	if q.Target != "" {
		query += ` WHERE target = $1`
		args = append(args, q.Target)
	}
	args = append(args, limitArg(q.Limit))
	query += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	evs := []device.AuditEvent{}
	for rows.Next() {
		var (
			ev      device.AuditEvent
			at      *int64
			changes string
		)
		if err := rows.Scan(&ev.ID, &at, &ev.Actor.Kind, &ev.Actor.Name, &ev.Actor.Remote,
			&ev.Action, &ev.Target, &changes, &ev.Detail); err != nil {
			return nil, fmt.Errorf("list audit events: scan: %w", err)
		}
		ev.At = fromMicros(at)
		if err := json.Unmarshal([]byte(changes), &ev.Changes); err != nil {
			return nil, fmt.Errorf("list audit events: event %d: decode changes: %w", ev.ID, err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return evs, nil
}
