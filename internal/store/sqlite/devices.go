package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// deviceColumns lists the devices columns in the order scanDevice reads them.
const deviceColumns = `name, description, security_profile, auth_mode, auth_string,
	operation, key_spec, deadline, status,
	lsc_serial, lsc_issuer, lsc_not_before, lsc_not_after, lsc_der,
	created_at, updated_at`

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
}

// scanDevice reads one row of deviceColumns.
func scanDevice(sc scanner) (device.Device, error) {
	r := new(deviceRow)
	err := sc.Scan(&r.d.Name, &r.d.Description, &r.profile, &r.mode, &r.d.AuthString,
		&r.op, &r.key, &r.deadline, &r.d.Status,
		&r.serial, &r.issuer, &r.notBefore, &r.notAfter, &r.der,
		&r.created, &r.updated)
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
	if r.serial.Valid {
		d.LSC = &device.Certificate{
			Serial:    r.serial.String,
			Issuer:    r.issuer.String,
			NotBefore: fromMicros(r.notBefore),
			NotAfter:  fromMicros(r.notAfter),
			DER:       r.der,
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

// deviceArgs returns d's values in deviceColumns order.
func deviceArgs(d device.Device) []any {
	args := make([]any, 0, 16)
	args = append(args, d.Name, d.Description, string(d.SecurityProfile), string(d.AuthMode), d.AuthString,
		string(d.Operation), string(d.Key), micros(d.Deadline), d.Status)
	args = appendLSC(args, d.LSC)
	return append(args, micros(d.CreatedAt), micros(d.UpdatedAt))
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

// CreateDevice inserts d; Conflict if a device of that name exists.
func (s *Store) CreateDevice(ctx context.Context, d device.Device) error {
	what := fmt.Sprintf("create device %q", d.Name)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO devices (`+deviceColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			deviceArgs(d)...)
		if err != nil {
			return writeErr(what, d.Name, err)
		}
		return nil
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

// UpdateDevice replaces every field of device d.Name except CreatedAt;
// NotFound if it does not exist.
func (s *Store) UpdateDevice(ctx context.Context, d device.Device) error {
	args := make([]any, 0, 15)
	args = append(args, d.Description, string(d.SecurityProfile), string(d.AuthMode), d.AuthString,
		string(d.Operation), string(d.Key), micros(d.Deadline), d.Status)
	args = appendLSC(args, d.LSC)
	args = append(args, micros(d.UpdatedAt), d.Name)
	what := fmt.Sprintf("update device %q", d.Name)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET
			description = ?, security_profile = ?, auth_mode = ?, auth_string = ?,
			operation = ?, key_spec = ?, deadline = ?, status = ?,
			lsc_serial = ?, lsc_issuer = ?, lsc_not_before = ?, lsc_not_after = ?, lsc_der = ?,
			updated_at = ?
			WHERE name = ?`, args...)
		if err != nil {
			return writeErr(what, d.Name, err)
		}
		return mustAffect(res, what, fault.NotFoundf("device %q not found", d.Name))
	})
}

// DeleteDevice removes the device, its attempts and its fetched
// certificates; its issuances are kept. NotFound if it does not exist.
func (s *Store) DeleteDevice(ctx context.Context, name string) error {
	what := fmt.Sprintf("delete device %q", name)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return mustAffect(res, what, fault.NotFoundf("device %q not found", name))
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

// ImportDevices upserts every device of ds in one transaction. An existing
// device keeps its CreatedAt and LSC; every other field is replaced. The
// import is one write of its batch: it stops, and rolls back to its
// savepoint, if the caller's ctx ends while it runs.
func (s *Store) ImportDevices(ctx context.Context, ds []device.Device) (device.ImportCounts, error) {
	var counts device.ImportCounts
	caller := ctx
	err := s.submit(ctx, "import devices", func(ctx context.Context, tx *sql.Tx) error {
		exists, err := tx.PrepareContext(ctx, `SELECT 1 FROM devices WHERE name = ?`)
		if err != nil {
			return fmt.Errorf("import devices: prepare: %w", err)
		}
		defer exists.Close()
		upsert, err := tx.PrepareContext(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (name) DO UPDATE SET
				description = excluded.description,
				security_profile = excluded.security_profile,
				auth_mode = excluded.auth_mode,
				auth_string = excluded.auth_string,
				operation = excluded.operation,
				key_spec = excluded.key_spec,
				deadline = excluded.deadline,
				status = excluded.status,
				updated_at = excluded.updated_at`)
		if err != nil {
			return fmt.Errorf("import devices: prepare: %w", err)
		}
		defer upsert.Close()
		for i, d := range ds {
			if err := caller.Err(); err != nil {
				return fmt.Errorf("import devices: %w", err)
			}
			var one int
			err := exists.QueryRowContext(ctx, d.Name).Scan(&one)
			found := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("import devices: device %d (%q): %w", i+1, d.Name, err)
			}
			if _, err := upsert.ExecContext(ctx, deviceArgs(d)...); err != nil {
				return writeErr(fmt.Sprintf("import devices: device %d", i+1), d.Name, err)
			}
			if found {
				counts.Updated++
			} else {
				counts.Created++
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
