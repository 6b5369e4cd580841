package device_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// clock is a settable time source for a service.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newClockService returns a service over a fresh store whose clock is c.
func newClockService(t *testing.T, c *clock) (*device.Service, device.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return device.NewService(device.ServiceOptions{Store: st, Now: c.now, DefaultKey: device.EC256}), st
}

// addAll adds devices called names with the defaults, failing t if it
// cannot.
func addAll(t *testing.T, svc *device.Service, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := svc.Add(t.Context(), admin, device.Device{Name: n}, false); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchedule(t *testing.T) {
	svc, _ := newService(t)
	fleet := []string{"SEP000000000001", "SEP000000000002", "SEP000000000003", "SEP000000000004"}
	addAll(t, svc, fleet...)
	addAll(t, svc, "CSFOUTSIDE")
	install := device.OpInstall
	mode := device.AuthString
	// A page's limit and offset do not narrow a campaign.
	c, err := svc.Schedule(t.Context(), admin, device.Criteria{Name: "sep0000", Limit: 1, Offset: 2},
		device.Change{Operation: &install, AuthMode: &mode, GenerateString: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 || c.Devices != len(fleet) || c.Operation != device.OpInstall || c.Actor != admin.String() ||
		c.Search != `Device Name begins with "sep0000"` || !c.CreatedAt.Equal(now) {
		t.Errorf("campaign = %+v", c)
	}
	seen := map[string]string{}
	for _, n := range fleet {
		d, err := svc.Get(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		if d.Operation != device.OpInstall || d.Status != device.StatusPending || len(d.AuthString) != device.GeneratedStringLen {
			t.Errorf("device %s after the campaign: %+v", n, d)
		}
		if other, dup := seen[d.AuthString]; dup {
			t.Errorf("devices %s and %s got the same generated string", other, n)
		}
		seen[d.AuthString] = n
		evs, err := svc.Audit(t.Context(), device.AuditQuery{Target: n})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].Action != device.AuditDeviceUpdate || evs[0].Detail != fmt.Sprintf("campaign %d", c.ID) {
			t.Errorf("audit of %s = %+v, want its create and the campaign's update", n, evs)
		}
	}
	if d, _ := svc.Get(t.Context(), "CSFOUTSIDE"); d.Operation != device.OpNone {
		t.Errorf("a device outside the search was armed: %+v", d)
	}
	cs, err := svc.Campaigns(t.Context(), 10)
	if err != nil || len(cs) != 1 || cs[0].ID != c.ID {
		t.Errorf("Campaigns = %+v, %v; want the one campaign", cs, err)
	}
}

func TestScheduleRefused(t *testing.T) {
	none, install, del := device.OpNone, device.OpInstall, device.OpDelete
	mode, str := device.AuthString, "1234"
	past := now.Add(-time.Hour)
	tests := []struct {
		name      string
		criteria  device.Criteria
		change    device.Change
		wantField string // "" when the error names no field
		wantErr   string
	}{
		{"no-operation", device.Criteria{}, device.Change{AuthMode: &mode}, "operation", "needs a certificate operation"},
		{"operation-none", device.Criteria{}, device.Change{Operation: &none}, "operation", "not none"},
		{"bad-operation", device.Criteria{}, device.Change{Operation: ptr(device.Operation("reboot"))}, "operation", `"reboot"`},
		{"string-and-generate", device.Criteria{}, device.Change{Operation: &install, AuthString: &str, GenerateString: true}, "auth_string", "not both"},
		{"no-match", device.Criteria{Name: "CSF"}, device.Change{Operation: &install}, "", "no phone matches the search"},
		{"bad-criteria", device.Criteria{Sort: "colour"}, device.Change{Operation: &install}, "sort", `sort "colour"`},
		// The encrypted phone cannot use string mode: the whole campaign is refused, naming it.
		{"one-device-refuses", device.Criteria{}, device.Change{Operation: &install, AuthMode: &mode}, "auth_mode", "SEP000000000002"},
		{"past-deadline", device.Criteria{}, device.Change{Operation: &install, Deadline: &past}, "deadline", "is in the past; choose a later time or none"},
		// Delete and Troubleshoot act only on phones with an LSC on record; these have none.
		{"delete-without-lsc", device.Criteria{}, device.Change{Operation: &del}, "operation", "none of the 3 phones the search matches has an LSC on record: Delete needs one"},
		{"troubleshoot-without-lsc", device.Criteria{Name: "SEP000000000001"}, device.Change{Operation: ptr(device.OpTroubleshoot)}, "operation", "the phone the search matches has no LSC on record: Troubleshoot needs one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newService(t)
			addAll(t, svc, "SEP000000000001", "SEP000000000003")
			enc := device.Device{Name: "SEP000000000002", SecurityProfile: device.Encrypted}
			if _, err := svc.Add(t.Context(), admin, enc, false); err != nil {
				t.Fatal(err)
			}
			before, _ := svc.List(t.Context(), device.Query{})
			_, err := svc.Schedule(t.Context(), admin, tt.criteria, tt.change)
			switch {
			case !errors.Is(err, fault.ErrInvalid):
				t.Fatalf("err = %v, want Invalid", err)
			case !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("err = %q, want it to contain %q", err, tt.wantErr)
			case fault.FieldOf(err) != tt.wantField:
				t.Errorf("field = %q, want %q (err %q)", fault.FieldOf(err), tt.wantField, err)
			}
			after, _ := svc.List(t.Context(), device.Query{})
			if fmt.Sprint(after.Devices) != fmt.Sprint(before.Devices) {
				t.Errorf("a refused campaign changed devices:\n%+v\nwant\n%+v", after.Devices, before.Devices)
			}
			if cs, _ := svc.Campaigns(t.Context(), 0); len(cs) != 0 {
				t.Errorf("campaigns = %+v, want none", cs)
			}
		})
	}
}

func TestCampaignProgress(t *testing.T) {
	clk := &clock{t: now.Add(30 * time.Second)} // mid-minute
	svc, st := newClockService(t, clk)
	var fleet []string
	for i := range 10 {
		fleet = append(fleet, fmt.Sprintf("SEP0000000000%02d", i))
	}
	addAll(t, svc, fleet...)
	c, err := svc.Schedule(t.Context(), admin, device.Criteria{}, device.Change{Operation: ptr(device.OpInstall)})
	if err != nil {
		t.Fatal(err)
	}
	start := clk.t

	p, err := svc.Campaign(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pending != 10 || p.RemainingKnown || len(p.PerMinute) != 1 || p.PerMinute[0].Count != 0 || len(p.Failures) != 0 {
		t.Errorf("at the start: %+v; want 10 pending, one empty minute, no estimate", p)
	}

	// Sessions: four devices done in the campaign's minutes 2 and 4, one
	// failed, one running.
	session := func(name string, at time.Time, result string) {
		t.Helper()
		d, err := svc.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := st.StartAttempt(t.Context(), device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: at.Add(-10 * time.Second), Rev: d.Rev})
		if err != nil {
			t.Fatal(err)
		}
		if result == "" {
			return
		}
		if err := st.FinishAttempt(t.Context(), device.Outcome{AttemptID: cl.AttemptID, Device: name, FinishedAt: at,
			Result: result, Completed: result == device.SuccessStatus(device.OpInstall)}); err != nil {
			t.Fatal(err)
		}
	}
	ok := device.SuccessStatus(device.OpInstall)
	m0 := start.Truncate(time.Minute)
	session(fleet[0], m0.Add(2*time.Minute+5*time.Second), ok)
	session(fleet[1], m0.Add(2*time.Minute+45*time.Second), ok)
	session(fleet[2], m0.Add(4*time.Minute), ok)
	session(fleet[3], m0.Add(4*time.Minute+59*time.Second), ok)
	session(fleet[4], m0.Add(3*time.Minute), device.FailedStatus(device.OpInstall, device.ReasonKeyGenTimeout))
	session(fleet[5], m0.Add(5*time.Minute), "")

	clk.t = start.Add(10 * time.Minute) // ten minutes in
	p, err = svc.Campaign(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [5]int{p.Done, p.Pending, p.InProgress, p.Failed, p.Other}, [5]int{4, 4, 1, 1, 0}; got != want {
		t.Errorf("done, pending, in progress, failed, other = %v, want %v", got, want)
	}
	if len(p.PerMinute) != 11 {
		t.Fatalf("per minute has %d entries, want 11 (minutes 0 to 10): %v", len(p.PerMinute), p.PerMinute)
	}
	for i, m := range p.PerMinute {
		want := map[int]int{2: 2, 4: 2}[i]
		if m.Count != want || !m.Minute.Equal(m0.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("minute %d = %+v, want %d completions at %v", i, m, want, m0.Add(time.Duration(i)*time.Minute))
		}
	}
	// 4 completions in the 10 minutes since the start: 2.5 min each, for 5 devices left.
	if !p.RemainingKnown || p.Remaining != 12*time.Minute+30*time.Second {
		t.Errorf("remaining = %v (known %v), want 12m30s", p.Remaining, p.RemainingKnown)
	}
	if len(p.Failures) != 1 || p.Failures[0].Reason != device.FailedStatus(device.OpInstall, device.ReasonKeyGenTimeout) ||
		len(p.Failures[0].Devices) != 1 || p.Failures[0].Devices[0] != fleet[4] {
		t.Errorf("failures = %+v", p.Failures)
	}

	// Half an hour later, nothing completed in the last 15 minutes: no estimate.
	clk.t = start.Add(30 * time.Minute)
	if p, _ = svc.Campaign(t.Context(), c.ID); p.RemainingKnown || len(p.PerMinute) != 31 {
		t.Errorf("after a quiet quarter hour: remaining %v (known %v), %d minutes", p.Remaining, p.RemainingKnown, len(p.PerMinute))
	}
	// Two days later the series covers the last 24 hours only.
	clk.t = start.Add(48 * time.Hour)
	if p, _ = svc.Campaign(t.Context(), c.ID); len(p.PerMinute) != 24*60 || !p.PerMinute[len(p.PerMinute)-1].Minute.Equal(clk.t.Truncate(time.Minute)) {
		t.Errorf("two days later: %d minutes, last %v", len(p.PerMinute), p.PerMinute[len(p.PerMinute)-1])
	}

	if _, err := svc.Campaign(t.Context(), c.ID+1); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("unknown campaign: err = %v, want NotFound", err)
	}
}

func TestDashboard(t *testing.T) {
	clk := &clock{t: now}
	svc, st := newClockService(t, clk)
	addAll(t, svc, "SEP000000000001", "SEP000000000002", "SEP000000000003")
	issue := func(name string, notAfter time.Time) {
		t.Helper()
		d, _ := svc.Get(t.Context(), name)
		cl, err := st.StartAttempt(t.Context(), device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now, Rev: d.Rev})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecordIssuance(t.Context(), device.Issuance{Serial: "S" + name, Device: name, AttemptID: cl.AttemptID,
			IssuedAt: now, NotBefore: now.Add(-time.Hour), NotAfter: notAfter, DER: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishAttempt(t.Context(), device.Outcome{AttemptID: cl.AttemptID, Device: name, FinishedAt: now,
			Result: device.SuccessStatus(device.OpInstall), Completed: true,
			SetLSC: &device.Certificate{Serial: "S" + name, NotBefore: now.Add(-time.Hour), NotAfter: notAfter, DER: []byte{1}}}); err != nil {
			t.Fatal(err)
		}
	}
	issue("SEP000000000001", now.Add(29*24*time.Hour))
	issue("SEP000000000002", now.Add(31*24*time.Hour))
	d, err := svc.Dashboard(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Devices != 3 || d.ExpiringSoon != 1 || len(d.Expiring) != 1 || d.Expiring[0].Name != "SEP000000000001" {
		t.Errorf("dashboard = %+v; want 3 devices, SEP…01 expiring within 30 days", d)
	}
	// Two days on, SEP…02 expires within 30 days too.
	clk.t = now.Add(48 * time.Hour)
	if d, _ = svc.Dashboard(t.Context()); d.ExpiringSoon != 2 {
		t.Errorf("two days later: expiring soon = %d, want 2", d.ExpiringSoon)
	}
	if d.ExpiringWeek != 0 || d.RenewalsWaiting != 0 {
		t.Errorf("two days later: within a week %d, renewals waiting %d; want none", d.ExpiringWeek, d.RenewalsWaiting)
	}
	// SEP…01 is armed for renewal by its LSC, SEP…03 for a first install
	// (not a renewal); 23 days on SEP…01 expires within a week.
	for name, mode := range map[string]device.AuthMode{"SEP000000000001": device.AuthLSC, "SEP000000000003": device.AuthNull} {
		if _, _, err := st.UpdateDevice(t.Context(), name, device.CLIActor("test"), func(d *device.Device) error {
			d.Operation, d.AuthMode, d.Status = device.OpInstall, mode, device.StatusPending
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	clk.t = now.Add(23 * 24 * time.Hour)
	if d, err = svc.Dashboard(t.Context()); err != nil || d.ExpiringWeek != 1 || d.RenewalsWaiting != 1 || d.ExpiringSoon != 2 {
		t.Errorf("23 days on: within a week %d, renewals waiting %d, within 30 days %d (%v); want 1, 1, 2", d.ExpiringWeek, d.RenewalsWaiting, d.ExpiringSoon, err)
	}
	// SEP…01's LSC revoked by hand: it no longer expires within a week or
	// 30 days, and its armed renewal is not one waiting (a revoked LSC
	// cannot renew itself).
	if _, err := st.(lsc.Store).RevokeCertificate(t.Context(), "SSEP000000000001", lsc.Revocation{At: clk.t, Reason: lsc.ReasonKeyCompromise, By: "cli:test"},
		device.AuditEvent{At: clk.t, Actor: device.CLIActor("test"), Action: lsc.AuditRevoke, Target: "certificate SSEP000000000001"}); err != nil {
		t.Fatal(err)
	}
	if d, err = svc.Dashboard(t.Context()); err != nil || d.ExpiringWeek != 0 || d.RenewalsWaiting != 0 || d.ExpiringSoon != 1 {
		t.Errorf("SEP…01's LSC revoked: within a week %d, renewals waiting %d, within 30 days %d (%v); want 0, 0, 1", d.ExpiringWeek, d.RenewalsWaiting, d.ExpiringSoon, err)
	}
	// Past both expiries neither counts.
	clk.t = now.Add(32 * 24 * time.Hour)
	if d, _ = svc.Dashboard(t.Context()); d.ExpiringWeek != 0 {
		t.Errorf("past the expiries: within a week = %d, want 0", d.ExpiringWeek)
	}
}

func TestValidationNamesField(t *testing.T) {
	svc, _ := newService(t)
	addAll(t, svc, "SEP000000000001")
	past := now.Add(-time.Hour)
	str := "1234"
	long := strings.Repeat("x", 129)
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"name", func() error { _, err := svc.Add(t.Context(), admin, device.Device{Name: "SEP12"}, false); return err }, "name"},
		{"security_profile", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{SecurityProfile: ptr(device.SecurityProfile("paranoid"))})
			return err
		}, "security_profile"},
		{"auth_mode", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{AuthMode: ptr(device.AuthMode("retina"))})
			return err
		}, "auth_mode"},
		{"auth_string", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{AuthMode: ptr(device.AuthString), AuthString: ptr("12")})
			return err
		}, "auth_string"},
		{"auth_string/outside-string-mode", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{AuthString: &str})
			return err
		}, "auth_string"},
		{"operation", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{Operation: ptr(device.Operation("reboot"))})
			return err
		}, "operation"},
		{"key", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{Key: ptr(device.KeySpec("rsa999"))})
			return err
		}, "key"},
		{"deadline", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{Operation: ptr(device.OpInstall), Deadline: &past})
			return err
		}, "deadline"},
		{"description", func() error {
			_, err := svc.Change(t.Context(), admin, "SEP000000000001", device.Change{Description: &long})
			return err
		}, "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, fault.ErrInvalid) || fault.FieldOf(err) != tt.want {
				t.Errorf("err = %v (field %q), want Invalid naming %q", err, fault.FieldOf(err), tt.want)
			}
		})
	}
}

func TestCriteriaString(t *testing.T) {
	tests := []struct {
		name string
		c    device.Criteria
		want string
	}{
		{"none", device.Criteria{}, "all phones"},
		{"some", device.Criteria{Name: "SEP00", Status: "Failed", Where: []string{"description:contains:lobby"}},
			`Device Name begins with "SEP00" and Operation Status contains "Failed" and Description contains "lobby"`},
		{"string-masked", device.Criteria{AuthString: "123456", Where: []string{"auth-string:equals:9876", "auth-string:nonsense:4321"}},
			`Authentication String is (6 digits) and Authentication String is (4 digits) and "auth-string:nonsense:(4 digits)"`},
		{"labels", device.Criteria{Where: []string{"operation:equals:none", "auth-mode:equals:lsc", "security-profile:equals:encrypted", "lsc-status:equals:expired"}},
			`Certificate Operation is No Pending Operation and Authentication Mode is ` + device.AuthLSC.Label() +
				` and Security Profile is ` + device.Encrypted.Label() + ` and LSC Status is expired`},
		{"lsc-on-record", device.Criteria{ExpiresBefore: "720h", Where: []string{"lsc-expires:is-not-empty", "lsc-expires:is-empty", "description:is-empty"}},
			`LSC expires before 720h and an LSC on record and no LSC on record and Description is empty`},
		{"operation-field", device.Criteria{Operation: "install"}, `Certificate Operation is Install/Upgrade`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkSchedule10k schedules Install with a generated string for
// 10,000 phones: the one transaction that holds the store's writer while
// it runs.
func BenchmarkSchedule10k(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := device.NewService(device.ServiceOptions{Store: st})
	rows := make([]device.ImportRow, 10000)
	for i := range rows {
		rows[i] = device.ImportRow{Line: i + 2, Device: device.Device{Name: fmt.Sprintf("SEP%012X", i), AuthMode: device.AuthString},
			Given: device.Given{AuthMode: true}}
	}
	if _, err := svc.Import(context.Background(), admin, rows); err != nil {
		b.Fatal(err)
	}
	install := device.OpInstall
	b.ResetTimer()
	for b.Loop() {
		c, err := svc.Schedule(context.Background(), admin, device.Criteria{Name: "SEP"}, device.Change{Operation: &install, GenerateString: true})
		if err != nil || c.Devices != len(rows) {
			b.Fatalf("campaign %+v: %v", c, err)
		}
	}
}
