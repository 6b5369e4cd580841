package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// campaignStart is when the suite's campaigns are scheduled.
var campaignStart = at(time.Hour)

// armEach returns an apply function for ScheduleCampaign that arms Install
// with a string of its own for each device it is called with, and records
// the names it saw.
func armEach(seen *[]string) func(old device.Device) (device.Device, error) {
	return func(old device.Device) (device.Device, error) {
		*seen = append(*seen, old.Name)
		d := old
		d.Operation, d.AuthMode, d.SecurityProfile = device.OpInstall, device.AuthString, device.NonSecure
		d.AuthString = fmt.Sprintf("%08d", 10000000+len(*seen))
		d.Status, d.UpdatedAt = device.StatusPending, campaignStart
		return d, nil
	}
}

// schedule runs a campaign of Install over the devices q matches, failing t
// if it cannot.
func schedule(t *testing.T, s device.Store, q device.Query) device.Campaign {
	t.Helper()
	var seen []string
	q.Now = campaignStart
	c, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: campaignStart, Actor: "cli:alice",
		Operation: device.OpInstall, Search: "test search"}, q, device.CLIActor("alice"), armEach(&seen))
	must(t, err)
	return c
}

// claim starts an attempt on the device at its current revision, held by
// node n1.
func claim(t *testing.T, s device.Store, name string, when time.Time) int64 {
	t.Helper()
	return start(t, s, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: when, Node: "n1",
		Rev: get(t, s, name).Rev})
}

// finish closes attempt id of the device with result (a success completes
// the operation).
func finish(t *testing.T, s device.Store, name string, id int64, when time.Time, result string) {
	t.Helper()
	ok := result == device.SuccessStatus(device.OpInstall)
	o := device.Outcome{AttemptID: id, Node: "n1", Device: name, FinishedAt: when, Result: result, Completed: ok}
	if ok {
		o.SetLSC = newCert("C"+name, when.Add(365*24*time.Hour))
	}
	must(t, s.FinishAttempt(t.Context(), o))
}

// runCampaigns covers ScheduleCampaign, ListCampaigns and
// CampaignProgress.
func runCampaigns(t *testing.T, open opener) {
	t.Run("schedule-over-search", func(t *testing.T) {
		s := open.fresh(t)
		var ds []device.Device
		for i, desc := range []string{"Lobby 1", "Office", "lobby 2", "Lobby 3", "Lab"} {
			d := newDevice(fmt.Sprintf("SEP00000000000%d", i))
			d.Description, d.Operation, d.Status, d.AuthString = desc, device.OpNone, device.StatusNone, ""
			d.LSC = newCert(fmt.Sprintf("L%d", i), at(1000*time.Hour))
			ds = append(ds, d)
		}
		create(t, s, ds...)
		before := get(t, s, ds[0].Name)
		var seen []string
		apply := armEach(&seen)
		c, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: campaignStart, Actor: "cli:alice",
			Operation: device.OpInstall, Search: `description contains "lobby"`},
			// Offset and Limit are a page's: a campaign takes every match.
			device.Query{Filters: []device.Filter{f(device.FieldDescription, device.MatchContains, "lobby")}, Offset: 1, Limit: 1, Now: campaignStart},
			device.CLIActor("alice"), func(old device.Device) (device.Device, error) {
				d, err := apply(old)
				// Fields the administrator does not own are not written.
				d.LSC, d.AttemptsTotal, d.CreatedAt = nil, 99, at(-time.Hour)
				return d, err
			})
		must(t, err)
		want := []string{ds[0].Name, ds[2].Name, ds[3].Name}
		if c.ID == 0 || c.Devices != 3 || !slices.Equal(seen, want) {
			t.Fatalf("campaign %+v over %v; want an id, 3 devices, %v in name order", c, seen, want)
		}
		strs := map[string]bool{}
		for _, n := range want {
			got := get(t, s, n)
			if got.Operation != device.OpInstall || got.Status != device.StatusPending || got.AuthString == "" ||
				got.LSC == nil || got.AttemptsTotal != 0 || !got.CreatedAt.Equal(stored(t0)) {
				t.Errorf("device %s after the campaign: %+v", n, got)
			}
			if strs[got.AuthString] {
				t.Errorf("device %s got string %s, which another device of the campaign has", n, got.AuthString)
			}
			strs[got.AuthString] = true
			if got.Rev != before.Rev+1 {
				t.Errorf("device %s: Rev %d, want %d (its string changed)", n, got.Rev, before.Rev+1)
			}
			evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: n})
			must(t, err)
			if len(evs) != 1 || evs[0].Action != device.AuditDeviceUpdate || evs[0].Detail != fmt.Sprintf("campaign %d", c.ID) ||
				evs[0].Actor != device.CLIActor("alice") || len(evs[0].Changes) == 0 {
				t.Errorf("audit of %s = %+v, want one update naming the campaign", n, evs)
			}
		}
		for _, n := range []string{ds[1].Name, ds[4].Name} {
			if got := get(t, s, n); got.Operation != device.OpNone {
				t.Errorf("device %s outside the search was armed: %+v", n, got)
			}
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: fmt.Sprintf("campaign %d", c.ID)})
		must(t, err)
		if len(evs) != 1 || evs[0].Action != device.AuditCampaignCreate {
			t.Errorf("campaign audit = %+v", evs)
		}
		cs, err := s.ListCampaigns(t.Context(), 0)
		must(t, err)
		if len(cs) != 1 || cs[0].ID != c.ID || cs[0].Devices != 3 || cs[0].Actor != "cli:alice" ||
			cs[0].Operation != device.OpInstall || cs[0].Search != `description contains "lobby"` || !cs[0].CreatedAt.Equal(stored(campaignStart)) {
			t.Errorf("ListCampaigns = %+v, want the campaign as scheduled", cs)
		}
	})

	t.Run("no-match-writes-nothing", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("SEP000000000001"))
		called := false
		c, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: campaignStart, Operation: device.OpInstall},
			device.Query{Filters: []device.Filter{f(device.FieldName, device.MatchBeginsWith, "CSF")}}, device.CLIActor("alice"),
			func(old device.Device) (device.Device, error) { called = true; return old, nil })
		must(t, err)
		if c.Devices != 0 || called {
			t.Errorf("campaign %+v (apply called: %v) for a search that matches nothing", c, called)
		}
		if cs, _ := s.ListCampaigns(t.Context(), 0); len(cs) != 0 {
			t.Errorf("campaigns = %+v, want none", cs)
		}
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{}); len(evs) != 0 {
			t.Errorf("audit = %+v, want nothing", evs)
		}
	})

	t.Run("refused-device-changes-nothing", func(t *testing.T) {
		s := open.fresh(t)
		a, b, c := newDevice("SEP000000000001"), newDevice("SEP000000000002"), newDevice("SEP000000000003")
		for _, d := range []*device.Device{&a, &b, &c} {
			d.Operation, d.Status, d.AuthString = device.OpNone, device.StatusNone, ""
		}
		create(t, s, a, b, c)
		refusal := fault.Invalidf("device %s: no", b.Name)
		var seen []string
		arm := armEach(&seen)
		_, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: campaignStart, Operation: device.OpInstall},
			device.Query{}, device.CLIActor("alice"), func(old device.Device) (device.Device, error) {
				if old.Name == b.Name {
					return device.Device{}, refusal
				}
				return arm(old)
			})
		if !errors.Is(err, refusal) {
			t.Fatalf("err = %v, want apply's refusal", err)
		}
		for _, d := range []device.Device{a, b, c} {
			checkDevice(t, get(t, s, d.Name), d)
		}
		if cs, _ := s.ListCampaigns(t.Context(), 0); len(cs) != 0 {
			t.Errorf("campaigns = %+v, want none", cs)
		}
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{}); len(evs) != 0 {
			t.Errorf("audit = %+v, want nothing", evs)
		}
	})

	t.Run("list-newest-first", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("SEP000000000001"))
		first := schedule(t, s, device.Query{})
		var seen []string
		second, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: at(2 * time.Hour), Operation: device.OpDelete},
			device.Query{}, device.CLIActor("bob"), armEach(&seen))
		must(t, err)
		cs, err := s.ListCampaigns(t.Context(), 0)
		must(t, err)
		if len(cs) != 2 || cs[0].ID != second.ID || cs[1].ID != first.ID {
			t.Errorf("ListCampaigns = %+v, want %d then %d", cs, second.ID, first.ID)
		}
		if cs, _ := s.ListCampaigns(t.Context(), 1); len(cs) != 1 || cs[0].ID != second.ID {
			t.Errorf("ListCampaigns(1) = %+v, want the newest", cs)
		}
	})

	t.Run("progress", func(t *testing.T) { runProgress(t, open) })
	t.Run("cancel", func(t *testing.T) { runCancel(t, open) })

	t.Run("unknown-not-found", func(t *testing.T) {
		s := open.fresh(t)
		_, err := s.CampaignProgress(t.Context(), 42, time.Time{})
		wantKind(t, err, fault.ErrNotFound, "42")
	})
}

// runProgress checks every class of CampaignProgress after simulated
// sessions, the failures by reason and the completions per minute.
func runProgress(t *testing.T, open opener) {
	s := open.fresh(t)
	const (
		doneA, doneB, doneC = "SEP0000000000A1", "SEP0000000000A2", "SEP0000000000A3"
		running, waiting    = "SEP0000000000B1", "SEP0000000000B2"
		commA, commB, keyC  = "SEP0000000000C1", "SEP0000000000C2", "SEP0000000000C3"
		removed, rearmed    = "SEP0000000000D1", "SEP0000000000D2"
		doneBefore          = "SEP0000000000E1" // succeeded before the campaign, armed again by it
		staleSession        = "SEP0000000000E2" // a session that read the device before the campaign finishes after it
		outside             = "CSFOUTSIDE"      // not in the campaign
	)
	all := []string{doneA, doneB, doneC, running, waiting, commA, commB, keyC, removed, rearmed, doneBefore, staleSession, outside}
	for _, n := range all {
		d := newDevice(n)
		d.Operation, d.Status, d.AuthString = device.OpNone, device.StatusNone, ""
		create(t, s, d)
	}
	// doneBefore completed an operation before the campaign.
	id := claim(t, s, doneBefore, at(10*time.Minute))
	finish(t, s, doneBefore, id, at(20*time.Minute), device.SuccessStatus(device.OpInstall))
	staleID := claim(t, s, staleSession, at(30*time.Minute))

	c := schedule(t, s, device.Query{Filters: []device.Filter{f(device.FieldName, device.MatchBeginsWith, "SEP")}})
	if c.Devices != len(all)-1 {
		t.Fatalf("campaign over %d devices, want %d", c.Devices, len(all)-1)
	}
	// Completions: two in the campaign's third minute, one in its sixth.
	m3, m6 := campaignStart.Add(2*time.Minute).Truncate(time.Minute), campaignStart.Add(5*time.Minute).Truncate(time.Minute)
	for _, x := range []struct {
		name string
		at   time.Time
	}{{doneA, m3.Add(10 * time.Second)}, {doneB, m3.Add(50 * time.Second)}, {doneC, m6.Add(time.Second)}} {
		id := claim(t, s, x.name, x.at.Add(-5*time.Second))
		finish(t, s, x.name, id, x.at, device.SuccessStatus(device.OpInstall))
	}
	claim(t, s, running, campaignStart.Add(time.Minute))
	for _, x := range []struct{ name, reason string }{{commA, device.ReasonCommFailure}, {commB, device.ReasonCommFailure}, {keyC, device.ReasonKeyGenFailed}} {
		id := claim(t, s, x.name, campaignStart.Add(time.Minute))
		finish(t, s, x.name, id, campaignStart.Add(2*time.Minute), device.FailedStatus(device.OpInstall, x.reason))
	}
	// It succeeds, but on the configuration before the campaign's.
	finish(t, s, staleSession, staleID, campaignStart.Add(2*time.Minute), device.SuccessStatus(device.OpInstall))
	must(t, s.DeleteDevice(t.Context(), removed, device.AuditEvent{}))
	// An administrator changes the key of one device the campaign armed.
	_, _, err := s.UpdateDevice(t.Context(), rearmed, device.CLIActor("bob"), func(d *device.Device) error {
		d.Key, d.UpdatedAt = device.EC384, campaignStart.Add(3*time.Minute)
		return nil
	})
	must(t, err)
	// A later attempt of another device at its old revision does not count.
	claim(t, s, outside, campaignStart.Add(time.Minute))

	p, err := s.CampaignProgress(t.Context(), c.ID, time.Time{})
	must(t, err)
	if p.ID != c.ID || p.Devices != c.Devices || p.Operation != device.OpInstall {
		t.Errorf("progress names campaign %+v, want %+v", p.Campaign, c)
	}
	got := [5]int{p.Done, p.Pending, p.InProgress, p.Failed, p.Other}
	if want := [5]int{3, 3, 1, 3, 2}; got != want {
		t.Errorf("done, pending, in progress, failed, other = %v, want %v", got, want)
	}
	wantFailures := []device.FailureGroup{
		{Reason: device.FailedStatus(device.OpInstall, device.ReasonCommFailure), Devices: []string{commA, commB}},
		{Reason: device.FailedStatus(device.OpInstall, device.ReasonKeyGenFailed), Devices: []string{keyC}},
	}
	if fmt.Sprint(p.Failures) != fmt.Sprint(wantFailures) {
		t.Errorf("failures = %v, want %v", p.Failures, wantFailures)
	}
	wantMinutes := []device.MinuteCount{{Minute: m3.UTC(), Count: 2}, {Minute: m6.UTC(), Count: 1}}
	if !slices.EqualFunc(p.PerMinute, wantMinutes, minuteEqual) {
		t.Errorf("per minute = %v, want %v", p.PerMinute, wantMinutes)
	}
	p, err = s.CampaignProgress(t.Context(), c.ID, m3.Add(time.Minute))
	must(t, err)
	if !slices.EqualFunc(p.PerMinute, wantMinutes[1:], minuteEqual) || p.Done != 3 {
		t.Errorf("since the fourth minute: per minute = %v (done %d), want %v (done 3)", p.PerMinute, p.Done, wantMinutes[1:])
	}
}

func minuteEqual(a, b device.MinuteCount) bool {
	return a.Count == b.Count && a.Minute.Equal(b.Minute) && a.Minute.Location() == time.UTC
}

// runDashboard covers Dashboard.
func runDashboard(t *testing.T, open opener) {
	s := open.fresh(t)
	now := at(1000 * time.Hour)
	day := 24 * time.Hour
	mk := func(name, status string, lsc *device.Certificate) device.Device {
		d := newDevice(name)
		d.Status, d.LSC = status, lsc
		return d
	}
	up := device.SuccessStatus(device.OpInstall)
	create(t, s,
		mk("SEP000000000001", device.StatusNone, nil),
		mk("SEP000000000002", up, newCert("S2", now.Add(10*day))),
		mk("SEP000000000003", device.StatusNone, newCert("S3", now.Add(5*day))),
		mk("SEP000000000004", up, newCert("S4", now.Add(100*day))),
		mk("SEP000000000005", device.StatusPending, newCert("S5", now.Add(-day))),
		mk("SEP000000000006", device.StatusPending, nil),
		mk("SEP000000000007", device.StatusPending, newCert("S7", now.Add(20*day))),
	)
	failed := func(r string) string { return device.FailedStatus(device.OpInstall, r) }
	for i, r := range []string{failed(device.ReasonCommFailure), up, failed(device.ReasonKeyGenFailed), failed(device.ReasonLate)} {
		id := claim(t, s, "SEP000000000001", now.Add(time.Duration(i)*time.Minute))
		finish(t, s, "SEP000000000001", id, now.Add(time.Duration(i)*time.Minute+time.Second), r)
	}
	claim(t, s, "SEP000000000006", now.Add(-time.Minute))

	d, err := s.Dashboard(t.Context(), device.DashboardQuery{Now: now, ExpiringBefore: now.Add(30 * day), Limit: 2, InProgressLimit: 10})
	must(t, err)
	if d.Devices != 7 {
		t.Errorf("devices = %d, want 7", d.Devices)
	}
	// SEP…01's last attempt set its status (a failure); SEP…06 is in progress.
	wantStatus := []device.Count{{Value: device.StatusNone, Count: 1}, {Value: device.StatusPending, Count: 2},
		{Value: up, Count: 2}, {Value: failed(device.ReasonLate), Count: 1}, {Value: device.StatusInProgress, Count: 1}}
	slices.SortStableFunc(wantStatus, func(a, b device.Count) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if a.Value < b.Value {
			return -1
		}
		return 1
	})
	if fmt.Sprint(d.ByStatus) != fmt.Sprint(wantStatus) {
		t.Errorf("by status = %v, want %v", d.ByStatus, wantStatus)
	}
	// SEP…01 got an LSC from its successful attempt.
	wantLSC := []device.Count{{Value: device.LSCNone, Count: 1}, {Value: device.LSCValid, Count: 5}, {Value: device.LSCExpired, Count: 1}, {Value: device.LSCRevoked}}
	if fmt.Sprint(d.ByLSC) != fmt.Sprint(wantLSC) {
		t.Errorf("by LSC = %v, want %v", d.ByLSC, wantLSC)
	}
	if d.ExpiringSoon != 3 || !slices.Equal(names(d.Expiring), []string{"SEP000000000003", "SEP000000000002"}) {
		t.Errorf("expiring soon = %d %v, want 3, the first two SEP…03 and SEP…02", d.ExpiringSoon, names(d.Expiring))
	}
	if !slices.Equal(names(d.InProgress), []string{"SEP000000000006"}) {
		t.Errorf("in progress = %v, want SEP…06", names(d.InProgress))
	}
	if len(d.RecentFailures) != 2 || d.RecentFailures[0].Result != failed(device.ReasonLate) ||
		d.RecentFailures[1].Result != failed(device.ReasonKeyGenFailed) || d.RecentFailures[0].Device != "SEP000000000001" {
		t.Errorf("recent failures = %+v, want the latest two failures, newest first", d.RecentFailures)
	}

	empty := open.fresh(t)
	d, err = empty.Dashboard(t.Context(), device.DashboardQuery{Now: now, ExpiringBefore: now.Add(30 * day), Limit: 20, InProgressLimit: 10})
	must(t, err)
	if d.Devices != 0 || len(d.ByStatus) != 0 || fmt.Sprint(d.ByLSC) != fmt.Sprint([]device.Count{{Value: "none"}, {Value: "valid"}, {Value: "expired"}, {Value: "revoked"}}) ||
		d.Expiring == nil || d.RecentFailures == nil || d.InProgress == nil {
		t.Errorf("empty dashboard = %+v", d)
	}
}
