package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
)

var _ lsc.Store = (*Store)(nil)

// certColumns are the columns scanCert reads, in its order.
const certColumns = `serial, device, attempt_id, issuer, issuer_key_id, issued_at, not_before, not_after, der,
	revoked_at, revocation_reason, revoked_by`

// revokedColumns are certColumns with the DER only for issuances
// recorded without an issuer key id (ListRevoked).
const revokedColumns = `serial, device, attempt_id, issuer, issuer_key_id, issued_at, not_before, not_after,
	CASE WHEN issuer_key_id = '' THEN der ELSE NULL END, revoked_at, revocation_reason, revoked_by`

// scanCert reads one row of certColumns.
func scanCert(row interface{ Scan(...any) error }) (lsc.Record, error) {
	var (
		r                                  lsc.Record
		issued, notBefore, notAft, revoked sql.NullInt64
	)
	if err := row.Scan(&r.Serial, &r.Device, &r.AttemptID, &r.Issuer, &r.IssuerKeyID,
		&issued, &notBefore, &notAft, &r.DER, &revoked, &r.Reason, &r.RevokedBy); err != nil {
		return lsc.Record{}, err
	}
	r.IssuedAt, r.NotBefore, r.NotAfter = fromMicros(issued), fromMicros(notBefore), fromMicros(notAft)
	r.RevokedAt = fromMicros(revoked)
	return r, nil
}

// statusWhere returns the condition that selects st at now, and its
// arguments.
func statusWhere(st lsc.Status, now time.Time) (string, []any) {
	switch st {
	case lsc.StatusValid:
		return `revoked_at IS NULL AND not_after >= ?`, []any{now.UnixMicro()}
	case lsc.StatusExpired:
		return `revoked_at IS NULL AND not_after < ?`, []any{now.UnixMicro()}
	case lsc.StatusSuperseded:
		return `revoked_at IS NOT NULL AND revocation_reason = 4`, nil
	case lsc.StatusRevoked:
		return `revoked_at IS NOT NULL AND revocation_reason <> 4`, nil
	}
	return "", nil
}

// ListCertificates implements lsc.Store.
func (s *Store) ListCertificates(ctx context.Context, q lsc.Query) ([]lsc.Record, error) {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	query := `SELECT ` + certColumns + ` FROM issuances WHERE 1 = 1`
	var args []any
	if q.Device != "" {
		query += ` AND device = ?`
		args = append(args, q.Device)
	}
	if q.Status != "" {
		cond, a := statusWhere(q.Status, q.Now)
		if cond == "" {
			return nil, fault.Invalidf("list certificates: status %q: unknown", q.Status)
		}
		query += ` AND ` + cond
		args = append(args, a...)
	}
	query += ` ORDER BY issued_at DESC, rowid DESC`
	if q.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	return s.queryCerts(ctx, "list certificates", query, args...)
}

// queryCerts runs query on the read pool and scans its certColumns rows.
func (s *Store) queryCerts(ctx context.Context, what, query string, args ...any) ([]lsc.Record, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	list := []lsc.Record{}
	for rows.Next() {
		r, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: scan: %w", what, err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return list, nil
}

// GetCertificate implements lsc.Store.
func (s *Store) GetCertificate(ctx context.Context, serial string) (lsc.Record, error) {
	r, err := scanCert(s.read.QueryRowContext(ctx, `SELECT `+certColumns+` FROM issuances WHERE serial = ?`, serial))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lsc.Record{}, fault.NotFoundf("certificate %s not found", serial)
	case err != nil:
		return lsc.Record{}, fmt.Errorf("get certificate %s: %w", serial, err)
	}
	return r, nil
}

// RevokeCertificate implements lsc.Store.
func (s *Store) RevokeCertificate(ctx context.Context, serial string, rev lsc.Revocation, ev device.AuditEvent) (lsc.Record, error) {
	what := "revoke certificate " + serial
	var out lsc.Record
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		r, err := scanCert(tx.QueryRowContext(ctx, `SELECT `+certColumns+` FROM issuances WHERE serial = ?`, serial))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fault.NotFoundf("certificate %s not found", serial)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		case r.Revoked():
			return fault.Conflictf("certificate %s was revoked already (%s, %s)", serial, r.Reason, r.RevokedAt.Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issuances SET revoked_at = ?, revocation_reason = ?, revoked_by = ?
			WHERE serial = ?`, micros(rev.At), int(rev.Reason), rev.By, serial); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ev.Detail == "" {
			ev.Detail = "LSC of device " + r.Device
		}
		if err := insertAudit(ctx, tx, ev); err != nil {
			return err
		}
		r.RevokedAt, r.Reason, r.RevokedBy = fromMicros(sql.NullInt64{Int64: rev.At.UnixMicro(), Valid: true}), rev.Reason, rev.By
		out = r
		return nil
	})
	return out, err
}

// ListRevoked implements lsc.Store.
func (s *Store) ListRevoked(ctx context.Context, issuerKeyID string, now time.Time) ([]lsc.Record, error) {
	return s.queryCerts(ctx, "list revoked certificates",
		`SELECT `+revokedColumns+` FROM issuances
		WHERE revoked_at IS NOT NULL AND issuer_key_id IN (?, '') AND not_after >= ?
		ORDER BY revoked_at, rowid`, issuerKeyID, now.UnixMicro())
}

// CountRevoked implements lsc.Store.
func (s *Store) CountRevoked(ctx context.Context, issuerKeyID string) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM issuances
		WHERE revoked_at IS NOT NULL AND issuer_key_id IN (?, '')`, issuerKeyID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count revoked certificates: %w", err)
	}
	return n, nil
}

// SaveCRL implements lsc.Store.
func (s *Store) SaveCRL(ctx context.Context, c lsc.CRL) (bool, error) {
	saved := false
	err := s.submit(ctx, "save CRL", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO crls (issuer_key_id, number, this_update, next_update, der)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (issuer_key_id) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
				next_update = excluded.next_update, der = excluded.der
			WHERE excluded.number > crls.number`,
			c.IssuerKeyID, c.Number, c.ThisUpdate.UnixMicro(), c.NextUpdate.UnixMicro(), c.DER)
		if err != nil {
			return fmt.Errorf("save CRL of %s: %w", c.IssuerKeyID, err)
		}
		n, err := res.RowsAffected()
		saved = err == nil && n > 0
		return err
	})
	return saved, err
}

// GetCRL implements lsc.Store.
func (s *Store) GetCRL(ctx context.Context, issuerKeyID string) (lsc.CRL, error) {
	c := lsc.CRL{IssuerKeyID: issuerKeyID}
	var this, next int64
	err := s.read.QueryRowContext(ctx, `SELECT number, this_update, next_update, der FROM crls WHERE issuer_key_id = ?`,
		issuerKeyID).Scan(&c.Number, &this, &next, &c.DER)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lsc.CRL{}, fault.NotFoundf("no CRL of CA %s yet", issuerKeyID)
	case err != nil:
		return lsc.CRL{}, fmt.Errorf("get CRL of %s: %w", issuerKeyID, err)
	}
	c.ThisUpdate, c.NextUpdate = time.UnixMicro(this).UTC(), time.UnixMicro(next).UTC()
	return c, nil
}
