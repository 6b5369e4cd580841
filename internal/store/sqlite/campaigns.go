package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// campaignColumns lists the campaigns columns in the order scanCampaign
// reads them.
const campaignColumns = `id, created_at, actor, operation, search, devices, skipped, cancelled_at, cancelled_by`

// scanCampaign reads one row of campaignColumns.
func scanCampaign(sc scanner) (device.Campaign, error) {
	var (
		c                  device.Campaign
		created, cancelled sql.NullInt64
		op                 string
	)
	if err := sc.Scan(&c.ID, &created, &c.Actor, &op, &c.Search, &c.Devices, &c.Skipped, &cancelled, &c.CancelledBy); err != nil {
		return device.Campaign{}, err
	}
	c.CreatedAt, c.CancelledAt = fromMicros(created), fromMicros(cancelled)
	c.Operation = device.Operation(op)
	return c, nil
}

// ScheduleCampaign records c and applies apply to every device q matches,
// in one write: the matching names are read inside the write transaction,
// so the campaign covers exactly the devices that matched when it
// committed. Like an import, it stops and rolls back if the caller's ctx
// ends while it runs.
func (s *Store) ScheduleCampaign(ctx context.Context, c device.Campaign, q device.Query, actor device.Actor,
	apply func(old device.Device) (device.Device, error)) (device.Campaign, error) {
	if err := q.Validate(); err != nil {
		return device.Campaign{}, err
	}
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	where, args, err := buildWhere(q.Filters, now)
	if err != nil {
		return device.Campaign{}, err
	}
	const what = "schedule campaign"
	var out device.Campaign
	caller := ctx
	err = s.submit(ctx, what, func(ctx context.Context, sqlTx *sql.Tx) error {
		out = c
		out.ID, out.Devices, out.CancelledAt, out.CancelledBy = 0, 0, time.Time{}, ""
		names, err := matchingNames(ctx, sqlTx, where, args)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if len(names) == 0 {
			return nil
		}
		tx := newStmtCache(sqlTx)
		defer tx.Close()
		res, err := tx.ExecContext(ctx, `INSERT INTO campaigns (created_at, actor, operation, search, devices, skipped)
			VALUES (?, ?, ?, ?, ?, ?)`, micros(c.CreatedAt), c.Actor, string(c.Operation), c.Search, len(names), c.Skipped)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		detail := fmt.Sprintf("campaign %d", id)
		for _, name := range names {
			if err := caller.Err(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			old, err := getDeviceTx(ctx, tx, name)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			d, err := apply(old)
			if err != nil {
				return err
			}
			// The administrator's fields only, as UpdateDevice writes them.
			d.Name, d.CreatedAt, d.LSC = old.Name, old.CreatedAt, old.LSC
			d.AuthFailures, d.LastAuthFailure, d.AttemptsTotal, d.Rev = old.AuthFailures, old.LastAuthFailure, old.AttemptsTotal, old.Rev
			if _, err := writeAdminDetail(ctx, tx, old, d, actor, detail); err != nil {
				return err
			}
			rev := old.Rev
			if _, config := adminChanged(old, d); config {
				rev++ // as updateAdminSQL moved it on
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_devices (campaign, device, rev) VALUES (?, ?, ?)`,
				id, name, rev); err != nil {
				return fmt.Errorf("%s: device %q: %w", what, name, err)
			}
		}
		out.ID, out.Devices = id, len(names)
		return insertAudit(ctx, tx, device.AuditEvent{
			At: c.CreatedAt, Actor: actor, Action: device.AuditCampaignCreate, Target: detail,
			Changes: []device.FieldChange{{Field: "operation", New: string(c.Operation)}},
			Detail:  fmt.Sprintf("%d phones matching: %s", len(names), c.Search),
		})
	})
	if err != nil {
		return device.Campaign{}, err
	}
	return out, nil
}

// matchingNames returns, in name order, the names of the devices where
// selects.
func matchingNames(ctx context.Context, tx *sql.Tx, where string, args []any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM devices`+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("match devices: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("match devices: scan: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("match devices: %w", err)
	}
	return names, nil
}

// ListCampaigns returns the campaigns, newest first, at most limit.
func (s *Store) ListCampaigns(ctx context.Context, limit int) ([]device.Campaign, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+campaignColumns+` FROM campaigns
		ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	defer rows.Close()
	cs := []device.Campaign{}
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("list campaigns: scan: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return cs, nil
}

// The classes of a campaign's device, as campaignClassSQL names them.
const (
	classDone       = "done"
	classPending    = "pending"
	classInProgress = "in_progress"
	classFailed     = "failed"
	classOther      = "other"
)

// completionSQL is the condition for an attempt a of campaign device cd
// that completed the campaign's operation: finished at or after ?1 (the
// campaign's start) with result ?2 (its success status), at the revision
// the campaign left the device at.
const completionSQL = `a.device = cd.device AND a.config_rev = cd.rev AND a.result = ?2 AND a.finished_at >= ?1
	AND instr(a.result, ' Success') > 0`

// campaignClassSQL classifies each device of campaign ?5 as the Store
// contract says, in one pass over campaign_devices (its primary key) with
// one indexed lookup of the device and of its attempts each. ?3 and ?4 are
// StatusInProgress and StatusPending. It aggregates: one row per class,
// and for the failed class one row per status with the device names
// joined by char(31).
const campaignClassSQL = `WITH c AS MATERIALIZED (
	SELECT cd.device AS name, d.status AS status, CASE
		WHEN d.name IS NULL THEN '` + classOther + `'
		WHEN EXISTS (SELECT 1 FROM attempts a WHERE ` + completionSQL + `) THEN '` + classDone + `'
		WHEN d.config_rev <> cd.rev THEN '` + classOther + `'
		WHEN d.status = ?3 THEN '` + classInProgress + `'
		WHEN d.status = ?4 THEN '` + classPending + `'
		WHEN instr(d.status, ' Failed') > 0 THEN '` + classFailed + `'
		ELSE '` + classOther + `' END AS class
	FROM campaign_devices cd LEFT JOIN devices d ON d.name = cd.device
	WHERE cd.campaign = ?5)
SELECT class, CASE WHEN class = '` + classFailed + `' THEN status ELSE '' END AS reason,
	COUNT(*), CASE WHEN class = '` + classFailed + `' THEN group_concat(name, char(31)) ELSE '' END
FROM c GROUP BY class, reason`

// campaignMinutesSQL counts the completions of campaign ?5 per clock
// minute (microseconds / 60e6) from ?6 on.
const campaignMinutesSQL = `SELECT a.finished_at / 60000000 AS m, COUNT(*)
	FROM campaign_devices cd JOIN attempts a ON ` + completionSQL + `
	WHERE cd.campaign = ?5 AND a.finished_at >= ?6
	GROUP BY m ORDER BY m`

// CampaignProgress returns campaign id and where its devices stand, from
// one read transaction.
func (s *Store) CampaignProgress(ctx context.Context, id int64, since time.Time) (device.CampaignProgress, error) {
	what := fmt.Sprintf("campaign %d progress", id)
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return device.CampaignProgress{}, fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	c, err := scanCampaign(tx.QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return device.CampaignProgress{}, fault.NotFoundf("campaign %d not found", id)
	}
	if err != nil {
		return device.CampaignProgress{}, fmt.Errorf("%s: %w", what, err)
	}
	p := device.CampaignProgress{Campaign: c, PerMinute: []device.MinuteCount{}, Failures: []device.FailureGroup{}}
	start := micros(c.CreatedAt)
	if start == nil {
		start = int64(0)
	}
	args := []any{start, device.SuccessStatus(c.Operation), device.StatusInProgress, device.StatusPending, id}
	rows, err := tx.QueryContext(ctx, campaignClassSQL, args...)
	if err != nil {
		return device.CampaignProgress{}, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			class, reason, names string
			n                    int
		)
		if err := rows.Scan(&class, &reason, &n, &names); err != nil {
			return device.CampaignProgress{}, fmt.Errorf("%s: scan: %w", what, err)
		}
		switch class {
		case classDone:
			p.Done += n
		case classPending:
			p.Pending += n
		case classInProgress:
			p.InProgress += n
		case classFailed:
			p.Failed += n
			list := strings.Split(names, "\x1f")
			sort.Strings(list)
			p.Failures = append(p.Failures, device.FailureGroup{Reason: reason, Devices: list})
		default:
			p.Other += n
		}
	}
	if err := rows.Err(); err != nil {
		return device.CampaignProgress{}, fmt.Errorf("%s: %w", what, err)
	}
	rows.Close()
	sort.Slice(p.Failures, func(i, j int) bool {
		a, b := p.Failures[i], p.Failures[j]
		if len(a.Devices) != len(b.Devices) {
			return len(a.Devices) > len(b.Devices)
		}
		return a.Reason < b.Reason
	})

	from := since.UnixMicro()
	if since.IsZero() {
		from = 0
	}
	rows, err = tx.QueryContext(ctx, campaignMinutesSQL, append(args, from)...)
	if err != nil {
		return device.CampaignProgress{}, fmt.Errorf("%s: per minute: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m int64
		var n int
		if err := rows.Scan(&m, &n); err != nil {
			return device.CampaignProgress{}, fmt.Errorf("%s: per minute: scan: %w", what, err)
		}
		p.PerMinute = append(p.PerMinute, device.MinuteCount{Minute: time.Unix(m*60, 0).UTC(), Count: n})
	}
	if err := rows.Err(); err != nil {
		return device.CampaignProgress{}, fmt.Errorf("%s: per minute: %w", what, err)
	}
	return p, nil
}

// campaignDevice is one device of a campaign and the Rev the campaign
// left it at.
type campaignDevice struct {
	name string
	rev  int64
}

// CancelCampaign cancels campaign id as the Store contract says, in one
// write through the single writer: a phone's claim (StartAttempt) is
// serialized before or after it, never in between. Like a campaign, it
// stops and rolls back if the caller's ctx ends while it runs.
func (s *Store) CancelCampaign(ctx context.Context, id int64, actor device.Actor, at time.Time) (device.CampaignCancel, error) {
	what := fmt.Sprintf("cancel campaign %d", id)
	var out device.CampaignCancel
	caller := ctx
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		out = device.CampaignCancel{}
		c, err := scanCampaign(tx.QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fault.NotFoundf("campaign %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if c.Cancelled() {
			return fault.Conflictf("campaign %d was cancelled already, at %s by %s", id, c.CancelledAt.Format(time.RFC3339), c.CancelledBy)
		}
		rows, err := tx.QueryContext(ctx, `SELECT device, rev FROM campaign_devices WHERE campaign = ? ORDER BY device`, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var cds []campaignDevice
		for rows.Next() {
			var cd campaignDevice
			if err := rows.Scan(&cd.name, &cd.rev); err != nil {
				rows.Close()
				return fmt.Errorf("%s: scan: %w", what, err)
			}
			cds = append(cds, cd)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		detail := fmt.Sprintf("campaign %d cancelled", id)
		for _, cd := range cds {
			if err := caller.Err(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			old, err := getDeviceTx(ctx, tx, cd.name)
			if errors.Is(err, fault.ErrNotFound) {
				out.Finished++
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			var open bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM attempts WHERE device = ? AND finished_at IS NULL)`,
				cd.name).Scan(&open); err != nil {
				return fmt.Errorf("%s: device %q: %w", what, cd.name, err)
			}
			switch {
			case old.Rev != cd.rev:
				out.Changed++
			case open || old.Status == device.StatusInProgress:
				out.Running++
			case old.Operation == device.OpNone:
				out.Finished++
			default:
				d := old
				d.Operation, d.UpdatedAt = device.OpNone, at
				if old.Status == device.StatusPending {
					d.Status = device.StatusNone
				}
				if _, err := writeAdminDetail(ctx, tx, old, d, actor, detail); err != nil {
					return err
				}
				out.Cancelled++
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET cancelled_at = ?, cancelled_by = ? WHERE id = ?`,
			at.UnixMicro(), actor.String(), id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		c.CancelledAt, c.CancelledBy = at.UTC().Truncate(time.Microsecond), actor.String()
		out.Campaign = c
		return insertAudit(ctx, tx, device.AuditEvent{
			At: at, Actor: actor, Action: device.AuditCampaignCancel, Target: fmt.Sprintf("campaign %d", id),
			Detail: cancelDetail(out),
		})
	})
	if err != nil {
		return device.CampaignCancel{}, err
	}
	return out, nil
}

// cancelDetail is the audit detail of a cancelled campaign: its counts.
func cancelDetail(r device.CampaignCancel) string {
	return fmt.Sprintf("%d phones back to No Pending Operation; skipped %d (%d running, %d changed since); %d finished already",
		r.Cancelled, r.Skipped(), r.Running, r.Changed, r.Finished)
}
