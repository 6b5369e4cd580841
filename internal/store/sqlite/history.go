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

// StartAttempt claims the device for an authenticated session: it applies
// the claim to the device if its revision is still a.Rev, and inserts the
// open attempt held by a.Node (the partial unique index refuses a second
// one: Conflict, and the savepoint undoes the claim).
func (s *Store) StartAttempt(ctx context.Context, a device.Attempt) (device.Claim, error) {
	what := fmt.Sprintf("start attempt for device %q", a.Device)
	started := micros(a.StartedAt)
	var claim device.Claim
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		if a.MaxOpen > 0 {
			// The single writer makes the count and the claim atomic.
			var open int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM attempts WHERE finished_at IS NULL`).Scan(&open); err != nil {
				return fmt.Errorf("%s: count open attempts: %w", what, err)
			}
			if open >= a.MaxOpen {
				return fleetBusy(a.MaxOpen)
			}
		}
		res, err := s.c.stmt(ctx, tx, s.ws.claimDevice).ExecContext(ctx,
			device.StatusInProgress, started, started, a.Remote, a.Device, a.Rev)
		if err != nil {
			return fmt.Errorf("%s: claim device: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return notClaimable(ctx, tx, a)
		}
		res, err = s.c.stmt(ctx, tx, s.ws.insertAttempt).ExecContext(ctx,
			a.Device, string(a.Operation), a.AuthMode, a.Remote,
			started, nil, a.Result, a.Reason, a.Node, a.SUDI, a.Rev, micros(a.Deadline))
		switch {
		case isUnique(err):
			return busyErr(ctx, tx, a.Device)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		if claim.AttemptID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return device.Claim{}, err
	}
	return claim, nil
}

// fleetBusy is the error of a claim refused at max_concurrent_operations.
func fleetBusy(max int) error {
	return fault.New(fault.Throttled, "max_concurrent_operations (%d) reached across the fleet", max)
}

// CountOpenAttempts implements device.Store.
func (s *Store) CountOpenAttempts(ctx context.Context) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM attempts WHERE finished_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count open attempts: %w", err)
	}
	return n, nil
}

// notClaimable says why the claim of a found no device at its revision.
func notClaimable(ctx context.Context, tx *sql.Tx, a device.Attempt) error {
	var rev int64
	err := tx.QueryRowContext(ctx, `SELECT config_rev FROM devices WHERE name = ?`, a.Device).Scan(&rev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fault.NotFoundf("device %q not found", a.Device)
	case err != nil:
		return fmt.Errorf("claim device %q: %w", a.Device, err)
	}
	return fault.Conflictf("device %q was changed by an administrator since the session read it (revision %d, now %d)", a.Device, a.Rev, rev)
}

// busyErr is the Conflict of a claim on a device that has an open attempt.
func busyErr(ctx context.Context, tx *sql.Tx, name string) error {
	var id int64
	var node string
	if err := tx.QueryRowContext(ctx, `SELECT id, node FROM attempts WHERE device = ? AND finished_at IS NULL`, name).Scan(&id, &node); err != nil {
		return fault.Conflictf("device %q has a session in progress", name)
	}
	return fault.Conflictf("device %q has a session in progress (attempt %d, node %s)", name, id, orUnknown(node))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// prune keeps the newest historyLimit closed attempts of a device.
func (s *Store) prune(ctx context.Context, tx *sql.Tx, name string) error {
	if _, err := s.c.stmt(ctx, tx, s.ws.pruneAttempts).ExecContext(ctx, name, name, s.historyLimit-1); err != nil {
		return fmt.Errorf("prune history of device %q: %w", name, err)
	}
	return nil
}

// CountAuthGuess reserves one string evaluation for the device if its
// counter still equals seen.
func (s *Store) CountAuthGuess(ctx context.Context, name string, seen, max int, at time.Time) (bool, error) {
	what := fmt.Sprintf("count authentication guess for device %q", name)
	ok := false
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.c.stmt(ctx, tx, s.ws.countGuess).ExecContext(ctx, micros(at), name, seen, max, max)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ok = n == 1
		return nil
	})
	return ok, err
}

// RecordAuthFailure appends the closed attempt of a failed authentication
// and, at the limit, uses the authentication string up.
func (s *Store) RecordAuthFailure(ctx context.Context, f device.AuthFailure) (bool, error) {
	a := f.Attempt
	what := fmt.Sprintf("record authentication failure for device %q", a.Device)
	locked := false
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.c.stmt(ctx, tx, s.ws.insertAttempt).ExecContext(ctx,
			a.Device, string(a.Operation), a.AuthMode, a.Remote,
			micros(a.StartedAt), micros(a.FinishedAt), a.Result, a.Reason, a.Node, a.SUDI, a.Rev, micros(a.Deadline))
		if isForeignKey(err) {
			return fault.NotFoundf("device %q not found", a.Device)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var total int64
		outcome, reason := device.ResultContact(a.Result, a.Reason)
		if err := s.c.stmt(ctx, tx, s.ws.failedAuthDevice).QueryRowContext(ctx,
			a.Result, micros(a.FinishedAt), a.Device, a.Remote, outcome, reason).Scan(&total); err != nil {
			return fmt.Errorf("%s: count: %w", what, err)
		}
		if total > int64(s.historyLimit) {
			if err := s.prune(ctx, tx, a.Device); err != nil {
				return err
			}
		}
		if f.MaxFailures <= 0 {
			return nil
		}
		var op string
		err = tx.QueryRowContext(ctx, `SELECT operation FROM devices
			WHERE name = ? AND auth_mode = ? AND auth_string <> '' AND auth_failures >= ?`,
			a.Device, string(device.AuthString), f.MaxFailures).Scan(&op)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: read device: %w", what, err)
		}
		status := device.FailedStatus(device.Operation(op), device.ReasonTooManyAuthFailures)
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET auth_string = '',
			status = CASE WHEN EXISTS (SELECT 1 FROM attempts WHERE device = devices.name AND finished_at IS NULL)
				THEN status ELSE ? END,
			updated_at = ?
			WHERE name = ?`, status, micros(a.FinishedAt), a.Device); err != nil {
			return fmt.Errorf("%s: use up string: %w", what, err)
		}
		locked = true
		return insertAudit(ctx, tx, device.AuditEvent{
			At: a.FinishedAt, Actor: device.Actor{Kind: device.ActorSystem, Remote: a.Remote},
			Action: device.AuditAuthStringLocked, Target: a.Device,
			Changes: []device.FieldChange{{Field: "auth-string", Old: "(set)", New: "(none)"}, {Field: "status", New: status}},
			Detail:  fmt.Sprintf("%d consecutive wrong authentication strings; the administrator must set a new one", f.MaxFailures),
		})
	})
	return locked, err
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
			micros(is.IssuedAt), micros(is.NotBefore), micros(is.NotAfter), der, is.IssuerKeyID)
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

// FinishAttempt closes an open attempt held by o.Node and applies its
// outcome to the device in one transaction; NotFound if the attempt is
// unknown, Conflict if it is closed or held by another node.
func (s *Store) FinishAttempt(ctx context.Context, o device.Outcome) error {
	what := fmt.Sprintf("finish attempt %d of device %q", o.AttemptID, o.Device)
	finished := micros(o.FinishedAt)
	completed, change := 0, lscKeep
	if o.Completed {
		completed = 1
	}
	args := make([]any, 0, 10) // of finishDeviceSQL
	outcome, reason := device.ResultContact(o.Result, o.Reason)
	args = append(args, o.Result, finished, o.AttemptID, outcome, reason)
	switch {
	case o.SetLSC != nil:
		change = lscSet
		args = appendLSC(args, o.SetLSC)
	case o.ClearLSC:
		change = lscClear
	}
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.c.stmt(ctx, tx, s.ws.finishAttempt).ExecContext(ctx,
			finished, o.AuthMode, o.Result, o.Reason, o.SUDI, o.AttemptID, o.Node)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return notFinishable(ctx, tx, o)
		}
		if _, err := s.c.stmt(ctx, tx, s.ws.finishDevice[completed][change]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("%s: update device: %w", what, err)
		}
		// The LSCs the phone no longer holds go on their CAs' CRLs, in
		// this same transaction (lsc.Store).
		switch change {
		case lscSet:
			if _, err := s.c.stmt(ctx, tx, s.ws.supersede).ExecContext(ctx,
				finished, lsc.SupersededBy(o.SetLSC.Serial, o.AttemptID), o.Device, o.SetLSC.Serial); err != nil {
				return fmt.Errorf("%s: supersede older LSCs: %w", what, err)
			}
		case lscClear:
			if _, err := s.c.stmt(ctx, tx, s.ws.retire).ExecContext(ctx,
				finished, lsc.DeletedBy(o.AttemptID), o.Device); err != nil {
				return fmt.Errorf("%s: revoke the deleted LSC: %w", what, err)
			}
		}
		if !o.Completed {
			// A phone failing again and again adds a row each time: keep
			// its history bounded (a no-op below the limit).
			return s.prune(ctx, tx, o.Device)
		}
		return nil
	})
}

// RecordContacts records the latest contacts that ended before a session,
// in one batch of the committer.
func (s *Store) RecordContacts(ctx context.Context, cs []device.Contact) error {
	if len(cs) == 0 {
		return nil
	}
	what := fmt.Sprintf("record %d phone contacts", len(cs))
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		st := s.c.stmt(ctx, tx, s.ws.recordContact)
		for _, c := range cs {
			if _, err := st.ExecContext(ctx, micros(c.At), c.Remote, c.Outcome, c.Reason, c.Device); err != nil {
				return fmt.Errorf("%s: device %q: %w", what, c.Device, err)
			}
		}
		return nil
	})
}

// notFinishable says why attempt o.AttemptID cannot be finished by o.Node.
func notFinishable(ctx context.Context, tx *sql.Tx, o device.Outcome) error {
	var finished sql.NullInt64
	var node string
	err := tx.QueryRowContext(ctx, `SELECT finished_at, node FROM attempts WHERE id = ?`, o.AttemptID).Scan(&finished, &node)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fault.NotFoundf("attempt %d of device %q not found", o.AttemptID, o.Device)
	case err != nil:
		return fmt.Errorf("finish attempt %d: %w", o.AttemptID, err)
	case finished.Valid:
		return fault.Conflictf("attempt %d of device %q was already closed", o.AttemptID, o.Device)
	}
	return fault.Conflictf("attempt %d of device %q is held by node %s, not %s", o.AttemptID, o.Device, orUnknown(node), orUnknown(o.Node))
}

// SaveFetchedCertificate keeps a certificate retrieved by Troubleshoot,
// replacing the device's record of the same certificate; NotFound if the
// device does not exist.
func (s *Store) SaveFetchedCertificate(ctx context.Context, fc device.FetchedCertificate) error {
	der := fc.DER
	if der == nil {
		der = []byte{}
	}
	what := fmt.Sprintf("save fetched %s certificate", fc.Type)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		// Troubleshoot is rare: this statement is not prepared ahead.
		if _, err := tx.ExecContext(ctx, `DELETE FROM fetched_certificates WHERE device = ? AND der = ?`, fc.Device, der); err != nil {
			return writeErr(what, fc.Device, err)
		}
		_, err := s.c.stmt(ctx, tx, s.ws.insertFetched).ExecContext(ctx,
			fc.Device, fc.Type, micros(fc.FetchedAt), der)
		if err != nil {
			return writeErr(what, fc.Device, err)
		}
		return nil
	})
}

// FailStaleAttempts closes every open attempt that q selects with result FailedStatus(op, reason) and finish time Options.Now, and
// gives that status to the attempts' devices still marked
// StatusInProgress. It returns how many attempts it closed.
func (s *Store) FailStaleAttempts(ctx context.Context, q device.StaleQuery, reason string) (int, error) {
	const what = "fail stale attempts"
	now := micros(s.now())
	n := 0
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		type stale struct {
			id     int64
			device string
			op     device.Operation
		}
		query := `SELECT id, device, operation FROM attempts WHERE finished_at IS NULL`
		var args []any
		switch overdue, before := !q.OverdueAt.IsZero(), !q.StartedBefore.IsZero(); {
		case overdue && before:
			query += ` AND (deadline < ? OR (deadline IS NULL AND (started_at IS NULL OR started_at < ?)))`
			args = append(args, q.OverdueAt.UnixMicro(), q.StartedBefore.UnixMicro())
		case overdue:
			query += ` AND deadline < ?`
			args = append(args, q.OverdueAt.UnixMicro())
		case before:
			query += ` AND (started_at IS NULL OR started_at < ?)`
			args = append(args, q.StartedBefore.UnixMicro())
		}
		if q.Node != "" {
			query += ` AND node = ?`
			args = append(args, q.Node)
		}
		if !q.DeadAt.IsZero() {
			query += ` AND node IN (SELECT id FROM nodes WHERE expires_at <= ?)`
			args = append(args, q.DeadAt.UnixMicro())
		}
		rows, err := tx.QueryContext(ctx, query+` ORDER BY started_at, id`, args...)
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
		// The phone's last contact, if it is the session now failed, says so.
		failContact, err := tx.PrepareContext(ctx, `UPDATE devices SET last_contact_outcome = ?, last_contact_reason = ?
			WHERE name = ? AND last_contact_outcome = '`+device.ContactInProgress+`'`)
		if err != nil {
			return fmt.Errorf("%s: prepare: %w", what, err)
		}
		defer failContact.Close()
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
			outcome, text := device.ResultContact(result, "")
			if _, err := failContact.ExecContext(ctx, outcome, text, st.device); err != nil {
				return fmt.Errorf("%s: device %q: contact: %w", what, st.device, err)
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
		started_at, finished_at, result, reason, node, sudi
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
			&started, &finished, &a.Result, &a.Reason, &a.Node, &a.SUDI); err != nil {
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
	query := `SELECT serial, device, attempt_id, issuer, issued_at, not_before, not_after, der, issuer_key_id FROM issuances`
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
			&issued, &notBefore, &notAft, &is.DER, &is.IssuerKeyID); err != nil {
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
