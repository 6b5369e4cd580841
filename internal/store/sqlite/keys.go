package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

var _ keys.Store = (*Store)(nil)

// ListKeys implements keys.Store.
func (s *Store) ListKeys(ctx context.Context) ([]keys.Record, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, kind, chain, sealed, kek_id, created_at FROM keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []keys.Record
	for rows.Next() {
		var (
			r    keys.Record
			kind string
			at   sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &kind, &r.Chain, &r.Sealed, &r.KEKID, &at); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		r.Kind, r.CreatedAt = keys.Kind(kind), fromMicros(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// CreateKeys implements keys.Store.
func (s *Store) CreateKeys(ctx context.Context, recs []keys.Record, ev device.AuditEvent) error {
	return s.submit(ctx, "create keys", func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys`).Scan(&n); err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if n > 0 {
			return fault.Conflictf("the database holds %d keys already", n)
		}
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO keys (id, kind, chain, sealed, kek_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
				r.ID, string(r.Kind), r.Chain, r.Sealed, r.KEKID, r.CreatedAt.UnixMicro()); err != nil {
				if isUnique(err) {
					return fault.Conflictf("key %s given twice", r.ID)
				}
				return fmt.Errorf("store key %s: %w", r.ID, err)
			}
		}
		return insertAudit(ctx, tx, ev)
	})
}

// ResealKeys implements keys.Store.
func (s *Store) ResealKeys(ctx context.Context, from string, recs []keys.Record, ev device.AuditEvent) error {
	return s.submit(ctx, "re-seal keys", func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys`).Scan(&n); err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if n != len(recs) {
			return fault.Conflictf("the database holds %d keys, %d given: re-seal all of them", n, len(recs))
		}
		for _, r := range recs {
			res, err := tx.ExecContext(ctx, `UPDATE keys SET sealed = ?, kek_id = ? WHERE id = ? AND kek_id = ?`, append([]byte{}, r.Sealed...), r.KEKID, r.ID, from)
			if err != nil {
				return fmt.Errorf("re-seal key %s: %w", r.ID, err)
			}
			if k, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("re-seal key %s: %w", r.ID, err)
			} else if k != 1 {
				return fault.Conflictf("key %s is not stored under the KEK %s", r.ID, from)
			}
		}
		return insertAudit(ctx, tx, ev)
	})
}

// RemovePrivateKey implements keys.Store.
func (s *Store) RemovePrivateKey(ctx context.Context, id string, chain []byte, ev device.AuditEvent) error {
	return s.submit(ctx, "remove private key", func(ctx context.Context, tx *sql.Tx) error {
		var have, sealed []byte
		err := tx.QueryRowContext(ctx, `SELECT chain, sealed FROM keys WHERE id = ?`, id).Scan(&have, &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return fault.NotFoundf("no key %s is stored", id)
		}
		if err != nil {
			return fmt.Errorf("read key %s: %w", id, err)
		}
		if err := keys.CheckRemovable(id, have, sealed, chain); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET sealed = ? WHERE id = ?`, []byte{}, id); err != nil {
			return fmt.Errorf("remove the private key of %s: %w", id, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}
