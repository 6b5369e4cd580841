package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/capf-server/capf/internal/device"
)

// dashboardCountsSQL counts, in one pass over devices: all of them, those
// without an LSC, those whose LSC is revoked, those valid at ?1 (not
// revoked), and those valid at ?1 that expire before ?2. The LSC states
// are buildWhere's.
const dashboardCountsSQL = `SELECT COUNT(*),
	COALESCE(SUM(lsc_serial IS NULL), 0),
	COALESCE(SUM(revoked), 0),
	COALESCE(SUM(lsc_serial IS NOT NULL AND NOT revoked AND lsc_not_after >= ?1), 0),
	COALESCE(SUM(lsc_serial IS NOT NULL AND NOT revoked AND lsc_not_after >= ?1 AND lsc_not_after < ?2), 0)
	FROM (SELECT lsc_serial, lsc_not_after, lsc_serial IS NOT NULL AND ` + lscRevoked + ` AS revoked FROM devices)`

// Dashboard returns the fleet overview from one read transaction: a scan of
// devices for the counts, the status index for the statuses, the expiry
// index for the expiring LSCs, and the partial index of failed attempts for
// the latest failures.
func (s *Store) Dashboard(ctx context.Context, q device.DashboardQuery) (device.Dashboard, error) {
	const what = "dashboard"
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return device.Dashboard{}, fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	d := device.Dashboard{ByStatus: []device.Count{}, Expiring: []device.Device{}, InProgress: []device.Device{},
		RecentFailures: []device.Attempt{}}
	nowUS, soonUS := now.UnixMicro(), q.ExpiringBefore.UnixMicro()
	var none, revoked, valid int
	if err := tx.QueryRowContext(ctx, dashboardCountsSQL, nowUS, soonUS).Scan(&d.Devices, &none, &revoked, &valid, &d.ExpiringSoon); err != nil {
		return device.Dashboard{}, fmt.Errorf("%s: counts: %w", what, err)
	}
	d.ByLSC = []device.Count{
		{Value: device.LSCNone, Count: none},
		{Value: device.LSCValid, Count: valid},
		{Value: device.LSCExpired, Count: d.Devices - none - valid - revoked},
		{Value: device.LSCRevoked, Count: revoked},
	}

	rows, err := tx.QueryContext(ctx, `SELECT status, COUNT(*) AS n FROM devices GROUP BY status ORDER BY n DESC, status`)
	if err != nil {
		return device.Dashboard{}, fmt.Errorf("%s: statuses: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c device.Count
		if err := rows.Scan(&c.Value, &c.Count); err != nil {
			return device.Dashboard{}, fmt.Errorf("%s: statuses: scan: %w", what, err)
		}
		d.ByStatus = append(d.ByStatus, c)
	}
	if err := rows.Err(); err != nil {
		return device.Dashboard{}, fmt.Errorf("%s: statuses: %w", what, err)
	}
	rows.Close()

	if q.Limit > 0 {
		d.Expiring, err = queryDevices(ctx, tx, `SELECT `+deviceColumns+` FROM devices
			WHERE lsc_serial IS NOT NULL AND lsc_not_after >= ? AND lsc_not_after < ? AND NOT `+lscRevoked+`
			ORDER BY lsc_not_after, name LIMIT ?`, nowUS, soonUS, q.Limit)
		if err != nil {
			return device.Dashboard{}, fmt.Errorf("%s: expiring: %w", what, err)
		}
		d.RecentFailures, err = queryAttempts(ctx, tx, `SELECT `+attemptColumns+` FROM attempts
			WHERE instr(result, ' Failed') > 0 AND finished_at IS NOT NULL
			ORDER BY finished_at DESC, id DESC LIMIT ?`, q.Limit)
		if err != nil {
			return device.Dashboard{}, fmt.Errorf("%s: recent failures: %w", what, err)
		}
	}
	if q.InProgressLimit > 0 {
		d.InProgress, err = queryDevices(ctx, tx, `SELECT `+deviceColumns+` FROM devices
			WHERE status = ? ORDER BY updated_at, name LIMIT ?`, device.StatusInProgress, q.InProgressLimit)
		if err != nil {
			return device.Dashboard{}, fmt.Errorf("%s: in progress: %w", what, err)
		}
	}
	return d, nil
}

// queryDevices returns the devices of a query that selects deviceColumns.
func queryDevices(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]device.Device, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
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

// attemptColumns lists the attempts columns in the order queryAttempts
// reads them.
const attemptColumns = `id, device, operation, auth_mode, remote, started_at, finished_at, result, reason, node, sudi`

// queryAttempts returns the attempts of a query that selects
// attemptColumns.
func queryAttempts(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]device.Attempt, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("scan: %w", err)
		}
		a.Operation = device.Operation(op)
		a.StartedAt = fromMicros(started)
		a.FinishedAt = fromMicros(finished)
		as = append(as, a)
	}
	return as, rows.Err()
}
