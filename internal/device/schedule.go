package device

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// AuditCampaignCreate is the audit action of a scheduled campaign; its
// target is "campaign ID". Each device the campaign changed has its own
// AuditDeviceUpdate event.
const AuditCampaignCreate = "campaign.create"

// AuditCampaignCancel is the audit action of a cancelled campaign; its
// target is "campaign ID" and its detail the counts. Each device it
// disarmed has its own AuditDeviceUpdate event.
const AuditCampaignCancel = "campaign.cancel"

// NeedsLSC reports whether operation op acts only on phones with an LSC on
// record: Delete removes the LSC and Troubleshoot reports on it, so a bulk
// Delete or Troubleshoot skips the phones that have none.
func NeedsLSC(op Operation) bool { return op == OpDelete || op == OpTroubleshoot }

// HasLSC is the filter of the phones with an LSC on record, valid or
// expired.
var HasLSC = Filter{Field: FieldLSCExpires, Match: MatchNotEmpty}

// The windows of a campaign's progress and of the dashboard.
const (
	// ProgressWindow is how far back CampaignProgress.PerMinute reaches.
	ProgressWindow = 24 * time.Hour
	// RateWindow is the recent span whose completion rate estimates the
	// time a campaign has left.
	RateWindow = 15 * time.Minute
	// ExpiringWithin is how soon a valid LSC expires for the dashboard to
	// count it as expiring soon.
	ExpiringWithin = 30 * 24 * time.Hour
	// ExpiringUrgent is how near its expiry a valid LSC is counted as
	// urgent on the dashboard: renewal should have replaced it by then.
	ExpiringUrgent = 7 * 24 * time.Hour
	// DashboardList is how many expiring LSCs and recent failures the
	// dashboard lists.
	DashboardList = 20
	// DashboardInProgress is how many devices in progress the dashboard
	// lists at most.
	DashboardInProgress = 100
)

// maxSearchText bounds the search a campaign records, in characters.
const maxSearchText = 1000

// Schedule is the bulk operation: it applies ch to every device c matches
// (all pages: c's Limit and Offset are ignored) exactly as [Service.Change]
// would, each device with its own generated authentication string when
// ch.GenerateString (or when string mode needs one), in one transaction, and
// records the campaign and its devices. ch.Operation must name an
// operation other than none. No match is an Invalid error; a device that
// refuses the change leaves every device as it was, and the error names it.
func (s *Service) Schedule(ctx context.Context, actor Actor, c Criteria, ch Change) (Campaign, error) {
	if ch.Operation == nil {
		return Campaign{}, fault.InvalidField("operation", "a bulk operation needs a certificate operation: install, delete or troubleshoot")
	}
	op, err := ParseOperation(string(*ch.Operation))
	if err != nil {
		return Campaign{}, err
	}
	if op == OpNone {
		return Campaign{}, fault.InvalidField("operation", "a bulk operation needs a certificate operation: install, delete or troubleshoot, not none")
	}
	ch.Operation = &op
	if err := ch.Validate(); err != nil {
		return Campaign{}, err
	}
	now := s.now().UTC()
	c.Limit, c.Offset = 0, 0
	q, err := c.Query(now)
	if err != nil {
		return Campaign{}, err
	}
	cmp := Campaign{CreatedAt: now, Actor: actor.String(), Operation: op, Search: c.String()}
	if NeedsLSC(op) {
		all, err := s.store.ListDevices(ctx, Query{Filters: q.Filters, Limit: 1, Now: now})
		if err != nil {
			return Campaign{}, fmt.Errorf("schedule %s: count the matches: %w", op, err)
		}
		q.Filters = append(slices.Clone(q.Filters), HasLSC)
		with, err := s.store.ListDevices(ctx, Query{Filters: q.Filters, Limit: 1, Now: now})
		if err != nil {
			return Campaign{}, fmt.Errorf("schedule %s: count the matches: %w", op, err)
		}
		cmp.Skipped = max(all.Total-with.Total, 0)
	}
	r := rule{generate: ch.GenerateString, rearm: true, explicitString: ch.AuthString != nil}
	var refused error
	got, err := s.store.ScheduleCampaign(ctx, cmp, q, actor, func(old Device) (Device, error) {
		d := old
		ch.Apply(&d)
		if err := s.prepare(&d, &old, r, now); err != nil {
			if !strings.Contains(err.Error(), old.Name) {
				err = fmt.Errorf("device %s: %w", old.Name, err)
			}
			refused = err
			return Device{}, err
		}
		d.UpdatedAt = now
		return d, nil
	})
	if refused != nil {
		return Campaign{}, refused
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("schedule %s: %w", op, err)
	}
	if got.Devices == 0 {
		if cmp.Skipped > 0 {
			return Campaign{}, NoLSCError(cmp.Skipped, op)
		}
		return Campaign{}, fault.Invalidf("no phone matches the search")
	}
	return got, nil
}

// NoLSCError is the refusal of a bulk op (one that [NeedsLSC]) whose
// search matched n phones, none with an LSC on record.
func NoLSCError(n int, op Operation) error {
	if n == 1 {
		return fault.InvalidField("operation", "the phone the search matches has no LSC on record: %s needs one", op.Label())
	}
	return fault.InvalidField("operation", "none of the %d phones the search matches has an LSC on record: %s needs one", n, op.Label())
}

// CountForBulk counts the phones a bulk op over c would act on, and the
// phones c matches that it would skip (those without an LSC on record,
// for an operation that [NeedsLSC]).
func (s *Service) CountForBulk(ctx context.Context, c Criteria, op Operation) (act, skip int, err error) {
	c.Limit, c.Offset = 1, 0
	q, err := c.Query(s.now().UTC())
	if err != nil {
		return 0, 0, err
	}
	all, err := s.store.ListDevices(ctx, q)
	if err != nil {
		return 0, 0, fmt.Errorf("count phones: %w", err)
	}
	if !NeedsLSC(op) {
		return all.Total, 0, nil
	}
	q.Filters = append(slices.Clone(q.Filters), HasLSC)
	with, err := s.store.ListDevices(ctx, q)
	if err != nil {
		return 0, 0, fmt.Errorf("count phones: %w", err)
	}
	return with.Total, max(all.Total-with.Total, 0), nil
}

// CancelCampaign cancels campaign id for actor: the phones still waiting
// for its operation return to No Pending Operation; phones a session holds
// now, or that someone changed since, are left alone and counted (see
// [Store.CancelCampaign]). NotFound if unknown; Conflict if cancelled
// already.
func (s *Service) CancelCampaign(ctx context.Context, actor Actor, id int64) (CampaignCancel, error) {
	if id <= 0 {
		return CampaignCancel{}, fault.NotFoundf("campaign %d not found", id)
	}
	r, err := s.store.CancelCampaign(ctx, id, actor, s.now().UTC())
	if err != nil {
		return CampaignCancel{}, fmt.Errorf("cancel campaign %d: %w", id, err)
	}
	return r, nil
}

// Campaigns returns the latest campaigns, newest first, at most limit (all
// when limit <= 0).
func (s *Service) Campaigns(ctx context.Context, limit int) ([]Campaign, error) {
	cs, err := s.store.ListCampaigns(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return cs, nil
}

// Campaign returns where campaign id stands now: its devices by state, the
// failures grouped by reason, completions per minute since it started (one
// entry per minute up to now, at most the last [ProgressWindow]) and the
// time left at the rate of the last [RateWindow]. NotFound if unknown.
func (s *Service) Campaign(ctx context.Context, id int64) (CampaignProgress, error) {
	now := s.now().UTC()
	nowMin := now.Truncate(time.Minute)
	since := nowMin.Add(-ProgressWindow + time.Minute)
	p, err := s.store.CampaignProgress(ctx, id, since)
	if err != nil {
		return CampaignProgress{}, fmt.Errorf("campaign %d: %w", id, err)
	}
	p.PerMinute = fillMinutes(p.PerMinute, maxTime(since, p.CreatedAt.Truncate(time.Minute)), nowMin)
	if p.Failures == nil {
		p.Failures = []FailureGroup{}
	}
	p.Remaining, p.RemainingKnown = remaining(p, now)
	return p, nil
}

// fillMinutes returns one entry per minute from first to last, inclusive,
// with the counts of sparse (sorted, truncated minutes) and zero elsewhere.
func fillMinutes(sparse []MinuteCount, first, last time.Time) []MinuteCount {
	out := []MinuteCount{}
	if last.Before(first) {
		return out
	}
	out = make([]MinuteCount, 0, int(last.Sub(first)/time.Minute)+1)
	i := 0
	for m := first; !m.After(last); m = m.Add(time.Minute) {
		n := 0
		for i < len(sparse) && !sparse[i].Minute.After(m) {
			if sparse[i].Minute.Equal(m) {
				n += sparse[i].Count
			}
			i++
		}
		out = append(out, MinuteCount{Minute: m, Count: n})
	}
	return out
}

// remaining estimates the time p needs to finish its pending and running
// devices at the completion rate of the last RateWindow (or since the
// campaign started, if that is more recent). It is unknown while there is
// no completion in that window.
func remaining(p CampaignProgress, now time.Time) (time.Duration, bool) {
	left := p.Pending + p.InProgress
	if left == 0 {
		return 0, true
	}
	nowMin := now.Truncate(time.Minute)
	from := nowMin.Add(-RateWindow + time.Minute) // the window's first bucket
	n := 0
	for _, m := range p.PerMinute {
		if !m.Minute.Before(from) {
			n += m.Count
		}
	}
	start := maxTime(from, p.CreatedAt)
	elapsed := now.Sub(start)
	if n == 0 || elapsed <= 0 {
		return 0, false
	}
	per := float64(elapsed) / float64(n) // time per completion
	return time.Duration(per * float64(left)).Round(time.Second), true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Dashboard returns the overview of the fleet at the service's clock: the
// device count, the counts by Operation Status and by LSC state, the LSCs
// that expire within [ExpiringWithin] (the first [DashboardList] listed,
// soonest first), the devices a session holds now, the latest failed
// attempts, and the phones that asked for a device that is not configured
// (when the service was given [ServiceOptions.Strangers]).
func (s *Service) Dashboard(ctx context.Context) (Dashboard, error) {
	now := s.now().UTC()
	d, err := s.store.Dashboard(ctx, DashboardQuery{
		Now: now, ExpiringBefore: now.Add(ExpiringWithin),
		Limit: DashboardList, InProgressLimit: DashboardInProgress,
	})
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: %w", err)
	}
	// More counts, each the total of an indexed search (Limit 1). A
	// renewal by an LSC that was revoked since it was armed is not one
	// waiting: a revoked LSC proves nothing, so it is counted apart and
	// taken off.
	byLSC := []Filter{
		{Field: FieldOperation, Match: MatchEquals, Value: string(OpInstall)},
		{Field: FieldAuthMode, Match: MatchEquals, Value: string(AuthLSC)},
	}
	var byRevoked int
	for _, c := range []struct {
		n       *int
		filters []Filter
	}{
		{&d.ExpiringWeek, []Filter{
			{Field: FieldLSCStatus, Match: MatchEquals, Value: LSCValid},
			{Field: FieldLSCExpires, Match: MatchBefore, Value: now.Add(ExpiringUrgent).Format(time.RFC3339)},
		}},
		{&d.RenewalsWaiting, byLSC},
		{&byRevoked, append(slices.Clip(byLSC), Filter{Field: FieldLSCStatus, Match: MatchEquals, Value: LSCRevoked})},
	} {
		page, err := s.store.ListDevices(ctx, Query{Filters: c.filters, Limit: 1, Now: now})
		if err != nil {
			return Dashboard{}, fmt.Errorf("dashboard: %w", err)
		}
		*c.n = page.Total
	}
	d.RenewalsWaiting = max(d.RenewalsWaiting-byRevoked, 0)
	if s.strangers != nil {
		d.Unknown = s.strangers.UnknownNames()
	}
	return d, nil
}
