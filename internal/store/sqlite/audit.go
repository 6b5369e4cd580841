package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/capf-server/capf/internal/device"
)

// insertAudit appends ev inside tx. A zero-value event (no action) is
// skipped, for callers that have nothing to audit.
func insertAudit(ctx context.Context, tx execer, ev device.AuditEvent) error {
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
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_events
		(at, actor_kind, actor_name, actor_remote, action, target, changes, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.At.UnixMicro(), ev.Actor.Kind, ev.Actor.Name, ev.Actor.Remote, ev.Action, ev.Target, string(b), ev.Detail)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", ev.Action, ev.Target, err)
	}
	return nil
}

// AppendAudit appends an audit event that goes with no device write.
func (s *Store) AppendAudit(ctx context.Context, ev device.AuditEvent) error {
	return s.submit(ctx, "append audit event", func(ctx context.Context, tx *sql.Tx) error {
		return insertAudit(ctx, tx, ev)
	})
}

// ListAudit returns audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error) {
	query := `SELECT id, at, actor_kind, actor_name, actor_remote, action, target, changes, detail FROM audit_events`
	var args []any
	if q.Target != "" {
		query += ` WHERE target = ?`
		args = append(args, q.Target)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	evs := []device.AuditEvent{}
	for rows.Next() {
		var (
			ev      device.AuditEvent
			at      sql.NullInt64
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
