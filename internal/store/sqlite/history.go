package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// StartAttempt records the start of a phone session and returns its id. If
// the device has an operation pending, its status becomes
// device.StatusInProgress in the same transaction.
func (s *Store) StartAttempt(ctx context.Context, a device.Attempt) (int64, error) {
	what := fmt.Sprintf("start attempt for device %q", a.Device)
	started := micros(a.StartedAt)
	var id int64
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		// The foreign key of the attempt's device fails if there is none.
		res, err := s.c.stmt(ctx, tx, s.ws.insertAttempt).ExecContext(ctx,
			a.Device, string(a.Operation), a.AuthMode, a.Remote,
			started, micros(a.FinishedAt), a.Result, a.Reason)
		if isForeignKey(err) {
			return fault.NotFoundf("device %q not found", a.Device)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := s.c.stmt(ctx, tx, s.ws.markInProgress).ExecContext(ctx,
			device.StatusInProgress, started, a.Device); err != nil {
			return fmt.Errorf("%s: set status: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// RecordIssuance durably records a certificate about to be sent to a
// phone; Conflict if the serial was recorded before.
func (s *Store) RecordIssuance(ctx context.Context, is device.Issuance) error {
	der := is.DER
	if der == nil {
		der = []byte{}
	}
	what := fmt.Sprintf("record issuance %s for device %q", is.Serial, is.Device)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.c.stmt(ctx, tx, s.ws.insertIssuance).ExecContext(ctx,
			is.Serial, is.Device, is.AttemptID, is.Issuer,
			micros(is.IssuedAt), micros(is.NotBefore), micros(is.NotAfter), der)
		if isUnique(err) {
			return fmt.Errorf("record issuance for device %q: %w", is.Device,
				fault.Conflictf("certificate serial %s was issued before", is.Serial))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// FinishAttempt closes an attempt and applies its outcome to the device in
// one transaction; NotFound if the attempt is unknown.
func (s *Store) FinishAttempt(ctx context.Context, o device.Outcome) error {
	what := fmt.Sprintf("finish attempt %d of device %q", o.AttemptID, o.Device)
	finished := micros(o.FinishedAt)
	completed, lsc := 0, lscKeep
	if o.Completed {
		completed = 1
	}
	args := make([]any, 0, 8) // of finishDeviceSQL
	args = append(args, o.Result, finished)
	switch {
	case o.SetLSC != nil:
		lsc = lscSet
		args = appendLSC(args, o.SetLSC)
	case o.ClearLSC:
		lsc = lscClear
	}
	args = append(args, o.AttemptID)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.c.stmt(ctx, tx, s.ws.finishAttempt).ExecContext(ctx,
			finished, o.AuthMode, o.Result, o.Reason, o.SUDI, o.AttemptID)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fault.NotFoundf("attempt %d of device %q not found", o.AttemptID, o.Device)
		}
		if _, err := s.c.stmt(ctx, tx, s.ws.finishDevice[completed][lsc]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("%s: update device: %w", what, err)
		}
		return nil
	})
}

// SaveFetchedCertificate keeps a certificate retrieved by Troubleshoot;
// NotFound if the device does not exist.
func (s *Store) SaveFetchedCertificate(ctx context.Context, fc device.FetchedCertificate) error {
	der := fc.DER
	if der == nil {
		der = []byte{}
	}
	what := fmt.Sprintf("save fetched %s certificate", fc.Type)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.c.stmt(ctx, tx, s.ws.insertFetched).ExecContext(ctx,
			fc.Device, fc.Type, micros(fc.FetchedAt), der)
		if err != nil {
			return writeErr(what, fc.Device, err)
		}
		return nil
	})
}

// FailStaleAttempts closes every open attempt that started before cutoff
// with result FailedStatus(op, reason) and finish time Options.Now, and
// gives that status to the attempts' devices still marked
// StatusInProgress. It returns how many attempts it closed.
func (s *Store) FailStaleAttempts(ctx context.Context, cutoff time.Time, reason string) (int, error) {
	const what = "fail stale attempts"
	now := micros(s.now())
	n := 0
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		type stale struct {
			id     int64
			device string
			op     device.Operation
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, device, operation FROM attempts
			WHERE finished_at IS NULL AND (started_at IS NULL OR started_at < ?)
			ORDER BY started_at, id`, cutoff.UnixMicro())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer rows.Close()
		var found []stale
		for rows.Next() {
			var st stale
			var op string
			if err := rows.Scan(&st.id, &st.device, &op); err != nil {
				return fmt.Errorf("%s: scan: %w", what, err)
			}
			st.op = device.Operation(op)
			found = append(found, st)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		rows.Close()

		closeAttempt, err := tx.PrepareContext(ctx, `UPDATE attempts SET finished_at = ?, result = ?, reason = ? WHERE id = ?`)
		if err != nil {
			return fmt.Errorf("%s: prepare: %w", what, err)
		}
		defer closeAttempt.Close()
		failDevice, err := tx.PrepareContext(ctx, `UPDATE devices SET status = ?, updated_at = ? WHERE name = ? AND status = ?`)
		if err != nil {
			return fmt.Errorf("%s: prepare: %w", what, err)
		}
		defer failDevice.Close()
		// Newest first: a device with several stale attempts gets the
		// status of its latest one, since after the first update its status
		// no longer matches StatusInProgress.
		for i := len(found) - 1; i >= 0; i-- {
			st := found[i]
			result := device.FailedStatus(st.op, reason)
			if _, err := closeAttempt.ExecContext(ctx, now, result, reason, st.id); err != nil {
				return fmt.Errorf("%s: attempt %d: %w", what, st.id, err)
			}
			if _, err := failDevice.ExecContext(ctx, result, now, st.device, device.StatusInProgress); err != nil {
				return fmt.Errorf("%s: device %q: %w", what, st.device, err)
			}
		}
		n = len(found)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ListAttempts returns a device's attempts, newest first, at most limit
// (all when limit <= 0).
func (s *Store) ListAttempts(ctx context.Context, name string, limit int) ([]device.Attempt, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, device, operation, auth_mode, remote,
		started_at, finished_at, result, reason, sudi
		FROM attempts WHERE device = ?
		ORDER BY started_at DESC, id DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("list attempts of device %q: %w", name, err)
	}
	defer rows.Close()
	as := []device.Attempt{}
	for rows.Next() {
		var (
			a                 device.Attempt
			op                string
			started, finished sql.NullInt64
		)
		if err := rows.Scan(&a.ID, &a.Device, &op, &a.AuthMode, &a.Remote,
			&started, &finished, &a.Result, &a.Reason, &a.SUDI); err != nil {
			return nil, fmt.Errorf("list attempts of device %q: scan: %w", name, err)
		}
		a.Operation = device.Operation(op)
		a.StartedAt = fromMicros(started)
		a.FinishedAt = fromMicros(finished)
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list attempts of device %q: %w", name, err)
	}
	return as, nil
}

// ListIssuances returns the certificates issued to a device, newest first;
// all issuances for device "".
func (s *Store) ListIssuances(ctx context.Context, name string) ([]device.Issuance, error) {
	query := `SELECT serial, device, attempt_id, issuer, issued_at, not_before, not_after, der FROM issuances`
	var args []any
	if name != "" {
		query += ` WHERE device = ?`
		args = append(args, name)
	}
	query += ` ORDER BY issued_at DESC, rowid DESC`
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list issuances of device %q: %w", name, err)
	}
	defer rows.Close()
	list := []device.Issuance{}
	for rows.Next() {
		var (
			is                        device.Issuance
			issued, notBefore, notAft sql.NullInt64
		)
		if err := rows.Scan(&is.Serial, &is.Device, &is.AttemptID, &is.Issuer,
			&issued, &notBefore, &notAft, &is.DER); err != nil {
			return nil, fmt.Errorf("list issuances of device %q: scan: %w", name, err)
		}
		is.IssuedAt = fromMicros(issued)
		is.NotBefore = fromMicros(notBefore)
		is.NotAfter = fromMicros(notAft)
		list = append(list, is)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list issuances of device %q: %w", name, err)
	}
	return list, nil
}

// ListFetchedCertificates returns the certificates Troubleshoot retrieved
// from a device, newest first.
func (s *Store) ListFetchedCertificates(ctx context.Context, name string) ([]device.FetchedCertificate, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT device, type, fetched_at, der
		FROM fetched_certificates WHERE device = ?
		ORDER BY fetched_at DESC, id DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("list fetched certificates of device %q: %w", name, err)
	}
	defer rows.Close()
	list := []device.FetchedCertificate{}
	for rows.Next() {
		var (
			fc      device.FetchedCertificate
			fetched sql.NullInt64
		)
		if err := rows.Scan(&fc.Device, &fc.Type, &fetched, &fc.DER); err != nil {
			return nil, fmt.Errorf("list fetched certificates of device %q: scan: %w", name, err)
		}
		fc.FetchedAt = fromMicros(fetched)
		list = append(list, fc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list fetched certificates of device %q: %w", name, err)
	}
	return list, nil
}
