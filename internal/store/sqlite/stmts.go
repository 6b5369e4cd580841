package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/capf-server/capf/internal/device"
)

// The statements of a phone session's hot path (GetDevice at
// authentication, then StartAttempt, RecordIssuance, FinishAttempt,
// SaveFetchedCertificate) are prepared once, when the store opens: parsing
// and planning a statement costs more CPU than running one of these.
//
// A read statement is prepared on the read pool; database/sql prepares it
// again, lazily, on each pool connection it runs on. A write statement is
// prepared on the writer's one connection and runs inside a batch's
// transaction through tx.StmtContext, which finds it prepared on that
// connection already (and prepares it again should the connection ever be
// replaced).

// getDeviceSQL reads one device by name.
const getDeviceSQL = `SELECT ` + deviceColumns + ` FROM devices WHERE name = ?`

// insertAttemptSQL inserts an attempt: open (finished_at NULL) for a claim,
// closed for a failed authentication. It records the device's config_rev;
// its foreign key fails if the device does not exist, and the partial
// unique index attempts_one_open refuses a second open attempt.
const insertAttemptSQL = `INSERT INTO attempts
	(device, operation, auth_mode, remote, started_at, finished_at, result, reason, node, sudi, config_rev, deadline)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// claimDeviceSQL applies a claim to its device, if its configuration is
// still at the revision the session read: StatusInProgress when an
// operation is pending, the guess counter reset, one more attempt counted.
// (An Exec, not a query: database/sql starts a goroutine for the Rows of a
// query in a transaction, which costs more than the statement.)
const claimDeviceSQL = `UPDATE devices SET
	status = CASE WHEN operation NOT IN ('', '` + string(device.OpNone) + `') THEN ? ELSE status END,
	updated_at = CASE WHEN operation NOT IN ('', '` + string(device.OpNone) + `') THEN ? ELSE updated_at END,
	auth_failures = 0,
	attempts_total = attempts_total + 1,
	last_contact_at = ?, last_contact_remote = ?, last_contact_outcome = '` + device.ContactInProgress + `', last_contact_reason = ''
	WHERE name = ? AND config_rev = ?`

// pruneAttemptsSQL deletes a device's closed attempts older than its
// newest N (the OFFSET argument is N-1).
const pruneAttemptsSQL = `DELETE FROM attempts
	WHERE device = ? AND finished_at IS NOT NULL
	AND id < (SELECT id FROM attempts WHERE device = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`

// countGuessSQL reserves the evaluation of one authentication-string guess:
// the device's counter still at the value the session read, a string to
// guess, and the counter below the limit (a limit <= 0: none).
const countGuessSQL = `UPDATE devices SET auth_failures = auth_failures + 1, last_auth_failure = ?
	WHERE name = ? AND auth_failures = ? AND auth_string <> '' AND (? <= 0 OR auth_failures < ?)`

// failedAuthDeviceSQL counts a failed authentication on its device and
// shows it as the status, unless a session holds the device or its string
// was used up (that status stays until the administrator sets a new
// string). It returns the device's attempt count.
const failedAuthDeviceSQL = `UPDATE devices SET attempts_total = attempts_total + 1,
	status = CASE WHEN ` + keepStatus + ` THEN status ELSE ?1 END,
	updated_at = CASE WHEN ` + keepStatus + ` THEN updated_at ELSE ?2 END,
	last_contact_at = ?2, last_contact_remote = ?4, last_contact_outcome = ?5, last_contact_reason = ?6
	WHERE name = ?3 RETURNING attempts_total`

// recordContactSQL records a contact that ended before a session, unless
// the device has a newer one on record.
const recordContactSQL = `UPDATE devices SET
	last_contact_at = ?1, last_contact_remote = ?2, last_contact_outcome = ?3, last_contact_reason = ?4
	WHERE name = ?5 AND (last_contact_at IS NULL OR last_contact_at <= ?1)`

const keepStatus = `EXISTS (SELECT 1 FROM attempts WHERE device = devices.name AND finished_at IS NULL)
	OR status LIKE '%: ` + device.ReasonTooManyAuthFailures + `'`

// insertIssuanceSQL records an issuance.
const insertIssuanceSQL = `INSERT INTO issuances
	(serial, device, attempt_id, issuer, issued_at, not_before, not_after, der, issuer_key_id)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// supersedeSQL revokes, as superseded, every other unrevoked issuance of a
// device that got a new LSC: ?1 time, ?2 by, ?3 device, ?4 the new serial.
const supersedeSQL = `UPDATE issuances SET revoked_at = ?1, revocation_reason = 4, revoked_by = ?2
	WHERE device = ?3 AND serial <> ?4 AND revoked_at IS NULL`

// retireSQL revokes, as cessationOfOperation, every unrevoked issuance of
// a device whose LSC was deleted: ?1 time, ?2 by, ?3 device.
const retireSQL = `UPDATE issuances SET revoked_at = ?1, revocation_reason = 5, revoked_by = ?2
	WHERE device = ?3 AND revoked_at IS NULL`

// finishAttemptSQL closes an attempt that is open and held by the node.
const finishAttemptSQL = `UPDATE attempts
	SET finished_at = ?, auth_mode = ?, result = ?, reason = ?, sudi = ?
	WHERE id = ? AND finished_at IS NULL AND node = ?`

// insertFetchedSQL keeps a fetched certificate.
const insertFetchedSQL = `INSERT INTO fetched_certificates (device, type, fetched_at, der)
	VALUES (?, ?, ?, ?)`

// lscChange is what FinishAttempt does to the device's LSC.
type lscChange int

const (
	lscKeep  lscChange = iota // leave it
	lscSet                    // replace it with Outcome.SetLSC
	lscClear                  // remove it
	lscChanges
)

// finishDeviceSQL returns the UPDATE that FinishAttempt applies to the
// attempt's device. Its numbered arguments: ?1 status, ?2 updated_at (and
// the time of the phone's last contact), ?3 the attempt's id, ?4 and ?5
// the contact's outcome and reason, and for lscSet ?6–?10 the five lsc_*
// values. The LSC is
// the session's fact and is always applied; the status, and for a
// completed operation the clearing of operation and string, only when no
// administrator changed the device's configuration since the claim
// (config_rev is what it was then).
func finishDeviceSQL(completed bool, lsc lscChange) string {
	const same = `devices.config_rev = a.rev`
	sets := []string{"status = CASE WHEN " + same + " THEN ?1 ELSE status END", "updated_at = ?2",
		"last_contact_at = ?2", "last_contact_remote = a.remote", "last_contact_outcome = ?4", "last_contact_reason = ?5"}
	if completed {
		sets = append(sets,
			"operation = CASE WHEN "+same+" THEN '"+string(device.OpNone)+"' ELSE operation END",
			"auth_string = CASE WHEN "+same+" THEN '' ELSE auth_string END")
	}
	switch lsc {
	case lscSet:
		sets = append(sets, "lsc_serial = ?6", "lsc_issuer = ?7", "lsc_not_before = ?8", "lsc_not_after = ?9", "lsc_der = ?10")
	case lscClear:
		sets = append(sets, "lsc_serial = NULL", "lsc_issuer = NULL", "lsc_not_before = NULL", "lsc_not_after = NULL", "lsc_der = NULL")
	}
	// One lookup of the attempt (UPDATE … FROM) gives both its device and
	// the revision it claimed.
	return `UPDATE devices SET ` + strings.Join(sets, ", ") +
		` FROM (SELECT device, config_rev AS rev, remote FROM attempts WHERE id = ?3) AS a WHERE devices.name = a.device`
}

// readStmts are the prepared statements of the read pool.
type readStmts struct {
	getDevice *sql.Stmt
}

// writeStmts are the prepared statements of the writer connection, for the
// committer's writes.
type writeStmts struct {
	insertAttempt *sql.Stmt
	claimDevice   *sql.Stmt
	pruneAttempts *sql.Stmt
	countGuess    *sql.Stmt
	// failedAuthDevice is on the path a guessing flood takes.
	failedAuthDevice *sql.Stmt
	insertIssuance   *sql.Stmt
	finishAttempt    *sql.Stmt
	finishDevice     [2][lscChanges]*sql.Stmt // by Outcome.Completed (0 or 1), lscChange
	insertFetched    *sql.Stmt
	recordContact    *sql.Stmt
	supersede        *sql.Stmt // the other LSCs of a device that got a new one
	retire           *sql.Stmt // the LSCs of a device whose LSC was deleted
}

// preparer prepares statements on one pool and remembers them, to close
// them all. After the first failure it prepares nothing more and err says
// why.
type preparer struct {
	db    *sql.DB
	stmts []*sql.Stmt
	err   error
}

// prepare returns query prepared, or nil once p.err is set.
func (p *preparer) prepare(ctx context.Context, query string) *sql.Stmt {
	if p.err != nil {
		return nil
	}
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		p.err = fmt.Errorf("prepare %q: %w", query, err)
		return nil
	}
	p.stmts = append(p.stmts, st)
	return st
}

// close closes every statement prepared.
func (p *preparer) close() error {
	var errs []error
	for _, st := range p.stmts {
		if err := st.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.stmts = nil
	return errors.Join(errs...)
}

// prepareRead prepares the read statements on p.
func prepareRead(ctx context.Context, p *preparer) readStmts {
	return readStmts{getDevice: p.prepare(ctx, getDeviceSQL)}
}

// prepareWrite prepares the write statements on p.
func prepareWrite(ctx context.Context, p *preparer) writeStmts {
	w := writeStmts{
		insertAttempt:    p.prepare(ctx, insertAttemptSQL),
		claimDevice:      p.prepare(ctx, claimDeviceSQL),
		pruneAttempts:    p.prepare(ctx, pruneAttemptsSQL),
		countGuess:       p.prepare(ctx, countGuessSQL),
		failedAuthDevice: p.prepare(ctx, failedAuthDeviceSQL),
		insertIssuance:   p.prepare(ctx, insertIssuanceSQL),
		finishAttempt:    p.prepare(ctx, finishAttemptSQL),
		insertFetched:    p.prepare(ctx, insertFetchedSQL),
		recordContact:    p.prepare(ctx, recordContactSQL),
		supersede:        p.prepare(ctx, supersedeSQL),
		retire:           p.prepare(ctx, retireSQL),
	}
	for i, completed := range []bool{false, true} {
		for lsc := range lscChanges {
			w.finishDevice[i][lsc] = p.prepare(ctx, finishDeviceSQL(completed, lsc))
		}
	}
	return w
}
