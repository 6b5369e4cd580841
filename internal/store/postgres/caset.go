package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/system"
)

var _ caset.Store = (*Store)(nil)

// ListCAs implements caset.Store.
func (s *Store) ListCAs(ctx context.Context) ([]caset.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, state, chain, key_ref, created_at, changed_at FROM ca_set ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list CAs: %w", err)
	}
	defer rows.Close()
	var out []caset.Record
	for rows.Next() {
		var (
			r              caset.Record
			state          string
			created, moved *int64
		)
		if err := rows.Scan(&r.ID, &state, &r.Chain, &r.KeyRef, &created, &moved); err != nil {
			return nil, fmt.Errorf("list CAs: %w", err)
		}
		r.State, r.CreatedAt, r.ChangedAt = caset.State(state), fromMicros(created), fromMicros(moved)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list CAs: %w", err)
	}
	return out, nil
}

// CASetVersion implements caset.Store.
func (s *Store) CASetVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM ca_set_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the CA set version: %w", err)
	}
	return v, nil
}

// AddCA implements caset.Store.
func (s *Store) AddCA(ctx context.Context, r caset.Record, key *keys.Record, ev device.AuditEvent) error {
	if r.ID == "" || !r.State.Valid() || len(r.Chain) == 0 {
		return fault.Invalidf("CA %q: id, state and certificate are all needed", r.ID)
	}
	return s.write(ctx, "add CA", func(ctx context.Context, tx pgx.Tx) error {
		if err := addCA(ctx, tx, r, key); err != nil {
			return err
		}
		return bumpCASet(ctx, tx, ev)
	})
}

// addCA inserts r, and key when not nil, in tx.
func addCA(ctx context.Context, tx pgx.Tx, r caset.Record, key *keys.Record) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM ca_set`).Scan(&n); err != nil {
		return fmt.Errorf("count CAs: %w", err)
	}
	if r.State == caset.Active && n > 0 {
		return fault.Conflictf("the CA set holds %d CAs already: only its first CA starts active", n)
	}
	if key != nil {
		if err := insertKey(ctx, tx, *key); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ca_set (id, state, chain, key_ref, created_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, string(r.State), r.Chain, r.KeyRef, r.CreatedAt.UnixMicro(), r.ChangedAt.UnixMicro()); err != nil {
		if isUnique(err) {
			return fault.Conflictf("CA %s is in the set already", r.ID)
		}
		return fmt.Errorf("store CA %s: %w", r.ID, err)
	}
	return nil
}

// insertKey inserts key into the keys table in tx; Conflict when its id
// is stored already.
func insertKey(ctx context.Context, tx pgx.Tx, key keys.Record) error {
	if _, err := tx.Exec(ctx, `INSERT INTO keys (id, kind, chain, sealed, kek_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		key.ID, string(key.Kind), key.Chain, key.Sealed, key.KEKID, key.CreatedAt.UnixMicro()); err != nil {
		if isUnique(err) {
			return fault.Conflictf("key %s is stored already", key.ID)
		}
		return fmt.Errorf("store key %s: %w", key.ID, err)
	}
	return nil
}

// AddPendingKey implements caset.Store.
func (s *Store) AddPendingKey(ctx context.Context, key keys.Record, ev device.AuditEvent) error {
	if key.ID == "" || len(key.Chain) == 0 || len(key.Sealed) == 0 {
		return fault.Invalidf("pending key %q: id, certificate and sealed key are all needed", key.ID)
	}
	return s.write(ctx, "add the pending key", func(ctx context.Context, tx pgx.Tx) error {
		if err := insertKey(ctx, tx, key); err != nil {
			return err
		}
		return insertAudit(ctx, tx, ev)
	})
}

// StagePending implements caset.Store.
func (s *Store) StagePending(ctx context.Context, r caset.Record, key *keys.Record, pendingID string, ev device.AuditEvent) error {
	if r.ID == "" || r.State != caset.Staged || len(r.Chain) == 0 || pendingID == "" {
		return fault.Invalidf("CA %q: id, certificate, the staged state and the pending key are all needed", r.ID)
	}
	return s.write(ctx, "stage the pending CA", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM keys WHERE id = $1`, pendingID)
		if err != nil {
			return fmt.Errorf("remove the pending key: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fault.NotFoundf("no pending key %s (capf ca csr makes one)", pendingID)
		}
		if err := addCA(ctx, tx, r, key); err != nil {
			return err
		}
		return bumpCASet(ctx, tx, ev)
	})
}

// ChangeCAStates implements caset.Store.
func (s *Store) ChangeCAStates(ctx context.Context, changes []caset.StateChange, at time.Time, ev device.AuditEvent) error {
	for _, c := range changes {
		if !c.To.Valid() {
			return fault.Invalidf("CA %s: unknown state %q", c.ID, c.To)
		}
	}
	return s.write(ctx, "change CA states", func(ctx context.Context, tx pgx.Tx) error {
		// Leaving the active state first, so that the one-active index
		// holds at every statement.
		for _, c := range caset.OrderChanges(changes) {
			tag, err := tx.Exec(ctx, `UPDATE ca_set SET state = $1, changed_at = $2 WHERE id = $3 AND state = $4`,
				string(c.To), at.UnixMicro(), c.ID, string(c.From))
			if err != nil {
				if isUnique(err) {
					return fault.Conflictf("another CA is active")
				}
				return fmt.Errorf("change CA %s: %w", c.ID, err)
			}
			if tag.RowsAffected() != 1 {
				var state string
				err := tx.QueryRow(ctx, `SELECT state FROM ca_set WHERE id = $1`, c.ID).Scan(&state)
				if errors.Is(err, pgx.ErrNoRows) {
					return fault.NotFoundf("no CA %s in the set", c.ID)
				}
				return fault.Conflictf("CA %s is %s, not %s", c.ID, state, c.From)
			}
		}
		return bumpCASet(ctx, tx, ev)
	})
}

func bumpCASet(ctx context.Context, tx pgx.Tx, ev device.AuditEvent) error {
	var v int64
	if err := tx.QueryRow(ctx, `UPDATE ca_set_state SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
		return fmt.Errorf("move the CA set version: %w", err)
	}
	// Every node listens on the fleet channel (ADR 0011): the CA set
	// reloads at once, the fleet parameters find their counter unchanged.
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, system.FleetChannel, "ca-set "+strconv.FormatInt(v, 10)); err != nil {
		return fmt.Errorf("notify the CA set change: %w", err)
	}
	return insertAudit(ctx, tx, ev)
}

// CountLSCHolders implements caset.Store.
func (s *Store) CountLSCHolders(ctx context.Context, id, subject string, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM devices d WHERE d.lsc_serial IS NOT NULL AND d.lsc_not_after >= $1
		AND EXISTS (SELECT 1 FROM issuances i WHERE i.serial = d.lsc_serial AND i.revoked_at IS NULL
			AND (i.issuer_key_id = $2 OR (i.issuer_key_id = '' AND d.lsc_issuer = $3)))`,
		now.UnixMicro(), id, subject).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the LSC holders of CA %s: %w", id, err)
	}
	return n, nil
}

// IssuingCA implements caset.Store.
func (s *Store) IssuingCA(ctx context.Context) (caset.IssuingRecord, bool, error) {
	var (
		r       caset.IssuingRecord
		created *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT id, parent_id, chain, key_ref, created_at FROM ca_issuing WHERE slot = 1`).
		Scan(&r.ID, &r.ParentID, &r.Chain, &r.KeyRef, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return caset.IssuingRecord{}, false, nil
	}
	if err != nil {
		return caset.IssuingRecord{}, false, fmt.Errorf("read the issuing CA: %w", err)
	}
	r.CreatedAt = fromMicros(created)
	return r, true, nil
}

// PutIssuingCA implements caset.Store.
func (s *Store) PutIssuingCA(ctx context.Context, r caset.IssuingRecord, key *keys.Record, ev device.AuditEvent) error {
	if r.ID == "" || r.ParentID == "" || len(r.Chain) == 0 || r.KeyRef == "" {
		return fault.Invalidf("issuing CA %q: id, parent, certificate and key reference are all needed", r.ID)
	}
	return s.write(ctx, "put the issuing CA", func(ctx context.Context, tx pgx.Tx) error {
		var have string
		switch err := tx.QueryRow(ctx, `SELECT id FROM ca_issuing WHERE slot = 1`).Scan(&have); {
		case err == nil:
			return fault.Conflictf("an issuing CA is in place already (%s)", have)
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read the issuing CA: %w", err)
		}
		switch err := tx.QueryRow(ctx, `SELECT id FROM ca_issuing_former WHERE id = $1`, r.ID).Scan(&have); {
		case err == nil:
			return fault.Conflictf("the issuing CA %s is a former one: capf ca issuer forget %s first", r.ID, r.ID)
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read the former issuing CAs: %w", err)
		}
		if key != nil {
			if err := insertKey(ctx, tx, *key); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ca_issuing (slot, id, parent_id, chain, key_ref, created_at) VALUES (1, $1, $2, $3, $4, $5)`,
			r.ID, r.ParentID, r.Chain, r.KeyRef, r.CreatedAt.UnixMicro()); err != nil {
			if isUnique(err) {
				return fault.Conflictf("an issuing CA is in place already")
			}
			return fmt.Errorf("store the issuing CA %s: %w", r.ID, err)
		}
		return bumpCASet(ctx, tx, ev)
	})
}

// RetireIssuingCA implements caset.Store.
func (s *Store) RetireIssuingCA(ctx context.Context, id string, at time.Time, ev device.AuditEvent) error {
	return s.write(ctx, "retire the issuing CA", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO ca_issuing_former (id, parent_id, chain, key_ref, created_at, removed_at)
			SELECT id, parent_id, chain, key_ref, created_at, $1 FROM ca_issuing WHERE slot = 1 AND id = $2`, at.UnixMicro(), id)
		if err != nil {
			if isUnique(err) {
				return fault.Conflictf("the issuing CA %s is a former one already", id)
			}
			return fmt.Errorf("retire the issuing CA %s: %w", id, err)
		}
		if tag.RowsAffected() != 1 {
			return fault.NotFoundf("no issuing CA %s in place", id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ca_issuing WHERE slot = 1`); err != nil {
			return fmt.Errorf("retire the issuing CA %s: %w", id, err)
		}
		return bumpCASet(ctx, tx, ev)
	})
}

// FormerIssuingCAs implements caset.Store.
func (s *Store) FormerIssuingCAs(ctx context.Context) ([]caset.IssuingRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, parent_id, chain, key_ref, created_at, removed_at FROM ca_issuing_former ORDER BY removed_at, id`)
	if err != nil {
		return nil, fmt.Errorf("read the former issuing CAs: %w", err)
	}
	defer rows.Close()
	var out []caset.IssuingRecord
	for rows.Next() {
		var (
			r                caset.IssuingRecord
			created, removed *int64
		)
		if err := rows.Scan(&r.ID, &r.ParentID, &r.Chain, &r.KeyRef, &created, &removed); err != nil {
			return nil, fmt.Errorf("read the former issuing CAs: %w", err)
		}
		r.CreatedAt, r.RemovedAt = fromMicros(created), fromMicros(removed)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the former issuing CAs: %w", err)
	}
	return out, nil
}

// ForgetIssuingCA implements caset.Store.
func (s *Store) ForgetIssuingCA(ctx context.Context, id string, ev device.AuditEvent) error {
	return s.write(ctx, "forget the former issuing CA", func(ctx context.Context, tx pgx.Tx) error {
		var ref string
		switch err := tx.QueryRow(ctx, `SELECT key_ref FROM ca_issuing_former WHERE id = $1`, id).Scan(&ref); {
		case errors.Is(err, pgx.ErrNoRows):
			return fault.NotFoundf("no former issuing CA %s (capf ca status lists them)", id)
		case err != nil:
			return fmt.Errorf("read the former issuing CA %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ca_issuing_former WHERE id = $1`, id); err != nil {
			return fmt.Errorf("forget the former issuing CA %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM keys WHERE id = $1`, ref); err != nil {
			return fmt.Errorf("forget the former issuing CA's key %s: %w", ref, err)
		}
		return bumpCASet(ctx, tx, ev)
	})
}

// DiscardPendingKey implements caset.Store.
func (s *Store) DiscardPendingKey(ctx context.Context, pendingID string, ev device.AuditEvent) error {
	return s.write(ctx, "discard the pending key", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM keys WHERE id = $1`, pendingID)
		if err != nil {
			return fmt.Errorf("discard the pending key: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fault.NotFoundf("no pending key %s (capf ca csr makes one)", pendingID)
		}
		return insertAudit(ctx, tx, ev)
	})
}
