package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
)

// dashboardCountsSQL counts, in one pass over devices: all of them, those
// without an LSC, those whose LSC is revoked, those valid at $1 (not
// revoked), and those valid at $1 that expire before $2. The LSC states
// are buildWhere's.
const dashboardCountsSQL = `SELECT COUNT(*),
	COUNT(*) FILTER (WHERE lsc_serial IS NULL),
	COUNT(*) FILTER (WHERE revoked),
	COUNT(*) FILTER (WHERE lsc_serial IS NOT NULL AND NOT revoked AND lsc_not_after >= $1),
	COUNT(*) FILTER (WHERE lsc_serial IS NOT NULL AND NOT revoked AND lsc_not_after >= $1 AND lsc_not_after < $2)
	FROM (SELECT lsc_serial, lsc_not_after, lsc_serial IS NOT NULL AND ` + lscRevoked + ` AS revoked FROM devices) d`

// Dashboard returns the fleet overview from one snapshot.
func (s *Store) Dashboard(ctx context.Context, q device.DashboardQuery) (device.Dashboard, error) {
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	d := device.Dashboard{ByStatus: []device.Count{}, Expiring: []device.Device{}, InProgress: []device.Device{},
		RecentFailures: []device.Attempt{}}
	nowUS, soonUS := now.UnixMicro(), q.ExpiringBefore.UnixMicro()
	err := s.read(ctx, func(tx pgx.Tx) error {
		var none, revoked, valid int
		if err := tx.QueryRow(ctx, dashboardCountsSQL, nowUS, soonUS).Scan(&d.Devices, &none, &revoked, &valid, &d.ExpiringSoon); err != nil {
			return fmt.Errorf("counts: %w", err)
		}
		d.ByLSC = []device.Count{
			{Value: device.LSCNone, Count: none},
			{Value: device.LSCValid, Count: valid},
			{Value: device.LSCExpired, Count: d.Devices - none - valid - revoked},
			{Value: device.LSCRevoked, Count: revoked},
		}
		rows, err := tx.Query(ctx, `SELECT status, COUNT(*) AS n FROM devices GROUP BY status ORDER BY n DESC, status COLLATE "C"`)
		if err != nil {
			return fmt.Errorf("statuses: %w", err)
		}
		for rows.Next() {
			var c device.Count
			if err := rows.Scan(&c.Value, &c.Count); err != nil {
				rows.Close()
				return fmt.Errorf("statuses: scan: %w", err)
			}
			d.ByStatus = append(d.ByStatus, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("statuses: %w", err)
		}
		if q.Limit > 0 {
			d.Expiring, err = queryDevices(ctx, tx, `SELECT `+deviceColumns+` FROM devices
				WHERE lsc_serial IS NOT NULL AND lsc_not_after >= $1 AND lsc_not_after < $2 AND NOT `+lscRevoked+`
				ORDER BY lsc_not_after, name COLLATE "C" LIMIT $3`, nowUS, soonUS, q.Limit)
			if err != nil {
				return fmt.Errorf("expiring: %w", err)
			}
			d.RecentFailures, err = queryAttempts(ctx, tx, `SELECT `+attemptColumns+` FROM attempts
				WHERE strpos(result, ' Failed') > 0 AND finished_at IS NOT NULL
				ORDER BY finished_at DESC, id DESC LIMIT $1`, q.Limit)
			if err != nil {
				return fmt.Errorf("recent failures: %w", err)
			}
		}
		if q.InProgressLimit > 0 {
			d.InProgress, err = queryDevices(ctx, tx, `SELECT `+deviceColumns+` FROM devices
				WHERE status = $1 ORDER BY updated_at NULLS FIRST, name COLLATE "C" LIMIT $2`, device.StatusInProgress, q.InProgressLimit)
			if err != nil {
				return fmt.Errorf("in progress: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return device.Dashboard{}, fmt.Errorf("dashboard: %w", err)
	}
	return d, nil
}
