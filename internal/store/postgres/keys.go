package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

var _ keys.Store = (*Store)(nil)

// ListKeys implements keys.Store.
func (s *Store) ListKeys(ctx context.Context) ([]keys.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, chain, sealed, kek_id, created_at FROM keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []keys.Record
	for rows.Next() {
		var (
			r    keys.Record
			kind string
			at   *int64
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

// CreateKeys implements keys.Store. It runs SERIALIZABLE: of two nodes
// that initialise one database at once, one stores its keys and the other
// (retried) finds them and gets the Conflict.
func (s *Store) CreateKeys(ctx context.Context, recs []keys.Record, ev device.AuditEvent) error {
	return s.write(ctx, "create keys", func(ctx context.Context, tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM keys`).Scan(&n); err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if n > 0 {
			return fault.Conflictf("the database holds %d keys already", n)
		}
		for _, r := range recs {
			if _, err := tx.Exec(ctx, `INSERT INTO keys (id, kind, chain, sealed, kek_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				r.ID, string(r.Kind), r.Chain, r.Sealed, r.KEKID, r.CreatedAt.UnixMicro()); err != nil {
				if isUnique(err) {
					return fault.Conflictf("key %s is stored already", r.ID)
				}
				return fmt.Errorf("store key %s: %w", r.ID, err)
			}
		}
		return insertAudit(ctx, tx, ev)
	})
}

// ResealKeys implements keys.Store.
func (s *Store) ResealKeys(ctx context.Context, from string, recs []keys.Record, ev device.AuditEvent) error {
	return s.write(ctx, "re-seal keys", func(ctx context.Context, tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM keys`).Scan(&n); err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if n != len(recs) {
			return fault.Conflictf("the database holds %d keys, %d given: re-seal all of them", n, len(recs))
		}
		for _, r := range recs {
			tag, err := tx.Exec(ctx, `UPDATE keys SET sealed = $1, kek_id = $2 WHERE id = $3 AND kek_id = $4`, append([]byte{}, r.Sealed...), r.KEKID, r.ID, from)
			if err != nil {
				return fmt.Errorf("re-seal key %s: %w", r.ID, err)
			}
			if tag.RowsAffected() != 1 {
				return fault.Conflictf("key %s is not stored under the KEK %s", r.ID, from)
			}
		}
		return insertAudit(ctx, tx, ev)
	})
}

// RemovePrivateKey implements keys.Store.
func (s *Store) RemovePrivateKey(ctx context.Context, id string, chain []byte, ev device.AuditEvent) error {
	return s.write(ctx, "remove private key", func(ctx context.Context, tx pgx.Tx) error {
		var have, sealed []byte
		err := tx.QueryRow(ctx, `SELECT chain, sealed FROM keys WHERE id = $1 FOR UPDATE`, id).Scan(&have, &sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.NotFoundf("no key %s is stored", id)
		}
		if err != nil {
			return fmt.Errorf("read key %s: %w", id, err)
		}
		if err := keys.CheckRemovable(id, have, sealed, chain); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET sealed = $2 WHERE id = $1`, id, []byte{}); err != nil {
			return fmt.Errorf("remove the private key of %s: %w", id, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}
