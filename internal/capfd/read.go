package capfd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
)

// Limits of what Read accepts from a capfd database.
const (
	// MaxRows is the most devices one database may hold.
	MaxRows = 100_000
	// MaxCertificateLen is the longest certificate column, in bytes.
	MaxCertificateLen = 64 << 10
	// MaxFieldLen is the longest value, in bytes, of every other column.
	MaxFieldLen = 1024
)

// Columns are the columns of capfd's devices table, in its order.
var Columns = []string{"device_name", "operation", "authentication", "password", "key_size",
	"curve_name", "certificate", "serial_number", "not_valid_before", "not_valid_after"}

// Row is one row of capfd's devices table, as stored. An empty string is
// a NULL or empty column (capfd does not tell the two apart).
type Row struct {
	// N is the row's position (1-based) in device_name order: the number
	// the report gives it besides its name.
	N              int
	DeviceName     string
	Operation      string
	Authentication string
	Password       string
	KeySize        string
	CurveName      string
	Certificate    string
	SerialNumber   string
	NotValidBefore string
	NotValidAfter  string
}

// Name returns the row's device name made safe to print.
func (r Row) Name() string {
	if r.DeviceName == "" {
		return "(empty)"
	}
	return safetext.Bound(r.DeviceName, 64)
}

// Read reads every row of the devices table of the capfd database at
// path, in device_name order, from one read transaction of a read-only,
// query-only connection: it never writes to the file (capfd may still be
// running). A missing file, a file that is not SQLite, a database without
// the table or one of its columns, more than [MaxRows] rows or a value
// longer than its limit is an Invalid error that says which.
func Read(ctx context.Context, path string) ([]Row, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fault.Invalidf("capfd database %s: no such file", path)
		}
		return nil, fmt.Errorf("capfd database %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	db, err := sql.Open("sqlite", "file:"+escaped+"?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("capfd database %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fault.Invalidf("capfd database %s: cannot open it: %v", path, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := checkColumns(ctx, tx); err != nil {
		return nil, fault.Invalidf("capfd database %s: %s", path, err.Error())
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil {
		return nil, fmt.Errorf("capfd database %s: count devices: %w", path, err)
	}
	if n > MaxRows {
		return nil, fault.Invalidf("capfd database %s: %d devices; at most %d can be migrated at once", path, n, MaxRows)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(Columns, ", ")+` FROM devices ORDER BY device_name`)
	if err != nil {
		return nil, fmt.Errorf("capfd database %s: read devices: %w", path, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var v [10]sql.NullString
		dest := make([]any, len(v))
		for i := range v {
			dest[i] = &v[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("capfd database %s: row %d: %w", path, len(out)+1, err)
		}
		r := Row{N: len(out) + 1, DeviceName: v[0].String, Operation: v[1].String, Authentication: v[2].String,
			Password: v[3].String, KeySize: v[4].String, CurveName: v[5].String, Certificate: v[6].String,
			SerialNumber: v[7].String, NotValidBefore: v[8].String, NotValidAfter: v[9].String}
		for i, s := range v {
			limit := MaxFieldLen
			if Columns[i] == "certificate" {
				limit = MaxCertificateLen
			}
			if len(s.String) > limit {
				return nil, fault.Invalidf("capfd database %s: row %d (%s): column %s is %d bytes long; the limit is %d", path, r.N, r.Name(), Columns[i], len(s.String), limit)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("capfd database %s: read devices: %w", path, err)
	}
	return out, nil
}

// checkColumns fails unless the devices table has every column capfd's has.
func checkColumns(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info('devices')`)
	if err != nil {
		return fault.Invalidf("not a SQLite database, or not readable: %v", err)
	}
	defer rows.Close()
	var have []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fault.Invalidf("read the devices table: %v", err)
		}
		have = append(have, strings.ToLower(name))
	}
	if err := rows.Err(); err != nil {
		return fault.Invalidf("not a SQLite database, or not readable: %v", err)
	}
	if len(have) == 0 {
		return fault.Invalidf("no table devices: this is not a capfd database")
	}
	var missing []string
	for _, c := range Columns {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fault.Invalidf("the devices table lacks the column(s) %s: this is not a capfd database", strings.Join(missing, ", "))
	}
	return nil
}
