package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// deviceColumns lists the devices columns in the order scanDevice reads
// them; the last is when the current LSC was revoked, from its issuance
// record (a primary-key lookup), NULL while it is not.
const deviceColumns = `name, description, security_profile, auth_mode, auth_string,
	operation, key_spec, deadline, status,
	lsc_serial, lsc_issuer, lsc_not_before, lsc_not_after, lsc_der,
	created_at, updated_at, auth_failures, last_auth_failure, attempts_total, config_rev,
	last_contact_at, last_contact_remote, last_contact_outcome, last_contact_reason,
	(SELECT r.revoked_at FROM issuances r WHERE r.serial = devices.lsc_serial)`

// insertColumns are the columns CreateDevice and ImportDevices write.
const insertColumns = `name, description, security_profile, auth_mode, auth_string,
	operation, key_spec, deadline, status,
	lsc_serial, lsc_issuer, lsc_not_before, lsc_not_after, lsc_der,
	created_at, updated_at`

// insertDeviceSQL creates a device (counters at zero).
const insertDeviceSQL = `INSERT INTO devices (` + insertColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

// updateAdminSQL writes the administrator-owned fields, the status and
// updated_at; bumps config_rev when the operation, mode, string or key
// changed; resets the guess counter with a new string.
const updateAdminSQL = `UPDATE devices SET
	description = ?, security_profile = ?, auth_mode = ?, auth_string = ?,
	operation = ?, key_spec = ?, deadline = ?, status = ?, updated_at = ?,
	config_rev = config_rev + ?,
	auth_failures = CASE WHEN ? THEN 0 ELSE auth_failures END
	WHERE name = ?`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// deviceRow holds what scanDevice reads: one allocation for every
// destination Scan needs a pointer to.
type deviceRow struct {
	d                          device.Device
	profile, mode, op, key     string
	deadline, created, updated sql.NullInt64
	serial, issuer             sql.NullString
	notBefore, notAfter        sql.NullInt64
	der                        []byte
	lastFailure                sql.NullInt64
	contactAt                  sql.NullInt64
	revokedAt                  sql.NullInt64
}

// scanDevice reads one row of deviceColumns.
func scanDevice(sc scanner) (device.Device, error) {
	r := new(deviceRow)
	err := sc.Scan(&r.d.Name, &r.d.Description, &r.profile, &r.mode, &r.d.AuthString,
		&r.op, &r.key, &r.deadline, &r.d.Status,
		&r.serial, &r.issuer, &r.notBefore, &r.notAfter, &r.der,
		&r.created, &r.updated, &r.d.AuthFailures, &r.lastFailure, &r.d.AttemptsTotal, &r.d.Rev,
		&r.contactAt, &r.d.LastContact.Remote, &r.d.LastContact.Outcome, &r.d.LastContact.Reason,
		&r.revokedAt)
	if err != nil {
		return device.Device{}, err
	}
	d := r.d
	d.SecurityProfile = device.SecurityProfile(r.profile)
	d.AuthMode = device.AuthMode(r.mode)
	d.Operation = device.Operation(r.op)
	d.Key = device.KeySpec(r.key)
	d.Deadline = fromMicros(r.deadline)
	d.CreatedAt = fromMicros(r.created)
	d.UpdatedAt = fromMicros(r.updated)
	d.LastAuthFailure = fromMicros(r.lastFailure)
	d.LastContact.At = fromMicros(r.contactAt)
	if r.serial.Valid {
		d.LSC = &device.Certificate{
			Serial:    r.serial.String,
			Issuer:    r.issuer.String,
			NotBefore: fromMicros(r.notBefore),
			NotAfter:  fromMicros(r.notAfter),
			DER:       r.der,
			RevokedAt: fromMicros(r.revokedAt),
		}
	}
	return d, nil
}

// appendLSC appends the values of the lsc_* columns for c (all NULL for
// nil) to args.
func appendLSC(args []any, c *device.Certificate) []any {
	if c == nil {
		return append(args, nil, nil, nil, nil, nil)
	}
	der := c.DER
	if der == nil {
		der = []byte{}
	}
	return append(args, c.Serial, c.Issuer, micros(c.NotBefore), micros(c.NotAfter), der)
}

// insertArgs returns d's values in insertColumns order.
func insertArgs(d device.Device) []any {
	args := make([]any, 0, 16)
	args = append(args, d.Name, d.Description, string(d.SecurityProfile), string(d.AuthMode), d.AuthString,
		string(d.Operation), string(d.Key), micros(d.Deadline), d.Status)
	args = appendLSC(args, d.LSC)
	return append(args, micros(d.CreatedAt), micros(d.UpdatedAt))
}

// adminChanged reports whether new differs from old in an
// administrator-owned field or the status, and whether the change touches
// what a running session acts on (operation, mode, string, key).
func adminChanged(old, new device.Device) (any, config bool) {
	config = old.Operation != new.Operation || old.AuthMode != new.AuthMode ||
		old.AuthString != new.AuthString || old.Key != new.Key
	any = config || old.Description != new.Description || old.SecurityProfile != new.SecurityProfile ||
		!old.Deadline.Equal(new.Deadline.Truncate(time.Microsecond)) || old.Status != new.Status
	return any, config
}

// writeErr classifies an error from writing device name.
func writeErr(what, name string, err error) error {
	switch {
	case isUnique(err):
		return fmt.Errorf("%s: %w", what, fault.Conflictf("device %q exists already", name))
	case isCheck(err):
		return fmt.Errorf("%s: %w", what, fault.Invalidf("device %q: a required field is empty", name))
	case isForeignKey(err):
		return fmt.Errorf("%s: %w", what, fault.NotFoundf("device %q not found", name))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// CreateDevice inserts d (with its LSC, if it has one, as a restore would)
// and its audit event; Conflict if a device of that name exists.
func (s *Store) CreateDevice(ctx context.Context, d device.Device, ev device.AuditEvent) error {
	what := fmt.Sprintf("create device %q", d.Name)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertDeviceSQL, insertArgs(d)...); err != nil {
			return writeErr(what, d.Name, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// GetDevice returns the device called name, or NotFound.
func (s *Store) GetDevice(ctx context.Context, name string) (device.Device, error) {
	row := s.rs.getDevice.QueryRowContext(ctx, name)
	d, err := scanDevice(row)
	if errors.Is(err, sql.ErrNoRows) {
		return device.Device{}, fault.NotFoundf("device %q not found", name)
	}
	if err != nil {
		return device.Device{}, fmt.Errorf("get device %q: %w", name, err)
	}
	return d, nil
}

// getDeviceTx reads device name inside tx; NotFound if absent.
func getDeviceTx(ctx context.Context, tx execer, name string) (device.Device, error) {
	d, err := scanDevice(tx.QueryRowContext(ctx, getDeviceSQL, name))
	if errors.Is(err, sql.ErrNoRows) {
		return device.Device{}, fault.NotFoundf("device %q not found", name)
	}
	if err != nil {
		return device.Device{}, fmt.Errorf("read device %q: %w", name, err)
	}
	return d, nil
}

// writeAdmin writes the administrator's fields of new over old inside tx,
// with its audit event, and reports whether anything changed.
func writeAdmin(ctx context.Context, tx execer, old, new device.Device, actor device.Actor) (bool, error) {
	return writeAdminDetail(ctx, tx, old, new, actor, "")
}

// writeAdminDetail is writeAdmin with detail in the audit event, e.g. the
// campaign the change belongs to.
func writeAdminDetail(ctx context.Context, tx execer, old, new device.Device, actor device.Actor, detail string) (bool, error) {
	changed, config := adminChanged(old, new)
	if !changed {
		return false, nil
	}
	rev := 0
	if config {
		rev = 1
	}
	_, err := tx.ExecContext(ctx, updateAdminSQL,
		new.Description, string(new.SecurityProfile), string(new.AuthMode), new.AuthString,
		string(new.Operation), string(new.Key), micros(new.Deadline), new.Status, micros(new.UpdatedAt),
		rev, old.AuthString != new.AuthString, old.Name)
	if err != nil {
		return false, writeErr(fmt.Sprintf("update device %q", old.Name), old.Name, err)
	}
	return true, insertAudit(ctx, tx, device.AuditEvent{
		At: new.UpdatedAt, Actor: actor, Action: device.AuditDeviceUpdate, Target: old.Name,
		Changes: device.Diff(old, new), Detail: detail,
	})
}

// UpdateDevice reads device name, lets change modify a copy and writes back
// the administrator-owned fields and the status, all in one transaction.
func (s *Store) UpdateDevice(ctx context.Context, name string, actor device.Actor, change func(*device.Device) error) (device.Device, bool, error) {
	what := fmt.Sprintf("update device %q", name)
	var out device.Device
	var changed bool
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		old, err := getDeviceTx(ctx, tx, name)
		if err != nil {
			return err
		}
		d := old
		if err := change(&d); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		d.Name, d.CreatedAt, d.LSC = old.Name, old.CreatedAt, old.LSC
		d.AuthFailures, d.LastAuthFailure, d.AttemptsTotal, d.Rev = old.AuthFailures, old.LastAuthFailure, old.AttemptsTotal, old.Rev
		if changed, err = writeAdmin(ctx, tx, old, d, actor); err != nil {
			return err
		}
		if !changed {
			out = old
			return nil
		}
		out, err = getDeviceTx(ctx, tx, name)
		return err
	})
	if err != nil {
		return device.Device{}, false, err
	}
	return out, changed, nil
}

// DeleteDevice removes the device, its attempts and its fetched
// certificates and appends ev; its issuances are kept. NotFound if it does
// not exist.
func (s *Store) DeleteDevice(ctx context.Context, name string, ev device.AuditEvent) error {
	what := fmt.Sprintf("delete device %q", name)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := mustAffect(res, what, fault.NotFoundf("device %q not found", name)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, ev)
	})
}

// mustAffect returns notFound if res affected no row.
func mustAffect(res sql.Result, what string, notFound error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// ListDevices returns the page of devices matching q and how many match.
func (s *Store) ListDevices(ctx context.Context, q device.Query) (device.Page, error) {
	if err := q.Validate(); err != nil {
		return device.Page{}, err
	}
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	where, args, err := buildWhere(q.Filters, now)
	if err != nil {
		return device.Page{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}

	// One read transaction, so that the count and the page see one snapshot.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return device.Page{}, fmt.Errorf("list devices: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	var page device.Page
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices`+where, args...).Scan(&page.Total); err != nil {
		return device.Page{}, fmt.Errorf("list devices: count: %w", err)
	}
	query := `SELECT ` + deviceColumns + ` FROM devices` + where + orderBy(q.Sort, q.Desc) + ` LIMIT ? OFFSET ?`
	rows, err := tx.QueryContext(ctx, query, append(args, limit, q.Offset)...)
	if err != nil {
		return device.Page{}, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	page.Devices = []device.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return device.Page{}, fmt.Errorf("list devices: scan: %w", err)
		}
		page.Devices = append(page.Devices, d)
	}
	if err := rows.Err(); err != nil {
		return device.Page{}, fmt.Errorf("list devices: %w", err)
	}
	return page, nil
}

// ImportDevices creates or updates the devices called names in one
// transaction, each as apply decides from the stored one. The import is
// one write of its batch: it stops, and rolls back to its savepoint, if the
// caller's ctx ends while it runs.
func (s *Store) ImportDevices(ctx context.Context, names []string, actor device.Actor, apply func(i int, old *device.Device) (device.Device, error)) (device.ImportCounts, error) {
	var counts device.ImportCounts
	caller := ctx
	err := s.submit(ctx, "import devices", func(ctx context.Context, sqlTx *sql.Tx) error {
		counts = device.ImportCounts{}
		tx := newStmtCache(sqlTx)
		defer tx.Close()
		for i, name := range names {
			if err := caller.Err(); err != nil {
				return fmt.Errorf("import devices: %w", err)
			}
			old, err := getDeviceTx(ctx, tx, name)
			var oldp *device.Device
			switch {
			case err == nil:
				oldp = &old
			case fault.KindOf(err) == fault.NotFound:
			default:
				return fmt.Errorf("import devices: device %d: %w", i+1, err)
			}
			d, err := apply(i, oldp)
			if err != nil {
				return err
			}
			if oldp == nil {
				if _, err := tx.ExecContext(ctx, insertDeviceSQL, insertArgs(d)...); err != nil {
					return writeErr(fmt.Sprintf("import devices: device %d", i+1), d.Name, err)
				}
				if err := insertAudit(ctx, tx, device.AuditEvent{At: d.UpdatedAt, Actor: actor,
					Action: device.AuditDeviceCreate, Target: d.Name, Changes: device.CreationChanges(d), Detail: "import"}); err != nil {
					return err
				}
				if d.LSC != nil {
					if _, err := tx.ExecContext(ctx, insertImportedIssuanceSQL, importedIssuanceArgs(d)...); err != nil {
						return fmt.Errorf("import devices: record the LSC of device %q: %w", d.Name, err)
					}
				}
				counts.Created++
				continue
			}
			d.Name = old.Name
			changed, err := writeAdmin(ctx, tx, old, d, actor)
			if err != nil {
				return err
			}
			if changed {
				counts.Updated++
			} else {
				counts.Unchanged++
			}
		}
		return nil
	})
	if err != nil {
		return device.ImportCounts{}, err
	}
	return counts, nil
}

// textColumns maps each text field of a query to its column.
var textColumns = map[device.Field]string{
	device.FieldName:            "name",
	device.FieldDescription:     "description",
	device.FieldSecurityProfile: "security_profile",
	device.FieldAuthMode:        "auth_mode",
	device.FieldAuthString:      "auth_string",
	device.FieldOperation:       "operation",
	device.FieldStatus:          "status",
}

// likeEscaper escapes LIKE's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// orderBy returns the ORDER BY clause for a validated sort field. Text
// columns other than the name sort without regard to ASCII case; the name
// breaks ties; devices without an LSC come last when sorting by expiry.
func orderBy(f device.Field, desc bool) string {
	dir := " ASC"
	if desc {
		dir = " DESC"
	}
	switch f {
	case "", device.FieldName:
		return " ORDER BY name" + dir
	case device.FieldLSCExpires:
		return " ORDER BY lsc_serial IS NULL, lsc_not_after" + dir + ", name" + dir
	}
	return " ORDER BY " + textColumns[f] + " COLLATE NOCASE" + dir + ", name" + dir
}

// insertImportedIssuanceSQL records the LSC an imported device came with
// (another CAPF issued it: attempt 0); a serial recorded before is kept.
const insertImportedIssuanceSQL = `INSERT INTO issuances
	(serial, device, attempt_id, issuer, issued_at, not_before, not_after, der)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`

// importedIssuanceArgs are the arguments of insertImportedIssuanceSQL for
// the LSC of d, issued (as far as anyone knows) when it became valid.
func importedIssuanceArgs(d device.Device) []any {
	c := d.LSC
	der := c.DER
	if der == nil {
		der = []byte{}
	}
	return []any{c.Serial, d.Name, int64(0), c.Issuer, micros(c.NotBefore), micros(c.NotBefore), micros(c.NotAfter), der}
}
