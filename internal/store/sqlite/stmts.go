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

// insertAttemptSQL starts an attempt. Its foreign key fails if the device
// does not exist.
const insertAttemptSQL = `INSERT INTO attempts
	(device, operation, auth_mode, remote, started_at, finished_at, result, reason)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// markInProgressSQL gives StatusInProgress to a device with an operation
// pending.
const markInProgressSQL = `UPDATE devices SET status = ?, updated_at = ?
	WHERE name = ? AND operation <> '' AND operation <> '` + string(device.OpNone) + `'`

// insertIssuanceSQL records an issuance.
const insertIssuanceSQL = `INSERT INTO issuances
	(serial, device, attempt_id, issuer, issued_at, not_before, not_after, der)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// finishAttemptSQL closes an attempt.
const finishAttemptSQL = `UPDATE attempts
	SET finished_at = ?, auth_mode = ?, result = ?, reason = ?, sudi = ?
	WHERE id = ?`

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
// attempt's device. Its arguments: status, updated_at, for lscSet the five
// lsc_* values, then the attempt's id. (Exec, rather than a query for the
// device, spares database/sql the goroutine it starts for every Rows of a
// transaction.)
func finishDeviceSQL(completed bool, lsc lscChange) string {
	sets := []string{"status = ?", "updated_at = ?"}
	if completed {
		sets = append(sets, "operation = '"+string(device.OpNone)+"'", "auth_string = ''")
	}
	switch lsc {
	case lscSet:
		sets = append(sets, "lsc_serial = ?", "lsc_issuer = ?", "lsc_not_before = ?", "lsc_not_after = ?", "lsc_der = ?")
	case lscClear:
		sets = append(sets, "lsc_serial = NULL", "lsc_issuer = NULL", "lsc_not_before = NULL", "lsc_not_after = NULL", "lsc_der = NULL")
	}
	return `UPDATE devices SET ` + strings.Join(sets, ", ") +
		` WHERE name = (SELECT device FROM attempts WHERE id = ?)`
}

// readStmts are the prepared statements of the read pool.
type readStmts struct {
	getDevice *sql.Stmt
}

// writeStmts are the prepared statements of the writer connection, for the
// committer's writes.
type writeStmts struct {
	insertAttempt  *sql.Stmt
	markInProgress *sql.Stmt
	insertIssuance *sql.Stmt
	finishAttempt  *sql.Stmt
	finishDevice   [2][lscChanges]*sql.Stmt // by Outcome.Completed (0 or 1), lscChange
	insertFetched  *sql.Stmt
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
		insertAttempt:  p.prepare(ctx, insertAttemptSQL),
		markInProgress: p.prepare(ctx, markInProgressSQL),
		insertIssuance: p.prepare(ctx, insertIssuanceSQL),
		finishAttempt:  p.prepare(ctx, finishAttemptSQL),
		insertFetched:  p.prepare(ctx, insertFetchedSQL),
	}
	for i, completed := range []bool{false, true} {
		for lsc := range lscChanges {
			w.finishDevice[i][lsc] = p.prepare(ctx, finishDeviceSQL(completed, lsc))
		}
	}
	return w
}
