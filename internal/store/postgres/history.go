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

// insertAttemptSQL inserts the closed attempt of a failed authentication
// (claimSQL opens the attempts of claims). Its foreign key fails if the
// device does not exist.
const insertAttemptSQL = `INSERT INTO attempts
	(device, operation, auth_mode, remote, started_at, finished_at, result, reason, node, sudi, config_rev)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`

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

// claimSQL applies a claim to its device, if its configuration is still at
// the revision the session read and, when $12 > 0, fewer than $12 attempts
// are open across the fleet, and inserts the open attempt held by $8 for
// the device it claimed: one statement, so one implicit transaction and one
// round trip. The claim's UPDATE locks the device row first: a concurrent
// claim of the same device waits there until this one commits or rolls
// back, then fails on the partial unique index attempts_one_open, and the
// failed statement undoes its own claim. No row back: the device is
// missing, at another revision, or the limit is reached (notClaimable says
// which).
const claimSQL = `WITH claimed AS (UPDATE devices SET
	status = CASE WHEN operation NOT IN ('', '` + string(device.OpNone) + `') THEN $1 ELSE status END,
	updated_at = CASE WHEN operation NOT IN ('', '` + string(device.OpNone) + `') THEN $2 ELSE updated_at END,
	auth_failures = 0,
	attempts_total = attempts_total + 1,
	last_contact_at = $2, last_contact_remote = $5,
	last_contact_outcome = '` + device.ContactInProgress + `', last_contact_reason = ''
	WHERE name = $3 AND config_rev = $4
	AND ($12::bigint <= 0 OR (SELECT count(*) FROM attempts WHERE finished_at IS NULL) < $12::bigint)
	RETURNING name)
	INSERT INTO attempts (device, operation, auth_mode, remote, started_at, result, reason, node, sudi, config_rev, deadline)
	SELECT name, $6::text, $7::text, $5::text, $2::bigint, $9::text, $10::text, $8::text, $11::text, $4::bigint, $13::bigint FROM claimed
	RETURNING id`

// claimLimitSQL takes the transaction-scoped lock that serialises the
// claims made under max_concurrent_operations.
const claimLimitSQL = `SELECT pg_advisory_xact_lock($1)`

// StartAttempt claims the device for an authenticated session in one round
// trip: claimSQL alone, or, when a.MaxOpen > 0, claimLimitSQL then claimSQL
// in one batch, which PostgreSQL runs as one implicit transaction. The
// lock, taken before the device row in the same order by every claim, is
// held until that transaction ends, and claimSQL, a later statement at READ
// COMMITTED, counts the open attempts in a snapshot taken after the lock:
// it sees every claim committed before this one and none commits between
// the count and this claim's commit. A deadlock runs the batch again (see
// retryStatement).
func (s *Store) StartAttempt(ctx context.Context, a device.Attempt) (device.Claim, error) {
	what := fmt.Sprintf("start attempt for device %q", a.Device)
	args := []any{device.StatusInProgress, micros(a.StartedAt), a.Device, a.Rev, a.Remote,
		string(a.Operation), a.AuthMode, a.Node, a.Result, a.Reason, a.SUDI, int64(max(a.MaxOpen, 0)), micros(a.Deadline)}
	var claim device.Claim
	claimed := false
	err := s.retryStatement(ctx, func(ctx context.Context) error {
		claim, claimed = device.Claim{}, false
		var err error
		if a.MaxOpen > 0 {
			b := &pgx.Batch{}
			b.Queue(claimLimitSQL, claimLimitLock)
			b.Queue(claimSQL, args...).QueryRow(func(row pgx.Row) error {
				return row.Scan(&claim.AttemptID)
			})
			err = s.pool.SendBatch(ctx, b).Close()
		} else {
			err = s.pool.QueryRow(ctx, claimSQL, args...).Scan(&claim.AttemptID)
		}
		switch {
		case err == nil:
			claimed = true
		case errors.Is(err, pgx.ErrNoRows):
		default:
			return err
		}
		return nil
	})
	switch {
	case isUnique(err):
		return device.Claim{}, s.sessionInProgress(ctx, a.Device)
	case err != nil:
		return device.Claim{}, fmt.Errorf("%s: %w", what, err)
	case !claimed:
		return device.Claim{}, s.notClaimable(ctx, a)
	}
	return claim, nil
}

// sessionInProgress is the Conflict of a claim refused because the device
// has an open attempt, naming the attempt and its node when it is still
// open.
func (s *Store) sessionInProgress(ctx context.Context, name string) error {
	var id int64
	var node string
	err := s.pool.QueryRow(ctx, `SELECT id, node FROM attempts WHERE device = $1 AND finished_at IS NULL`, name).Scan(&id, &node)
	if err != nil {
		return fault.Conflictf("device %q has a session in progress", name)
	}
	return fault.Conflictf("device %q has a session in progress (attempt %d, node %s)", name, id, orUnknown(node))
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

// notClaimable says why the claim of a found no device to claim: the
// device is missing, was changed since the session read it, or (the only
// reason left) the fleet's limit of open attempts was reached. It reads
// after the claim's statement, so a change in between may name the later
// state; every answer tells the phone to come back.
func (s *Store) notClaimable(ctx context.Context, a device.Attempt) error {
	var rev int64
	err := s.pool.QueryRow(ctx, `SELECT config_rev FROM devices WHERE name = $1`, a.Device).Scan(&rev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fault.NotFoundf("device %q not found", a.Device)
	case err != nil:
		return fmt.Errorf("claim device %q: %w", a.Device, err)
	case rev != a.Rev:
		return fault.Conflictf("device %q was changed by an administrator since the session read it (revision %d, now %d)", a.Device, a.Rev, rev)
	}
	return fault.New(fault.Throttled, "max_concurrent_operations (%d) reached across the fleet", a.MaxOpen)
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
	// One INSERT is atomic on its own: no transaction around it, one
	// round trip.
	err := s.retryStatement(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO issuances
			(serial, device, attempt_id, issuer, issued_at, not_before, not_after, der, issuer_key_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			is.Serial, is.Device, is.AttemptID, is.Issuer,
			micros(is.IssuedAt), micros(is.NotBefore), micros(is.NotAfter), der, is.IssuerKeyID)
		return err
	})
	switch {
	case isUnique(err):
		return fmt.Errorf("record issuance for device %q: %w", is.Device,
			fault.Conflictf("certificate serial %s was issued before", is.Serial))
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// lscChange is what FinishAttempt does to the device's LSC.
type lscChange int

const (
	lscKeep  lscChange = iota // leave it
	lscSet                    // replace it with Outcome.SetLSC
	lscClear                  // remove it
)

// finishSQL returns the one statement of FinishAttempt: it closes attempt
// $3 if it is open and held by node $9 ($2 the finish time, $1 the result,
// which is also the device's status, $6 the authentication mode, $7 the
// reason, $8 the SUDI outcome), applies the outcome to the attempt's
// device ($4 and $5 the contact's outcome and reason; for lscSet $11–$15
// the five lsc_* values) and puts the LSCs device $10 no longer holds on
// their CAs' CRLs ($16, or $11 for lscClear: the revoked_by text; $10
// and these only for lscSet and lscClear). It
// returns how many attempts it closed (0 or 1); with 0 it changed nothing,
// since the device and issuance updates join the closed attempt. An
// outcome that did not complete the operation also prunes the device's
// history to its newest N attempts (pruneAttemptsSQL's rule; $nargs+1 is
// N-1), a no-op while the history is within its limit.
//
// The LSC is the session's fact and is always applied; the status, and
// for a completed operation the clearing of operation and string, only
// when no administrator changed the device's configuration since the
// claim (the attempt's config_rev).
func finishSQL(completed bool, lsc lscChange, nargs int) string {
	const same = `devices.config_rev = a.rev`
	sets := []string{"status = CASE WHEN " + same + " THEN $1 ELSE status END", "updated_at = $2",
		"last_contact_at = $2", "last_contact_remote = a.remote", "last_contact_outcome = $4", "last_contact_reason = $5"}
	if completed {
		sets = append(sets,
			"operation = CASE WHEN "+same+" THEN '"+string(device.OpNone)+"' ELSE operation END",
			"auth_string = CASE WHEN "+same+" THEN '' ELSE auth_string END")
	}
	revoke := ""
	switch lsc {
	case lscSet:
		sets = append(sets, "lsc_serial = $11", "lsc_issuer = $12", "lsc_not_before = $13", "lsc_not_after = $14", "lsc_der = $15")
		revoke = `, superseded AS (UPDATE issuances SET revoked_at = $2, revocation_reason = 4, revoked_by = $16
			WHERE device = $10 AND serial <> $11 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM fin))`
	case lscClear:
		sets = append(sets, "lsc_serial = NULL", "lsc_issuer = NULL", "lsc_not_before = NULL", "lsc_not_after = NULL", "lsc_der = NULL")
		revoke = `, deleted AS (UPDATE issuances SET revoked_at = $2, revocation_reason = 5, revoked_by = $11
			WHERE device = $10 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM fin))`
	}
	prune := ""
	if !completed {
		// The statement's snapshot still sees the attempt it closes as
		// open; pruneAttemptsSQL's cut counts open and closed attempts
		// alike, so the rows it keeps are the same.
		prune = fmt.Sprintf(`, pruned AS (DELETE FROM attempts
			WHERE device = (SELECT device FROM fin) AND finished_at IS NOT NULL
			AND id < (SELECT id FROM attempts WHERE device = (SELECT device FROM fin) ORDER BY id DESC LIMIT 1 OFFSET $%d))`, nargs+1)
	}
	return `WITH fin AS (UPDATE attempts SET finished_at = $2, auth_mode = $6, result = $1, reason = $7, sudi = $8
		WHERE id = $3 AND finished_at IS NULL AND node = $9
		RETURNING device, config_rev AS rev, remote),
	dev AS (UPDATE devices SET ` + strings.Join(sets, ", ") + ` FROM fin AS a WHERE devices.name = a.device)` + revoke + prune + `
	SELECT count(*) FROM fin`
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
// outcome to the device in one statement (finishSQL: one implicit
// transaction, one round trip); NotFound if the attempt is unknown,
// Conflict if it is closed or held by another node, and then nothing
// changed.
func (s *Store) FinishAttempt(ctx context.Context, o device.Outcome) error {
	what := fmt.Sprintf("finish attempt %d of device %q", o.AttemptID, o.Device)
	change := lscKeep
	outcome, reason := device.ResultContact(o.Result, o.Reason)
	args := []any{o.Result, micros(o.FinishedAt), o.AttemptID, outcome, reason,
		o.AuthMode, o.Reason, o.SUDI, o.Node}
	switch {
	case o.SetLSC != nil:
		change = lscSet
		args = append(args, o.Device)
		args = append(args, lscArgs(o.SetLSC)...)
		args = append(args, lsc.SupersededBy(o.SetLSC.Serial, o.AttemptID))
	case o.ClearLSC:
		change = lscClear
		args = append(args, o.Device, lsc.DeletedBy(o.AttemptID))
	}
	query := finishSQL(o.Completed, change, len(args))
	if !o.Completed {
		// A phone failing again and again adds a row each time: keep
		// its history bounded.
		args = append(args, s.historyLimit-1)
	}
	var closed int64
	err := s.retryStatement(ctx, func(ctx context.Context) error {
		closed = 0
		return s.pool.QueryRow(ctx, query, args...).Scan(&closed)
	})
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case closed == 0:
		return s.notFinishable(ctx, o)
	}
	return nil
}

// notFinishable says why attempt o.AttemptID cannot be finished by o.Node.
func (s *Store) notFinishable(ctx context.Context, o device.Outcome) error {
	var finished *int64
	var node string
	err := s.pool.QueryRow(ctx, `SELECT finished_at, node FROM attempts WHERE id = $1`, o.AttemptID).Scan(&finished, &node)
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
		switch overdue, before := !q.OverdueAt.IsZero(), !q.StartedBefore.IsZero(); {
		case overdue && before:
			args = append(args, q.OverdueAt.UnixMicro(), q.StartedBefore.UnixMicro())
			query += fmt.Sprintf(` AND (deadline < $%d OR (deadline IS NULL AND (started_at IS NULL OR started_at < $%d)))`, len(args)-1, len(args))
		case overdue:
			args = append(args, q.OverdueAt.UnixMicro())
			query += fmt.Sprintf(` AND deadline < $%d`, len(args))
		case before:
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
