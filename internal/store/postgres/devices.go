package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// querier is a pgx.Tx or the pool.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// deviceColumns lists the devices columns in the order scanDevice reads
// them; the last is when the current LSC was revoked, from its issuance
// record (a primary-key lookup), NULL while it is not.
const deviceColumns = `name, description, security_profile, auth_mode, auth_string,
	operation, key_spec, deadline, status,
	lsc_serial, lsc_issuer, lsc_not_before, lsc_not_after, lsc_der,
	created_at, updated_at, auth_failures, last_auth_failure, attempts_total, config_rev,
	last_contact_at, last_contact_remote, last_contact_outcome, last_contact_reason,
	(SELECT r.revoked_at FROM issuances r WHERE r.serial = devices.lsc_serial)`

// insertDeviceSQL creates a device (counters at zero).
const insertDeviceSQL = `INSERT INTO devices (name, description, security_profile, auth_mode, auth_string,
	operation, key_spec, deadline, status,
	lsc_serial, lsc_issuer, lsc_not_before, lsc_not_after, lsc_der,
	created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`

// getDeviceSQL reads one device by name.
const getDeviceSQL = `SELECT ` + deviceColumns + ` FROM devices WHERE name = $1`

// updateAdminSQL writes the administrator-owned fields, the status and
// updated_at; bumps config_rev when the operation, mode, string or key
// changed; resets the guess counter with a new string.
const updateAdminSQL = `UPDATE devices SET
	description = $1, security_profile = $2, auth_mode = $3, auth_string = $4,
	operation = $5, key_spec = $6, deadline = $7, status = $8, updated_at = $9,
	config_rev = config_rev + $10,
	auth_failures = CASE WHEN $11::boolean THEN 0 ELSE auth_failures END
	WHERE name = $12`

// scanDevice reads one row of deviceColumns.
func scanDevice(row pgx.Row) (device.Device, error) {
	var (
		d                                 device.Device
		profile, mode, op, key            string
		deadline, created, updated, lastF *int64
		serial, issuer                    *string
		notBefore, notAfter               *int64
		der                               []byte
		failures, total, rev              int64
		contactAt, revokedAt              *int64
	)
	err := row.Scan(&d.Name, &d.Description, &profile, &mode, &d.AuthString,
		&op, &key, &deadline, &d.Status,
		&serial, &issuer, &notBefore, &notAfter, &der,
		&created, &updated, &failures, &lastF, &total, &rev,
		&contactAt, &d.LastContact.Remote, &d.LastContact.Outcome, &d.LastContact.Reason,
		&revokedAt)
	if err != nil {
		return device.Device{}, err
	}
	d.SecurityProfile = device.SecurityProfile(profile)
	d.AuthMode = device.AuthMode(mode)
	d.Operation = device.Operation(op)
	d.Key = device.KeySpec(key)
	d.Deadline = fromMicros(deadline)
	d.CreatedAt = fromMicros(created)
	d.UpdatedAt = fromMicros(updated)
	d.LastAuthFailure = fromMicros(lastF)
	d.LastContact.At = fromMicros(contactAt)
	d.AuthFailures, d.AttemptsTotal, d.Rev = int(failures), total, rev
	if serial != nil {
		c := &device.Certificate{Serial: *serial, NotBefore: fromMicros(notBefore), NotAfter: fromMicros(notAfter), DER: der,
			RevokedAt: fromMicros(revokedAt)}
		if issuer != nil {
			c.Issuer = *issuer
		}
		if c.DER == nil {
			c.DER = []byte{}
		}
		d.LSC = c
	}
	return d, nil
}

// lscArgs returns the values of the five lsc_* columns for c (all NULL for
// nil).
func lscArgs(c *device.Certificate) []any {
	if c == nil {
		return []any{nil, nil, nil, nil, nil}
	}
	der := c.DER
	if der == nil {
		der = []byte{}
	}
	return []any{c.Serial, c.Issuer, micros(c.NotBefore), micros(c.NotAfter), der}
}

// insertArgs returns d's values in insertDeviceSQL order.
func insertArgs(d device.Device) []any {
	args := make([]any, 0, 16)
	args = append(args, d.Name, d.Description, string(d.SecurityProfile), string(d.AuthMode), d.AuthString,
		string(d.Operation), string(d.Key), micros(d.Deadline), d.Status)
	args = append(args, lscArgs(d.LSC)...)
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
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertDeviceSQL, insertArgs(d)...); err != nil {
			if retryable(err) {
				return err
			}
			return writeErr(what, d.Name, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// GetDevice returns the device called name, or NotFound.
func (s *Store) GetDevice(ctx context.Context, name string) (device.Device, error) {
	d, err := getDeviceTx(ctx, s.pool, name)
	if err != nil && fault.KindOf(err) != fault.NotFound {
		return device.Device{}, fmt.Errorf("get device %q: %w", name, err)
	}
	return d, err
}

// getDeviceTx reads device name through q; NotFound if absent.
func getDeviceTx(ctx context.Context, q querier, name string) (device.Device, error) {
	d, err := scanDevice(q.QueryRow(ctx, getDeviceSQL, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return device.Device{}, fault.NotFoundf("device %q not found", name)
	}
	if err != nil {
		return device.Device{}, fmt.Errorf("read device %q: %w", name, err)
	}
	return d, nil
}

// writeAdmin writes the administrator's fields of new over old inside tx,
// with its audit event (detail, e.g. the campaign the change belongs to),
// and reports whether anything changed.
func writeAdmin(ctx context.Context, tx pgx.Tx, old, new device.Device, actor device.Actor, detail string) (bool, error) {
	changed, config := adminChanged(old, new)
	if !changed {
		return false, nil
	}
	rev := 0
	if config {
		rev = 1
	}
	_, err := tx.Exec(ctx, updateAdminSQL,
		new.Description, string(new.SecurityProfile), string(new.AuthMode), new.AuthString,
		string(new.Operation), string(new.Key), micros(new.Deadline), new.Status, micros(new.UpdatedAt),
		rev, old.AuthString != new.AuthString, old.Name)
	if err != nil {
		if retryable(err) {
			return false, err
		}
		return false, writeErr(fmt.Sprintf("update device %q", old.Name), old.Name, err)
	}
	return true, insertAudit(ctx, tx, device.AuditEvent{
		At: new.UpdatedAt, Actor: actor, Action: device.AuditDeviceUpdate, Target: old.Name,
		Changes: device.Diff(old, new), Detail: detail,
	})
}

// keepOwned restores, on d, the fields an administrator's change never
// writes: the name, creation time, LSC and the session-owned counters.
func keepOwned(d *device.Device, old device.Device) {
	d.Name, d.CreatedAt, d.LSC = old.Name, old.CreatedAt, old.LSC
	d.AuthFailures, d.LastAuthFailure, d.AttemptsTotal, d.Rev = old.AuthFailures, old.LastAuthFailure, old.AttemptsTotal, old.Rev
}

// UpdateDevice reads device name, lets change modify a copy and writes back
// the administrator-owned fields and the status, all in one SERIALIZABLE
// transaction. change runs again, on a fresh read, if the transaction is
// retried after a serialization failure.
func (s *Store) UpdateDevice(ctx context.Context, name string, actor device.Actor, change func(*device.Device) error) (device.Device, bool, error) {
	what := fmt.Sprintf("update device %q", name)
	var out device.Device
	var changed bool
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		out, changed = device.Device{}, false
		old, err := getDeviceTx(ctx, tx, name)
		if err != nil {
			return err
		}
		d := old
		if err := change(&d); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		keepOwned(&d, old)
		if changed, err = writeAdmin(ctx, tx, old, d, actor, ""); err != nil {
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
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM devices WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := affected(tag, fault.NotFoundf("device %q not found", name)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, ev)
	})
}

// ListDevices returns the page of devices matching q and how many match,
// from one snapshot.
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
	var page device.Page
	err = s.read(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM devices`+where, args...).Scan(&page.Total); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		n := len(args)
		query := `SELECT ` + deviceColumns + ` FROM devices` + where + orderBy(q.Sort, q.Desc) +
			fmt.Sprintf(` LIMIT $%d OFFSET $%d`, n+1, n+2)
		page.Devices, err = queryDevices(ctx, tx, query, append(args, limitArg(q.Limit), q.Offset)...)
		return err
	})
	if err != nil {
		return device.Page{}, fmt.Errorf("list devices: %w", err)
	}
	return page, nil
}

// queryDevices returns the devices of a query that selects deviceColumns.
func queryDevices(ctx context.Context, q querier, query string, args ...any) ([]device.Device, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ds := []device.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// ImportDevices creates or updates the devices called names in one
// SERIALIZABLE transaction, each as apply decides from the stored one. It
// stops, rolling everything back, if ctx ends while it runs. apply runs
// again for every device if the transaction is retried.
func (s *Store) ImportDevices(ctx context.Context, names []string, actor device.Actor, apply func(i int, old *device.Device) (device.Device, error)) (device.ImportCounts, error) {
	var counts device.ImportCounts
	err := s.write(ctx, "import devices", func(ctx context.Context, tx pgx.Tx) error {
		counts = device.ImportCounts{}
		for i, name := range names {
			if err := ctx.Err(); err != nil {
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
				if _, err := tx.Exec(ctx, insertDeviceSQL, insertArgs(d)...); err != nil {
					if retryable(err) {
						return err
					}
					return writeErr(fmt.Sprintf("import devices: device %d", i+1), d.Name, err)
				}
				if err := insertAudit(ctx, tx, device.AuditEvent{At: d.UpdatedAt, Actor: actor,
					Action: device.AuditDeviceCreate, Target: d.Name, Changes: device.CreationChanges(d), Detail: "import"}); err != nil {
					return err
				}
				if d.LSC != nil {
					if _, err := tx.Exec(ctx, insertImportedIssuanceSQL, importedIssuanceArgs(d)...); err != nil {
						return fmt.Errorf("import devices: record the LSC of device %q: %w", d.Name, err)
					}
				}
				counts.Created++
				continue
			}
			d.Name = old.Name
			changed, err := writeAdmin(ctx, tx, old, d, actor, "")
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
// columns other than the name sort without regard to case; the name
// breaks ties; devices without an LSC come last when sorting by expiry.
func orderBy(f device.Field, desc bool) string {
	dir, nulls := " ASC", " NULLS FIRST" // SQLite's order: NULL is the smallest value
	if desc {
		dir, nulls = " DESC", " NULLS LAST"
	}
	switch f {
	case "", device.FieldName:
		return ` ORDER BY name COLLATE "C"` + dir
	case device.FieldLSCExpires:
		return ` ORDER BY lsc_serial IS NULL, lsc_not_after` + dir + nulls + `, name COLLATE "C"` + dir
	}
	return ` ORDER BY lower(` + textColumns[f] + `) COLLATE "C"` + dir + `, name COLLATE "C"` + dir
}

// hasLSC is the condition for a device that holds an LSC.
const hasLSC = `lsc_serial IS NOT NULL`

// lscRevoked is the condition for a device whose current LSC is on the
// revocation records (device.LSCRevoked); the issuance is found by its
// primary key.
const lscRevoked = `EXISTS (SELECT 1 FROM issuances r WHERE r.serial = devices.lsc_serial AND r.revoked_at IS NOT NULL)`

// buildWhere returns the WHERE clause (with a leading space, or "") and its
// arguments ($1…) for validated filters, evaluated at now. Column names
// come from textColumns only; every value is a placeholder argument. Text
// matches ignore case (ILIKE).
func buildWhere(filters []device.Filter, now time.Time) (string, []any, error) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	for _, f := range filters {
		if col, ok := textColumns[f.Field]; ok {
			switch f.Match {
			case device.MatchEmpty:
				conds = append(conds, "("+col+" IS NULL OR "+col+" = '')")
			case device.MatchNotEmpty:
				conds = append(conds, "("+col+" IS NOT NULL AND "+col+" <> '')")
			default:
				pattern := likeEscaper.Replace(f.Value)
				switch f.Match {
				case device.MatchBeginsWith:
					pattern += "%"
				case device.MatchContains:
					pattern = "%" + pattern + "%"
				case device.MatchEndsWith:
					pattern = "%" + pattern
				case device.MatchEquals:
				default:
					return "", nil, fault.Invalidf("filter on %s: match %q is not supported", f.Field, f.Match)
				}
				conds = append(conds, col+` ILIKE `+arg(pattern)+` ESCAPE '\'`)
			}
			continue
		}
		switch f.Field {
		case device.FieldLSCStatus:
			switch f.Value {
			case device.LSCNone:
				conds = append(conds, "lsc_serial IS NULL")
			case device.LSCExpired:
				conds = append(conds, "("+hasLSC+" AND (lsc_not_after IS NULL OR lsc_not_after < "+arg(now.UnixMicro())+") AND NOT "+lscRevoked+")")
			case device.LSCValid:
				conds = append(conds, "("+hasLSC+" AND lsc_not_after >= "+arg(now.UnixMicro())+" AND NOT "+lscRevoked+")")
			case device.LSCRevoked:
				conds = append(conds, "("+hasLSC+" AND "+lscRevoked+")")
			default:
				return "", nil, fault.Invalidf("filter on %s: value %q is not supported", f.Field, f.Value)
			}
		case device.FieldLSCExpires:
			if f.Match == device.MatchEmpty || f.Match == device.MatchNotEmpty {
				if f.Match == device.MatchEmpty {
					conds = append(conds, "lsc_serial IS NULL")
				} else {
					conds = append(conds, hasLSC)
				}
				continue
			}
			t, err := time.Parse(time.RFC3339, f.Value)
			if err != nil {
				return "", nil, fault.Invalidf("filter on %s: value %q is not an RFC 3339 time", f.Field, f.Value)
			}
			switch f.Match {
			case device.MatchBefore:
				conds = append(conds, "("+hasLSC+" AND lsc_not_after < "+arg(t.UnixMicro())+")")
			case device.MatchAfter:
				conds = append(conds, "("+hasLSC+" AND lsc_not_after > "+arg(t.UnixMicro())+")")
			default:
				return "", nil, fault.Invalidf("filter on %s: match %q is not supported", f.Field, f.Match)
			}
		default:
			return "", nil, fault.Invalidf("filter: unknown field %q", f.Field)
		}
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// insertImportedIssuanceSQL records the LSC an imported device came with
// (another CAPF issued it: attempt 0); a serial recorded before is kept.
const insertImportedIssuanceSQL = `INSERT INTO issuances
	(serial, device, attempt_id, issuer, issued_at, not_before, not_after, der)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (serial) DO NOTHING`

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
