package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// cancelAt is when the suite cancels its campaigns.
var cancelAt = campaignStart.Add(10 * time.Minute)

// carol is the web administrator who cancels.
var carol = device.Actor{Kind: device.ActorWeb, Name: "carol", Remote: "192.0.2.7"}

// runCancel covers CancelCampaign: which phones it disarms and which it
// leaves alone, its audit, a second cancel, and a claim racing it.
func runCancel(t *testing.T, open opener) {
	t.Run("classes", func(t *testing.T) {
		s := open.fresh(t)
		const (
			pendA, pendB = "SEP0000000000A1", "SEP0000000000A2"
			failed       = "SEP0000000000B1" // failed, waits to retry: disarmed
			running      = "SEP0000000000C1"
			done         = "SEP0000000000D1"
			changed      = "SEP0000000000E1"
			removed      = "SEP0000000000F1"
			outside      = "CSFOUTSIDE"
		)
		for _, n := range []string{pendA, pendB, failed, running, done, changed, removed, outside} {
			d := newDevice(n)
			d.Operation, d.Status, d.AuthString = device.OpNone, device.StatusNone, ""
			create(t, s, d)
		}
		c := schedule(t, s, device.Query{Filters: []device.Filter{f(device.FieldName, device.MatchBeginsWith, "SEP")}})
		id := claim(t, s, failed, campaignStart.Add(time.Minute))
		failure := device.FailedStatus(device.OpInstall, device.ReasonCommFailure)
		finish(t, s, failed, id, campaignStart.Add(2*time.Minute), failure)
		claim(t, s, running, campaignStart.Add(time.Minute))
		id = claim(t, s, done, campaignStart.Add(time.Minute))
		finish(t, s, done, id, campaignStart.Add(2*time.Minute), device.SuccessStatus(device.OpInstall))
		_, _, err := s.UpdateDevice(t.Context(), changed, device.CLIActor("bob"), func(d *device.Device) error {
			d.Key, d.UpdatedAt = device.EC384, campaignStart.Add(3*time.Minute)
			return nil
		})
		must(t, err)
		must(t, s.DeleteDevice(t.Context(), removed, device.AuditEvent{}))
		before := map[string]device.Device{}
		for _, n := range []string{pendA, pendB, failed, running, done, changed, outside} {
			before[n] = get(t, s, n)
		}

		r, err := s.CancelCampaign(t.Context(), c.ID, carol, cancelAt)
		must(t, err)
		got := [4]int{r.Cancelled, r.Running, r.Changed, r.Finished}
		if want := [4]int{3, 1, 1, 2}; got != want || r.Skipped() != 2 {
			t.Errorf("cancelled, running, changed, finished = %v (skipped %d), want %v (skipped 2)", got, r.Skipped(), want)
		}
		if r.Campaign.ID != c.ID || !r.Campaign.CancelledAt.Equal(stored(cancelAt)) || r.Campaign.CancelledBy != carol.String() {
			t.Errorf("cancel names campaign %+v, want %d cancelled at %v by carol", r.Campaign, c.ID, stored(cancelAt))
		}
		for _, n := range []string{pendA, pendB, failed} {
			d, old := get(t, s, n), before[n]
			wantStatus := device.StatusNone
			if n == failed {
				wantStatus = failure // the last attempt's fact stays
			}
			if d.Operation != device.OpNone || d.Status != wantStatus || d.Rev != old.Rev+1 ||
				!d.UpdatedAt.Equal(stored(cancelAt)) || d.AuthString != old.AuthString || d.Key != old.Key {
				t.Errorf("device %s after the cancel: op %s status %q rev %d (was %d) updated %v; want no pending operation, status %q, rev moved on",
					n, d.Operation, d.Status, d.Rev, old.Rev, d.UpdatedAt, wantStatus)
			}
			evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: n})
			must(t, err)
			if len(evs) == 0 || evs[0].Action != device.AuditDeviceUpdate || evs[0].Detail != fmt.Sprintf("campaign %d cancelled", c.ID) ||
				evs[0].Actor.Name != "carol" || !evs[0].At.Equal(stored(cancelAt)) {
				t.Errorf("newest audit of %s = %+v, want carol's update naming the cancelled campaign", n, evs)
			}
		}
		for _, n := range []string{running, done, changed, outside} {
			checkDevice(t, get(t, s, n), before[n])
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: fmt.Sprintf("campaign %d", c.ID)})
		must(t, err)
		if len(evs) != 2 || evs[0].Action != device.AuditCampaignCancel || evs[0].Actor.Name != "carol" || evs[0].Detail == "" {
			t.Errorf("campaign audit = %+v, want the cancel by carol, newest first", evs)
		}
		cs, err := s.ListCampaigns(t.Context(), 0)
		must(t, err)
		if len(cs) != 1 || !cs[0].Cancelled() || !cs[0].CancelledAt.Equal(stored(cancelAt)) || cs[0].CancelledBy != r.Campaign.CancelledBy {
			t.Errorf("ListCampaigns = %+v, want the campaign cancelled", cs)
		}
		p, err := s.CampaignProgress(t.Context(), c.ID, time.Time{})
		must(t, err)
		if !p.Cancelled() || p.Pending != 0 {
			t.Errorf("progress after the cancel = %+v, want cancelled and nothing pending", p)
		}

		// A second cancel is refused and changes nothing.
		after := get(t, s, pendA)
		_, err = s.CancelCampaign(t.Context(), c.ID, device.CLIActor("dave"), cancelAt.Add(time.Minute))
		wantKind(t, err, fault.ErrConflict, "cancelled already")
		checkDevice(t, get(t, s, pendA), after)
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: fmt.Sprintf("campaign %d", c.ID)}); len(evs) != 2 {
			t.Errorf("campaign audit after a refused cancel = %+v, want 2 events", evs)
		}
	})

	t.Run("unknown-not-found", func(t *testing.T) {
		s := open.fresh(t)
		_, err := s.CancelCampaign(t.Context(), 42, device.CLIActor("alice"), cancelAt)
		wantKind(t, err, fault.ErrNotFound, "42")
	})

	t.Run("skipped-stored", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP000000000001")
		create(t, s, d)
		var seen []string
		c, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: campaignStart, Operation: device.OpDelete, Skipped: 7},
			device.Query{}, device.CLIActor("alice"), armEach(&seen))
		must(t, err)
		cs, err := s.ListCampaigns(t.Context(), 0)
		must(t, err)
		if c.Skipped != 7 || len(cs) != 1 || cs[0].Skipped != 7 || cs[0].Cancelled() {
			t.Errorf("campaign %+v, listed %+v; want 7 skipped, not cancelled", c, cs)
		}
	})

	t.Run("has-lsc-filter", func(t *testing.T) {
		s := open.fresh(t)
		with, expired, without := newDevice("SEP000000000001"), newDevice("SEP000000000002"), newDevice("SEP000000000003")
		with.LSC, expired.LSC = newCert("W", at(1000*time.Hour)), newCert("X", at(-time.Hour))
		create(t, s, with, expired, without)
		for _, x := range []struct {
			m    device.Match
			want []string
		}{
			{device.MatchNotEmpty, []string{with.Name, expired.Name}},
			{device.MatchEmpty, []string{without.Name}},
		} {
			p, err := s.ListDevices(t.Context(), device.Query{Filters: []device.Filter{{Field: device.FieldLSCExpires, Match: x.m}}, Now: t0})
			must(t, err)
			if fmt.Sprint(names(p.Devices)) != fmt.Sprint(x.want) || p.Total != len(x.want) {
				t.Errorf("LSC expires %s: %v (total %d), want %v", x.m, names(p.Devices), p.Total, x.want)
			}
		}
	})

	t.Run("racing-claims", func(t *testing.T) { runCancelRace(t, open) })
}

// runCancelRace cancels a campaign while each of its phones starts a
// session at the same moment: every phone ends either claimed (its
// operation intact, counted Running) or disarmed (its claim refused as a
// Conflict), never both and never neither.
func runCancelRace(t *testing.T, open opener) {
	s := open.fresh(t)
	const n = 16
	var all []string
	for i := range n {
		d := newDevice(fmt.Sprintf("SEP0000000001%02d", i))
		d.Operation, d.Status, d.AuthString = device.OpNone, device.StatusNone, ""
		create(t, s, d)
		all = append(all, d.Name)
	}
	c := schedule(t, s, device.Query{})
	read := map[string]int64{}
	for _, name := range all {
		read[name] = get(t, s, name).Rev // what each session read before the race
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[string]bool{}
		errs    []error
		r       device.CampaignCancel
		cerr    error
	)
	startGate := make(chan struct{})
	for _, name := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			_, err := s.StartAttempt(t.Context(), device.Attempt{Device: name, Operation: device.OpInstall,
				StartedAt: cancelAt, Node: "n1", Rev: read[name]})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				claimed[name] = true
			case !errors.Is(err, fault.ErrConflict):
				errs = append(errs, fmt.Errorf("claim %s: %w", name, err))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-startGate
		r, cerr = s.CancelCampaign(t.Context(), c.ID, device.CLIActor("alice"), cancelAt)
	}()
	close(startGate)
	wg.Wait()
	must(t, cerr)
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("claims won %d of %d; cancelled %d, running %d", len(claimed), n, r.Cancelled, r.Running)
	if r.Running != len(claimed) || r.Cancelled != n-len(claimed) || r.Changed != 0 || r.Finished != 0 {
		t.Errorf("cancel = %+v with %d claims won, want running = claims won and cancelled = the rest", r, len(claimed))
	}
	for _, name := range all {
		d := get(t, s, name)
		if claimed[name] {
			if d.Operation != device.OpInstall || d.Status != device.StatusInProgress {
				t.Errorf("claimed %s: op %s status %q, want its operation intact and in progress", name, d.Operation, d.Status)
			}
		} else if d.Operation != device.OpNone || d.Status != device.StatusNone {
			t.Errorf("refused claim %s: op %s status %q, want disarmed", name, d.Operation, d.Status)
		}
	}
}
