package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
)

// insertAttemptSQL inserts an attempt: open (finished_at NULL) for a claim,
// closed for a failed authentication. Its foreign key fails if the device
// does not exist, and the partial unique index attempts_one_open refuses a
// second open attempt.
const insertAttemptSQL = `INSERT INTO attempts
	(device, operation, auth_mode, remote, started_at, finished_at, result, reason, node, sudi, config_rev)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`

// claimDeviceSQL applies a claim to its device, if its configuration is
// still at the revision the session read.
const claimDeviceSQL = `UPDATE devices SET
	status = CASE WHEN operation NOT IN ('', '` + string(device.OpNone) + `') THEN $1 ELSE status END,
	updated_at = CASE WHEN operation NOT IN ('', '` + string(device.OpNone) + `') THEN $2 ELSE updated_at END,
	auth_failures = 0,
	attempts_total = attempts_total + 1,
	last_contact_at = $2, last_contact_remote = $5,
	last_contact_outcome = '` + device.ContactInProgress + `', last_contact_reason = ''
	WHERE name = $3 AND config_rev = $4`

// pruneAttemptsSQL deletes a device's closed attempts older than its
// newest N (the OFFSET argument is N-1).
const pruneAttemptsSQL = `DELETE FROM attempts
	WHERE device = $1 AND finished_at IS NOT NULL
	AND id < (SELECT id FROM attempts WHERE device = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`

// countGuessSQL reserves the evaluation of one authentication-string guess:
// the device's counter still at the value the session read, a string to
// guess, and the counter below the limit (a limit <= 0: none).
const countGuessSQL = `UPDATE devices SET auth_failures = auth_failures + 1, last_auth_failure = $1
	WHERE name = $2 AND auth_failures = $3 AND auth_string <> '' AND ($4 <= 0 OR auth_failures < $4)`

const keepStatus = `EXISTS (SELECT 1 FROM attempts WHERE device = devices.name AND finished_at IS NULL)
	OR status LIKE '%: ` + device.ReasonTooManyAuthFailures + `'`

// failedAuthDeviceSQL counts a failed authentication on its device and
// shows it as the status, unless a session holds the device or its string
// was used up. It returns the device's attempt count.
const failedAuthDeviceSQL = `UPDATE devices SET attempts_total = attempts_total + 1,
	status = CASE WHEN ` + keepStatus + ` THEN status ELSE $1 END,
	updated_at = CASE WHEN ` + keepStatus + ` THEN updated_at ELSE $2 END,
	last_contact_at = $2, last_contact_remote = $4, last_contact_outcome = $5, last_contact_reason = $6
	WHERE name = $3 RETURNING attempts_total`

// recordContactSQL records a contact that ended before a session, unless
// the device has a newer one on record.
const recordContactSQL = `UPDATE devices SET
	last_contact_at = $1, last_contact_remote = $2, last_contact_outcome = $3, last_contact_reason = $4
	WHERE name = $5 AND (last_contact_at IS NULL OR last_contact_at <= $1)`

// StartAttempt claims the device for an authenticated session, in one
// READ COMMITTED transaction (see writeRowCAS): it applies the claim to
// the device if its revision is still a.Rev, which locks the device's row,
// and inserts the open attempt held by a.Node (the partial unique index
// refuses a second one: Conflict, and the transaction undoes the claim).
func (s *Store) StartAttempt(ctx context.Context, a device.Attempt) (device.Claim, error) {
	what := fmt.Sprintf("start attempt for device %q", a.Device)
	started := micros(a.StartedAt)
	var claim device.Claim
	err := s.writeRowCAS(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		claim = device.Claim{}
		if a.MaxOpen > 0 {
			// Claims under a limit take one transaction-scoped lock, so
			// the count below sees every claim committed before this one
			// (READ COMMITTED: each statement its own snapshot) and none
			// commits between the count and this claim's commit. It is
			// taken before the device row, in the same order by everyone.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, claimLimitLock); err != nil {
				return fmt.Errorf("%s: lock the claims: %w", what, err)
			}
			var open int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE finished_at IS NULL`).Scan(&open); err != nil {
				return fmt.Errorf("%s: count open attempts: %w", what, err)
			}
			if open >= a.MaxOpen {
				return fault.New(fault.Throttled, "max_concurrent_operations (%d) reached across the fleet", a.MaxOpen)
			}
		}
		// The claim's UPDATE locks the device row first: a concurrent
		// claim of the same device waits here until this one commits or
		// rolls back, then finds its open attempt below.
		tag, err := tx.Exec(ctx, claimDeviceSQL, device.StatusInProgress, started, a.Device, a.Rev, a.Remote)
		if err != nil {
			return fmt.Errorf("%s: claim device: %w", what, err)
		}
		if tag.RowsAffected() == 0 {
			return notClaimable(ctx, tx, a)
		}
		var id int64
		var node string
		err = tx.QueryRow(ctx, `SELECT id, node FROM attempts WHERE device = $1 AND finished_at IS NULL`, a.Device).Scan(&id, &node)
		switch {
		case err == nil:
			return fault.Conflictf("device %q has a session in progress (attempt %d, node %s)", a.Device, id, orUnknown(node))
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%s: %w", what, err)
		}
		err = tx.QueryRow(ctx, insertAttemptSQL,
			a.Device, string(a.Operation), a.AuthMode, a.Remote,
			started, nil, a.Result, a.Reason, a.Node, a.SUDI, a.Rev).Scan(&claim.AttemptID)
		switch {
		case isUnique(err):
			return fault.Conflictf("device %q has a session in progress", a.Device)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return device.Claim{}, err
	}
	return claim, nil
}

// claimLimitLock is the key of the transaction-scoped advisory lock that
// serialises the claims made under max_concurrent_operations ("capf" in
// ASCII, plus one: the migration lock is the key itself).
const claimLimitLock = migrationLock + 1

// CountOpenAttempts implements device.Store.
func (s *Store) CountOpenAttempts(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE finished_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count open attempts: %w", err)
	}
	return n, nil
}

// notClaimable says why the claim of a found no device at its revision.
func notClaimable(ctx context.Context, tx pgx.Tx, a device.Attempt) error {
	var rev int64
	err := tx.QueryRow(ctx, `SELECT config_rev FROM devices WHERE name = $1`, a.Device).Scan(&rev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fault.NotFoundf("device %q not found", a.Device)
	case err != nil:
		return fmt.Errorf("claim device %q: %w", a.Device, err)
	}
	return fault.Conflictf("device %q was changed by an administrator since the session read it (revision %d, now %d)", a.Device, a.Rev, rev)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// prune keeps the newest historyLimit closed attempts of a device.
func (s *Store) prune(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, pruneAttemptsSQL, name, s.historyLimit-1); err != nil {
		return fmt.Errorf("prune history of device %q: %w", name, err)
	}
	return nil
}

// CountAuthGuess reserves one string evaluation for the device if its
// counter still equals seen: a compare-and-swap in one UPDATE.
func (s *Store) CountAuthGuess(ctx context.Context, name string, seen, max int, at time.Time) (bool, error) {
	what := fmt.Sprintf("count authentication guess for device %q", name)
	ok := false
	err := s.writeRowCAS(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, countGuessSQL, micros(at), name, seen, max)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ok = tag.RowsAffected() == 1
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
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		locked = false
		var id int64
		err := tx.QueryRow(ctx, insertAttemptSQL,
			a.Device, string(a.Operation), a.AuthMode, a.Remote,
			micros(a.StartedAt), micros(a.FinishedAt), a.Result, a.Reason, a.Node, a.SUDI, a.Rev).Scan(&id)
		if isForeignKey(err) {
			return fault.NotFoundf("device %q not found", a.Device)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var total int64
		outcome, reason := device.ResultContact(a.Result, a.Reason)
		if err := tx.QueryRow(ctx, failedAuthDeviceSQL, a.Result, micros(a.FinishedAt), a.Device,
			a.Remote, outcome, reason).Scan(&total); err != nil {
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
		err = tx.QueryRow(ctx, `SELECT operation FROM devices
			WHERE name = $1 AND auth_mode = $2 AND auth_string <> '' AND auth_failures >= $3`,
			a.Device, string(device.AuthString), f.MaxFailures).Scan(&op)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: read device: %w", what, err)
		}
		status := device.FailedStatus(device.Operation(op), device.ReasonTooManyAuthFailures)
		if _, err := tx.Exec(ctx, `UPDATE devices SET auth_string = '',
			status = CASE WHEN EXISTS (SELECT 1 FROM attempts WHERE device = devices.name AND finished_at IS NULL)
				THEN status ELSE $1 END,
			updated_at = $2
			WHERE name = $3`, status, micros(a.FinishedAt), a.Device); err != nil {
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
	return s.writeRowCAS(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO issuances
			(serial, device, attempt_id, issuer, issued_at, not_before, not_after, der, issuer_key_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
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

// lscChange is what FinishAttempt does to the device's LSC.
type lscChange int

const (
	lscKeep  lscChange = iota // leave it
	lscSet                    // replace it with Outcome.SetLSC
	lscClear                  // remove it
)

// finishDeviceSQL returns the UPDATE that FinishAttempt applies to the
// attempt's device: $1 status, $2 updated_at (and the time of the phone's
// last contact), $3 the attempt's id, $4 and $5 the contact's outcome and
// reason, and for lscSet $6–$10 the five lsc_* values. The LSC is the session's fact and is
// always applied; the status, and for a completed operation the clearing
// of operation and string, only when no administrator changed the device's
// configuration since the claim.
func finishDeviceSQL(completed bool, lsc lscChange) string {
	const same = `devices.config_rev = a.rev`
	sets := []string{"status = CASE WHEN " + same + " THEN $1 ELSE status END", "updated_at = $2",
		"last_contact_at = $2", "last_contact_remote = a.remote", "last_contact_outcome = $4", "last_contact_reason = $5"}
	if completed {
		sets = append(sets,
			"operation = CASE WHEN "+same+" THEN '"+string(device.OpNone)+"' ELSE operation END",
			"auth_string = CASE WHEN "+same+" THEN '' ELSE auth_string END")
	}
	switch lsc {
	case lscSet:
		sets = append(sets, "lsc_serial = $6", "lsc_issuer = $7", "lsc_not_before = $8", "lsc_not_after = $9", "lsc_der = $10")
	case lscClear:
		sets = append(sets, "lsc_serial = NULL", "lsc_issuer = NULL", "lsc_not_before = NULL", "lsc_not_after = NULL", "lsc_der = NULL")
	}
	return `UPDATE devices SET ` + strings.Join(sets, ", ") +
		` FROM (SELECT device, config_rev AS rev, remote FROM attempts WHERE id = $3) AS a WHERE devices.name = a.device`
}

// RecordContacts records the latest contacts that ended before a session,
// in one READ COMMITTED transaction: each is a compare-and-swap on its
// device's row (newer contact wins).
func (s *Store) RecordContacts(ctx context.Context, cs []device.Contact) error {
	if len(cs) == 0 {
		return nil
	}
	what := fmt.Sprintf("record %d phone contacts", len(cs))
	return s.writeRowCAS(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, c := range cs {
			b.Queue(recordContactSQL, micros(c.At), c.Remote, c.Outcome, c.Reason, c.Device)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
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
	change := lscKeep
	outcome, reason := device.ResultContact(o.Result, o.Reason)
	args := []any{o.Result, finished, o.AttemptID, outcome, reason}
	switch {
	case o.SetLSC != nil:
		change = lscSet
		args = append(args, lscArgs(o.SetLSC)...)
	case o.ClearLSC:
		change = lscClear
	}
	update := finishDeviceSQL(o.Completed, change)
	return s.writeRowCAS(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE attempts
			SET finished_at = $1, auth_mode = $2, result = $3, reason = $4, sudi = $5
			WHERE id = $6 AND finished_at IS NULL AND node = $7`,
			finished, o.AuthMode, o.Result, o.Reason, o.SUDI, o.AttemptID, o.Node)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if tag.RowsAffected() == 0 {
			return notFinishable(ctx, tx, o)
		}
		if _, err := tx.Exec(ctx, update, args...); err != nil {
			return fmt.Errorf("%s: update device: %w", what, err)
		}
		// The LSCs the phone no longer holds go on their CAs' CRLs, in
		// this same transaction (lsc.Store).
		switch change {
		case lscSet:
			if _, err := tx.Exec(ctx, `UPDATE issuances SET revoked_at = $1, revocation_reason = 4, revoked_by = $2
				WHERE device = $3 AND serial <> $4 AND revoked_at IS NULL`,
				finished, lsc.SupersededBy(o.SetLSC.Serial, o.AttemptID), o.Device, o.SetLSC.Serial); err != nil {
				return fmt.Errorf("%s: supersede older LSCs: %w", what, err)
			}
		case lscClear:
			if _, err := tx.Exec(ctx, `UPDATE issuances SET revoked_at = $1, revocation_reason = 5, revoked_by = $2
				WHERE device = $3 AND revoked_at IS NULL`,
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

// notFinishable says why attempt o.AttemptID cannot be finished by o.Node.
func notFinishable(ctx context.Context, tx pgx.Tx, o device.Outcome) error {
	var finished *int64
	var node string
	err := tx.QueryRow(ctx, `SELECT finished_at, node FROM attempts WHERE id = $1`, o.AttemptID).Scan(&finished, &node)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fault.NotFoundf("attempt %d of device %q not found", o.AttemptID, o.Device)
	case err != nil:
		return fmt.Errorf("finish attempt %d: %w", o.AttemptID, err)
	case finished != nil:
		return fault.Conflictf("attempt %d of device %q was already closed", o.AttemptID, o.Device)
	}
	return fault.Conflictf("attempt %d of device %q is held by node %s, not %s", o.AttemptID, o.Device, orUnknown(node), orUnknown(o.Node))
}

// SaveFetchedCertificate keeps a certificate retrieved by Troubleshoot,
// replacing the device's record of the same certificate;
// NotFound if the device does not exist.
func (s *Store) SaveFetchedCertificate(ctx context.Context, fc device.FetchedCertificate) error {
	der := fc.DER
	if der == nil {
		der = []byte{}
	}
	what := fmt.Sprintf("save fetched %s certificate", fc.Type)
	return s.writeRowCAS(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM fetched_certificates WHERE device = $1 AND der = $2`, fc.Device, der); err != nil {
			return writeErr(what, fc.Device, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO fetched_certificates (device, type, fetched_at, der)
			VALUES ($1, $2, $3, $4)`, fc.Device, fc.Type, micros(fc.FetchedAt), der)
		if err != nil {
			return writeErr(what, fc.Device, err)
		}
		return nil
	})
}

// FailStaleAttempts closes every open attempt that q selects with result
// FailedStatus(op, reason) and finish time Options.Now, and gives that
// status to the attempts' devices still marked StatusInProgress. It
// returns how many attempts it closed.
func (s *Store) FailStaleAttempts(ctx context.Context, q device.StaleQuery, reason string) (int, error) {
	const what = "fail stale attempts"
	now := micros(s.now())
	n := 0
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		n = 0
		type stale struct {
			id     int64
			device string
			op     device.Operation
		}
		query := `SELECT id, device, operation FROM attempts WHERE finished_at IS NULL`
		var args []any
		if !q.StartedBefore.IsZero() {
			args = append(args, q.StartedBefore.UnixMicro())
			query += fmt.Sprintf(` AND (started_at IS NULL OR started_at < $%d)`, len(args))
		}
		if q.Node != "" {
			args = append(args, q.Node)
			query += fmt.Sprintf(` AND node = $%d`, len(args))
		}
		if !q.DeadAt.IsZero() {
			args = append(args, q.DeadAt.UnixMicro())
			query += fmt.Sprintf(` AND node IN (SELECT id FROM nodes WHERE expires_at <= $%d)`, len(args))
		}
		rows, err := tx.Query(ctx, query+` ORDER BY started_at NULLS FIRST, id`, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var found []stale
		for rows.Next() {
			var st stale
			var op string
			if err := rows.Scan(&st.id, &st.device, &op); err != nil {
				rows.Close()
				return fmt.Errorf("%s: scan: %w", what, err)
			}
			st.op = device.Operation(op)
			found = append(found, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		// Newest first: a device with several stale attempts gets the
		// status of its latest one.
		for i := len(found) - 1; i >= 0; i-- {
			st := found[i]
			result := device.FailedStatus(st.op, reason)
			if _, err := tx.Exec(ctx, `UPDATE attempts SET finished_at = $1, result = $2, reason = $3 WHERE id = $4`,
				now, result, reason, st.id); err != nil {
				return fmt.Errorf("%s: attempt %d: %w", what, st.id, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE devices SET status = $1, updated_at = $2 WHERE name = $3 AND status = $4`,
				result, now, st.device, device.StatusInProgress); err != nil {
				return fmt.Errorf("%s: device %q: %w", what, st.device, err)
			}
			// The phone's last contact, if it is the session now failed, says so.
			outcome, text := device.ResultContact(result, "")
			if _, err := tx.Exec(ctx, `UPDATE devices SET last_contact_outcome = $1, last_contact_reason = $2
				WHERE name = $3 AND last_contact_outcome = '`+device.ContactInProgress+`'`, outcome, text, st.device); err != nil {
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

// attemptColumns lists the attempts columns in the order queryAttempts
// reads them.
const attemptColumns = `id, device, operation, auth_mode, remote, started_at, finished_at, result, reason, node, sudi`

// queryAttempts returns the attempts of a query that selects
// attemptColumns.
func queryAttempts(ctx context.Context, q querier, query string, args ...any) ([]device.Attempt, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	as := []device.Attempt{}
	for rows.Next() {
		var (
			a                 device.Attempt
			op                string
			started, finished *int64
		)
		if err := rows.Scan(&a.ID, &a.Device, &op, &a.AuthMode, &a.Remote,
			&started, &finished, &a.Result, &a.Reason, &a.Node, &a.SUDI); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		a.Operation = device.Operation(op)
		a.StartedAt = fromMicros(started)
		a.FinishedAt = fromMicros(finished)
		as = append(as, a)
	}
	return as, rows.Err()
}

// ListAttempts returns a device's attempts, newest first, at most limit
// (all when limit <= 0).
func (s *Store) ListAttempts(ctx context.Context, name string, limit int) ([]device.Attempt, error) {
	as, err := queryAttempts(ctx, s.pool, `SELECT `+attemptColumns+` FROM attempts WHERE device = $1
		ORDER BY started_at DESC NULLS LAST, id DESC LIMIT $2`, name, limitArg(limit))
	if err != nil {
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
		query += ` WHERE device = $1`
		args = append(args, name)
	}
	query += ` ORDER BY issued_at DESC NULLS LAST, seq DESC`
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list issuances of device %q: %w", name, err)
	}
	defer rows.Close()
	list := []device.Issuance{}
	for rows.Next() {
		var (
			is                        device.Issuance
			issued, notBefore, notAft *int64
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
	rows, err := s.pool.Query(ctx, `SELECT device, type, fetched_at, der
		FROM fetched_certificates WHERE device = $1
		ORDER BY fetched_at DESC NULLS LAST, id DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("list fetched certificates of device %q: %w", name, err)
	}
	defer rows.Close()
	list := []device.FetchedCertificate{}
	for rows.Next() {
		var (
			fc      device.FetchedCertificate
			fetched *int64
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
