package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// fleetCampaign fills s with n devices, a campaign of Install over all of
// them, and the history of a re-keying window well under way: 60% done
// (each after two failed tries), 10% failed for one of three reasons, 5%
// in progress, the rest pending. The sessions' rows are written in one
// transaction, as the set-up of a measurement, not through the session
// path. It returns the campaign and the time it started.
func fleetCampaign(tb testing.TB, s *Store, n int) (device.Campaign, time.Time) {
	tb.Helper()
	ctx := context.Background()
	if _, err := importDevices(s, ctx, manyDevices(n)); err != nil {
		tb.Fatal(err)
	}
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	c, err := s.ScheduleCampaign(ctx, device.Campaign{CreatedAt: start, Actor: "cli:bench", Operation: device.OpInstall, Search: "all phones"},
		device.Query{}, device.CLIActor("bench"), func(old device.Device) (device.Device, error) {
			d := old
			d.AuthString, d.Status, d.UpdatedAt = fmt.Sprintf("%08d", len(old.Name)), device.StatusPending, start
			return d, nil
		})
	if err != nil {
		tb.Fatal(err)
	}
	reasons := []string{device.ReasonCommFailure, device.ReasonKeyGenFailed, device.ReasonLate}
	err = s.submit(ctx, "bench history", func(ctx context.Context, tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO attempts (device, operation, started_at, finished_at, result, node, config_rev)
			SELECT name, 'install', ?, ?, ?, 'n1', config_rev FROM devices WHERE name = ?`)
		if err != nil {
			return err
		}
		defer ins.Close()
		upd, err := tx.PrepareContext(ctx, `UPDATE devices SET status = ? WHERE name = ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		for i := range n {
			name := fmt.Sprintf("SEP%012X", i)
			at := start.Add(time.Duration(i) * 700 * time.Millisecond) // ≈ 85 per minute
			var status string
			switch pct := i % 100; {
			case pct < 60:
				status = device.SuccessStatus(device.OpInstall)
				for k, r := range []string{device.FailedStatus(device.OpInstall, reasons[i%3]), device.FailedStatus(device.OpInstall, reasons[(i+1)%3]), status} {
					t := at.Add(time.Duration(k) * time.Second)
					if _, err := ins.ExecContext(ctx, t.UnixMicro(), t.Add(500*time.Millisecond).UnixMicro(), r, name); err != nil {
						return err
					}
				}
			case pct < 70:
				status = device.FailedStatus(device.OpInstall, reasons[i%3])
				if _, err := ins.ExecContext(ctx, at.UnixMicro(), at.Add(time.Second).UnixMicro(), status, name); err != nil {
					return err
				}
			case pct < 75:
				status = device.StatusInProgress
				if _, err := ins.ExecContext(ctx, at.UnixMicro(), nil, "", name); err != nil {
					return err
				}
			default:
				continue
			}
			if _, err := upd.ExecContext(ctx, status, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c, start
}

// BenchmarkCampaignProgress10k measures the progress of a campaign over
// 10,000 phones, as the campaign page polls it.
func BenchmarkCampaignProgress10k(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	c, start := fleetCampaign(b, s, 10_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		p, err := s.CampaignProgress(ctx, c.ID, start)
		if err != nil {
			b.Fatal(err)
		}
		if p.Done != 6000 || p.Failed != 1000 || p.InProgress != 500 || p.Pending != 2500 {
			b.Fatalf("progress %+v", p)
		}
	}
}

// BenchmarkDashboard10k measures the dashboard over 10,000 phones and
// their history.
func BenchmarkDashboard10k(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	_, start := fleetCampaign(b, s, 10_000)
	ctx := context.Background()
	now := start.Add(3 * time.Hour)
	b.ResetTimer()
	for b.Loop() {
		d, err := s.Dashboard(ctx, device.DashboardQuery{Now: now, ExpiringBefore: now.Add(device.ExpiringWithin),
			Limit: device.DashboardList, InProgressLimit: device.DashboardInProgress})
		if err != nil {
			b.Fatal(err)
		}
		if d.Devices != 10_000 || len(d.RecentFailures) != device.DashboardList {
			b.Fatalf("dashboard %+v", d)
		}
	}
}

// TestCampaignQueryPlans checks that the campaign and dashboard queries
// find their rows through indexes: no full scan of the attempts, and of
// campaign_devices only through its primary key; and that a campaign's
// device is classified once, not once for each use of its class.
func TestCampaignQueryPlans(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	tests := []struct {
		name  string
		query string
		args  []any
	}{
		{"campaign-classes", campaignClassSQL, []any{0, "x", "y", "z", 1}},
		{"campaign-minutes", campaignMinutesSQL, []any{0, "x", "y", "z", 1, 0}},
		{"recent-failures", `SELECT ` + attemptColumns + ` FROM attempts
			WHERE instr(result, ' Failed') > 0 AND finished_at IS NOT NULL
			ORDER BY finished_at DESC, id DESC LIMIT ?`, []any{20}},
		{"expiring", `SELECT name FROM devices WHERE lsc_serial IS NOT NULL AND lsc_not_after >= ? AND lsc_not_after < ?
			ORDER BY lsc_not_after, name LIMIT ?`, []any{0, 1, 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := s.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if n := strings.Count(strings.Join(plan, "\n"), "CORRELATED SCALAR SUBQUERY"); n > 1 {
				t.Errorf("the attempts subquery runs %d times a row, want once (is the CTE materialized?):\n\t%s", n, strings.Join(plan, "\n\t"))
			}
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN attempts") || strings.HasPrefix(step, "SCAN devices") ||
					(strings.HasPrefix(step, "SCAN") && strings.Contains(step, "campaign_devices")) {
					t.Errorf("plan scans a table: %q\n\t%s", step, strings.Join(plan, "\n\t"))
				}
			}
		})
	}
}
