package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// campaignColumns lists the campaigns columns in the order scanCampaign
// reads them.
const campaignColumns = `id, created_at, actor, operation, search, devices, skipped, cancelled_at, cancelled_by`

// scanCampaign reads one row of campaignColumns.
func scanCampaign(row pgx.Row) (device.Campaign, error) {
	var (
		c                  device.Campaign
		created, cancelled *int64
		op                 string
		n, skipped         int64
	)
	if err := row.Scan(&c.ID, &created, &c.Actor, &op, &c.Search, &n, &skipped, &cancelled, &c.CancelledBy); err != nil {
		return device.Campaign{}, err
	}
	c.CreatedAt, c.CancelledAt, c.Skipped = fromMicros(created), fromMicros(cancelled), int(skipped)
	c.Operation = device.Operation(op)
	c.Devices = int(n)
	return c, nil
}

// ScheduleCampaign records c and applies apply to every device q matches,
// in one SERIALIZABLE transaction: the matching names are read inside it,
// so the campaign covers exactly the devices that matched when it
// committed. It stops, rolling back, if ctx ends while it runs. apply runs
// again for every device if the transaction is retried.
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
	err = s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		out = c
		out.ID, out.Devices, out.CancelledAt, out.CancelledBy = 0, 0, time.Time{}, ""
		names, err := matchingNames(ctx, tx, where, args)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if len(names) == 0 {
			return nil
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO campaigns (created_at, actor, operation, search, devices, skipped)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, micros(c.CreatedAt), c.Actor, string(c.Operation), c.Search, len(names), c.Skipped).Scan(&id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		detail := fmt.Sprintf("campaign %d", id)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
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
			keepOwned(&d, old)
			if _, err := writeAdmin(ctx, tx, old, d, actor, detail); err != nil {
				return err
			}
			rev := old.Rev
			if _, config := adminChanged(old, d); config {
				rev++ // as updateAdminSQL moved it on
			}
			if _, err := tx.Exec(ctx, `INSERT INTO campaign_devices (campaign, device, rev) VALUES ($1, $2, $3)`,
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
func matchingNames(ctx context.Context, tx pgx.Tx, where string, args []any) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT name FROM devices`+where+` ORDER BY name COLLATE "C"`, args...)
	if err != nil {
		return nil, fmt.Errorf("match devices: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("match devices: %w", err)
	}
	return names, nil
}

// ListCampaigns returns the campaigns, newest first, at most limit.
func (s *Store) ListCampaigns(ctx context.Context, limit int) ([]device.Campaign, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns
		ORDER BY created_at DESC, id DESC LIMIT $1`, limitArg(limit))
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
// that completed the campaign's operation: finished at or after $1 (the
// campaign's start) with result $2 (its success status), at the revision
// the campaign left the device at.
const completionSQL = `a.device = cd.device AND a.config_rev = cd.rev AND a.result = $2 AND a.finished_at >= $1
	AND strpos(a.result, ' Success') > 0`

// campaignClassSQL classifies each device of campaign $5 as the Store
// contract says; $3 and $4 are StatusInProgress and StatusPending. One row
// per class, and for the failed class one row per status with the device
// names joined by chr(31).
const campaignClassSQL = `WITH c AS MATERIALIZED (
	SELECT cd.device AS name, d.status AS status, CASE
		WHEN d.name IS NULL THEN '` + classOther + `'
		WHEN EXISTS (SELECT 1 FROM attempts a WHERE ` + completionSQL + `) THEN '` + classDone + `'
		WHEN d.config_rev <> cd.rev THEN '` + classOther + `'
		WHEN d.status = $3 THEN '` + classInProgress + `'
		WHEN d.status = $4 THEN '` + classPending + `'
		WHEN strpos(d.status, ' Failed') > 0 THEN '` + classFailed + `'
		ELSE '` + classOther + `' END AS class
	FROM campaign_devices cd LEFT JOIN devices d ON d.name = cd.device
	WHERE cd.campaign = $5)
SELECT class, CASE WHEN class = '` + classFailed + `' THEN status ELSE '' END AS reason,
	COUNT(*), CASE WHEN class = '` + classFailed + `' THEN string_agg(name, chr(31)) ELSE '' END
FROM c GROUP BY class, reason`

// campaignMinutesSQL counts the completions of campaign $3 per clock
// minute (microseconds / 60e6) from $4 on; $1 and $2 as in completionSQL.
const campaignMinutesSQL = `SELECT a.finished_at / 60000000 AS m, COUNT(*)
	FROM campaign_devices cd JOIN attempts a ON ` + completionSQL + `
	WHERE cd.campaign = $3 AND a.finished_at >= $4
	GROUP BY m ORDER BY m`

// CampaignProgress returns campaign id and where its devices stand, from
// one snapshot.
func (s *Store) CampaignProgress(ctx context.Context, id int64, since time.Time) (device.CampaignProgress, error) {
	what := fmt.Sprintf("campaign %d progress", id)
	var p device.CampaignProgress
	err := s.read(ctx, func(tx pgx.Tx) error {
		c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.NotFoundf("campaign %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		p = device.CampaignProgress{Campaign: c, PerMinute: []device.MinuteCount{}, Failures: []device.FailureGroup{}}
		start := int64(0)
		if !c.CreatedAt.IsZero() {
			start = c.CreatedAt.UnixMicro()
		}
		success := device.SuccessStatus(c.Operation)
		rows, err := tx.Query(ctx, campaignClassSQL, start, success, device.StatusInProgress, device.StatusPending, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for rows.Next() {
			var (
				class, reason, names string
				n                    int
			)
			if err := rows.Scan(&class, &reason, &n, &names); err != nil {
				rows.Close()
				return fmt.Errorf("%s: scan: %w", what, err)
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
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		sort.Slice(p.Failures, func(i, j int) bool {
			a, b := p.Failures[i], p.Failures[j]
			if len(a.Devices) != len(b.Devices) {
				return len(a.Devices) > len(b.Devices)
			}
			return a.Reason < b.Reason
		})

		from := int64(0)
		if !since.IsZero() {
			from = since.UnixMicro()
		}
		rows, err = tx.Query(ctx, campaignMinutesSQL, start, success, id, from)
		if err != nil {
			return fmt.Errorf("%s: per minute: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var m int64
			var n int
			if err := rows.Scan(&m, &n); err != nil {
				return fmt.Errorf("%s: per minute: scan: %w", what, err)
			}
			p.PerMinute = append(p.PerMinute, device.MinuteCount{Minute: time.Unix(m*60, 0).UTC(), Count: n})
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: per minute: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return device.CampaignProgress{}, err
	}
	return p, nil
}

// CancelCampaign cancels campaign id as the Store contract says, in one
// SERIALIZABLE transaction (run again on a serialization failure). A
// phone's claim is a compare-and-swap on the device row at its Rev: if it
// commits first, this transaction's write to that row fails and is retried
// to find the device Running; if this commits first, the claim finds the
// Rev moved on.
func (s *Store) CancelCampaign(ctx context.Context, id int64, actor device.Actor, at time.Time) (device.CampaignCancel, error) {
	what := fmt.Sprintf("cancel campaign %d", id)
	var out device.CampaignCancel
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		out = device.CampaignCancel{}
		c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.NotFoundf("campaign %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if c.Cancelled() {
			return fault.Conflictf("campaign %d was cancelled already, at %s by %s", id, c.CancelledAt.Format(time.RFC3339), c.CancelledBy)
		}
		type campaignDevice struct {
			name string
			rev  int64
		}
		rows, err := tx.Query(ctx, `SELECT device, rev FROM campaign_devices WHERE campaign = $1 ORDER BY device COLLATE "C"`, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		cds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (campaignDevice, error) {
			var cd campaignDevice
			err := r.Scan(&cd.name, &cd.rev)
			return cd, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		detail := fmt.Sprintf("campaign %d cancelled", id)
		for _, cd := range cds {
			if err := ctx.Err(); err != nil {
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
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM attempts WHERE device = $1 AND finished_at IS NULL)`,
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
				if _, err := writeAdmin(ctx, tx, old, d, actor, detail); err != nil {
					return err
				}
				out.Cancelled++
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET cancelled_at = $1, cancelled_by = $2 WHERE id = $3`,
			at.UnixMicro(), actor.String(), id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		c.CancelledAt, c.CancelledBy = at.UTC().Truncate(time.Microsecond), actor.String()
		out.Campaign = c
		return insertAudit(ctx, tx, device.AuditEvent{
			At: at, Actor: actor, Action: device.AuditCampaignCancel, Target: fmt.Sprintf("campaign %d", id),
			Detail: fmt.Sprintf("%d phones back to No Pending Operation; skipped %d (%d running, %d changed since); %d finished already",
				out.Cancelled, out.Skipped(), out.Running, out.Changed, out.Finished),
		})
	})
	if err != nil {
		return device.CampaignCancel{}, err
	}
	return out, nil
}
