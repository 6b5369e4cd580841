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
	"github.com/capf-server/capf/internal/store/sqlite"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// stores remembers the store under each service newService made.
var stores = map[*device.Service]device.Store{}

func svcStore(t *testing.T, svc *device.Service) device.Store {
	t.Helper()
	return stores[svc]
}

func newService(t *testing.T) (*device.Service, device.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return now }, DefaultKey: device.EC256})
	stores[svc] = st
	return svc, st
}

func ptr[T any](v T) *T { return &v }

var admin = device.CLIActor("alice")

func TestAdd(t *testing.T) {
	tests := []struct {
		name    string
		in      device.Device
		gen     bool
		wantErr string // substring; "" means success
		check   func(t *testing.T, d device.Device)
	}{
		{name: "ok/defaults", in: device.Device{Name: "sep001122334455"}, check: func(t *testing.T, d device.Device) {
			if d.Name != "SEP001122334455" || d.SecurityProfile != device.NonSecure || d.AuthMode != device.AuthNull ||
				d.Operation != device.OpNone || d.Key != device.EC256 || d.Status != device.StatusNone {
				t.Errorf("defaults: %+v", d)
			}
		}},
		{name: "ok/string-mode-armed-gets-generated-string", in: device.Device{Name: "SEP001122334456", AuthMode: device.AuthString, Operation: device.OpInstall},
			check: func(t *testing.T, d device.Device) {
				if len(d.AuthString) != device.GeneratedStringLen || strings.Trim(d.AuthString, "0123456789") != "" || d.Status != device.StatusPending {
					t.Errorf("device %+v", d)
				}
			}},
		{name: "ok/generate-on-request", in: device.Device{Name: "CSFJDOE", AuthMode: device.AuthString}, gen: true, check: func(t *testing.T, d device.Device) {
			if d.AuthString == "" {
				t.Error("no string generated")
			}
		}},
		{name: "fail/authenticated-profile-with-string-mode", in: device.Device{Name: "SEP001122334457", SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "1234"},
			wantErr: "cannot use By Authentication String"},
		{name: "fail/encrypted-profile-with-string-mode", in: device.Device{Name: "SEP001122334457", SecurityProfile: device.Encrypted, AuthMode: device.AuthString, AuthString: "1234"},
			wantErr: "never contacts CAPF before it registers"},
		{name: "fail/short-string", in: device.Device{Name: "SEP001122334458", AuthMode: device.AuthString, AuthString: "123"}, wantErr: "4 to 10 digits"},
		{name: "fail/long-string", in: device.Device{Name: "SEP001122334458", AuthMode: device.AuthString, AuthString: "12345678901"}, wantErr: "4 to 10 digits"},
		{name: "fail/letters-in-string", in: device.Device{Name: "SEP001122334458", AuthMode: device.AuthString, AuthString: "12a4"}, wantErr: "4 to 10 digits"},
		{name: "fail/bad-name", in: device.Device{Name: "SEP1234"}, wantErr: "12 hex digits"},
		{name: "fail/unknown-prefix", in: device.Device{Name: "XYZ123"}, wantErr: "must start with SEP"},
		{name: "fail/past-deadline", in: device.Device{Name: "SEP001122334459", Operation: device.OpInstall, Deadline: now.Add(-time.Hour)}, wantErr: "is in the past"},
		{name: "fail/bad-key", in: device.Device{Name: "SEP00112233445A", Key: "rsa999"}, wantErr: "key \"rsa999\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newService(t)
			d, err := svc.Add(context.Background(), admin, tt.in, tt.gen)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("Add = %v, want invalid error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
			got, err := svc.Get(context.Background(), d.Name)
			if err != nil || got.AuthString != d.AuthString || got.Status != d.Status {
				t.Errorf("stored %+v, %v", got, err)
			}
		})
	}
}

func TestAddDuplicateConflicts(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.Add(ctx, admin, device.Device{Name: "SEP001122334455"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Add(ctx, admin, device.Device{Name: "sep001122334455"}, false); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("duplicate add = %v, want conflict", err)
	}
}

func TestChange(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	if _, err := svc.Add(ctx, admin, device.Device{Name: "SEP001122334455", Description: "lobby"}, false); err != nil {
		t.Fatal(err)
	}
	d, err := svc.Change(ctx, admin, "SEP001122334455", device.Change{Operation: ptr(device.OpInstall)})
	if err != nil || d.Status != device.StatusPending || d.Description != "lobby" {
		t.Fatalf("arm: %+v %v", d, err)
	}
	d, err = svc.Change(ctx, admin, "SEP001122334455", device.Change{Operation: ptr(device.OpNone)})
	if err != nil || d.Status != device.StatusNone {
		t.Fatalf("disarm: %+v %v", d, err)
	}
	if _, err := svc.Change(ctx, admin, "SEP001122334455", device.Change{SecurityProfile: ptr(device.Encrypted), AuthMode: ptr(device.AuthString)}); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("encrypted + string = %v, want invalid", err)
	}
	if got, _ := svc.Get(ctx, "SEP001122334455"); got.SecurityProfile != device.NonSecure {
		t.Error("a refused change was stored")
	}
	if _, err := svc.Change(ctx, admin, "SEP0011223344FF", device.Change{}); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("unknown device = %v, want not found", err)
	}
	d, err = svc.Change(ctx, admin, "SEP001122334455", device.Change{Deadline: ptr(now.Add(time.Hour))})
	if err != nil || !d.Deadline.Equal(now.Add(time.Hour)) {
		t.Fatalf("deadline: %+v %v", d, err)
	}
	d, err = svc.Change(ctx, admin, "SEP001122334455", device.Change{Deadline: ptr(time.Time{})})
	if err != nil || !d.Deadline.IsZero() {
		t.Fatalf("clear deadline: %+v %v", d, err)
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	if _, err := svc.Add(ctx, admin, device.Device{Name: "SEP000000000001", Description: "old"}, false); err != nil {
		t.Fatal(err)
	}
	rows := []device.ImportRow{
		{Line: 2, Device: device.Device{Name: "SEP000000000001", Description: "new"}, Given: device.Given{Description: true}},
		{Line: 3, Device: device.Device{Name: "SEP000000000002", AuthMode: device.AuthString, Operation: device.OpInstall}, Given: device.Given{AuthMode: true, Operation: true}},
	}
	counts, err := svc.Import(ctx, admin, rows)
	if err != nil || counts.Created != 1 || counts.Updated != 1 {
		t.Fatalf("import = %+v, %v", counts, err)
	}
	d, _ := svc.Get(ctx, "SEP000000000002")
	if d.AuthString == "" || d.Status != device.StatusPending {
		t.Errorf("armed string-mode device imported without a string: %+v", d)
	}
	if d, _ := svc.Get(ctx, "SEP000000000001"); d.Description != "new" {
		t.Errorf("update lost: %+v", d)
	}

	bad := []struct {
		name    string
		rows    []device.ImportRow
		wantErr string
	}{
		{"fail/profile-vs-mode", []device.ImportRow{
			{Line: 2, Device: device.Device{Name: "SEP000000000003"}},
			{Line: 3, Device: device.Device{Name: "SEP000000000004", SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "1234"},
				Given: device.Given{SecurityProfile: true, AuthMode: true, AuthString: true}},
		}, "line 3:"},
		{"fail/duplicate", []device.ImportRow{
			{Line: 2, Device: device.Device{Name: "SEP000000000005"}},
			{Line: 7, Device: device.Device{Name: "sep000000000005"}},
		}, "line 7: column Device Name: device SEP000000000005 already appears on line 2"},
		{"fail/every-bad-row-named", []device.ImportRow{
			{Line: 2, Device: device.Device{Name: "SEP000000000006", SecurityProfile: device.Encrypted, AuthMode: device.AuthString, AuthString: "1234"},
				Given: device.Given{SecurityProfile: true, AuthMode: true, AuthString: true}},
			{Line: 3, Device: device.Device{Name: "SEP000000000001", SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "1234"},
				Given: device.Given{SecurityProfile: true, AuthMode: true, AuthString: true}},
			{Line: 4, Device: device.Device{Name: "SEP000000000007"}},
			{Line: 5, Device: device.Device{Name: "SEP000000000008", SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "1234"},
				Given: device.Given{SecurityProfile: true, AuthMode: true, AuthString: true}},
		}, "line 2:"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newService(t)
			if _, err := svc.Add(ctx, admin, device.Device{Name: "SEP000000000001"}, false); err != nil {
				t.Fatal(err)
			}
			_, err := svc.Import(ctx, admin, tt.rows)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Invalid {
				t.Fatalf("import = %v, want invalid starting %q", err, tt.wantErr)
			}
			page, _ := svc.List(ctx, device.Query{})
			if page.Total != 1 {
				t.Errorf("a rejected import changed the devices: %d now", page.Total)
			}
			if tt.name == "fail/every-bad-row-named" {
				ps, _ := device.RowProblemsOf(err)
				var lines []int
				for _, p := range ps {
					lines = append(lines, p.Line)
				}
				if fmt.Sprint(lines) != "[2 3 5]" {
					t.Errorf("problems on lines %v, want [2 3 5]: %v", lines, err)
				}
			}
		})
	}
}

func BenchmarkImport10k(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := device.NewService(device.ServiceOptions{Store: st})
	rows := make([]device.ImportRow, 10000)
	for i := range rows {
		rows[i] = device.ImportRow{Line: i + 2, Device: device.Device{Name: fmt.Sprintf("SEP%012X", i), AuthMode: device.AuthString, Operation: device.OpInstall},
			Given: device.Given{AuthMode: true, Operation: true}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Import(context.Background(), admin, rows); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAuditEveryUseCase: each administrative use case writes one audit
// event by its actor, with the old and new values.
func TestAuditEveryUseCase(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	name := "SEP001122334455"
	if _, err := svc.Add(ctx, admin, device.Device{Name: name, Description: "lobby"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Change(ctx, admin, name, device.Change{Description: ptr("3rd floor"), Operation: ptr(device.OpInstall)}); err != nil {
		t.Fatal(err)
	}
	bob := device.Actor{Kind: device.ActorAPI, Name: "token-bob"}
	rows := []device.ImportRow{{Line: 2, Device: device.Device{Name: name, Description: "imported"}, Given: device.Given{Description: true}}}
	if _, err := svc.Import(ctx, bob, rows); err != nil {
		t.Fatal(err)
	}
	if err := svc.Remove(ctx, admin, name); err != nil {
		t.Fatal(err)
	}
	evs, err := svc.Audit(ctx, device.AuditQuery{Target: name})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		action string
		actor  device.Actor
		change device.FieldChange
	}
	wants := []want{
		{device.AuditDeviceDelete, admin, device.FieldChange{}},
		{device.AuditDeviceUpdate, bob, device.FieldChange{Field: "description", Old: "3rd floor", New: "imported"}},
		{device.AuditDeviceUpdate, admin, device.FieldChange{Field: "description", Old: "lobby", New: "3rd floor"}},
		{device.AuditDeviceCreate, admin, device.FieldChange{Field: "description", Old: "", New: "lobby"}},
	}
	if len(evs) != len(wants) {
		t.Fatalf("%d audit events, want %d: %+v", len(evs), len(wants), evs)
	}
	for i, w := range wants {
		ev := evs[i]
		if ev.Action != w.action || ev.Actor != w.actor || !ev.At.Equal(now) {
			t.Errorf("event %d = %+v, want %s by %v", i, ev, w.action, w.actor)
		}
		if w.change.Field == "" {
			continue
		}
		found := false
		for _, c := range ev.Changes {
			found = found || c == w.change
		}
		if !found {
			t.Errorf("event %d changes = %+v, want %+v among them", i, ev.Changes, w.change)
		}
	}
	if ops := evs[2].Changes; !containsField(ops, "operation") || !containsField(ops, "status") {
		t.Errorf("arming: changes = %+v, want operation and status", ops)
	}
}

func containsField(cs []device.FieldChange, f string) bool {
	for _, c := range cs {
		if c.Field == f {
			return true
		}
	}
	return false
}

// TestChangeRules: the newcomer's surprises are refused with a reason, and
// the status follows only what the administrator did.
func TestChangeRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		add     device.Device
		change  device.Change
		wantErr string
		check   func(t *testing.T, d device.Device)
	}{
		{name: "fail/arm-with-past-deadline", add: device.Device{Name: "SEP000000000001", Deadline: now.Add(time.Hour)},
			change: device.Change{Operation: ptr(device.OpInstall)}, wantErr: "is in the past"},
		{name: "fail/string-in-null-mode", add: device.Device{Name: "SEP000000000002"},
			change: device.Change{AuthString: ptr("1234")}, wantErr: "only used By Authentication String"},
		{name: "fail/string-and-generate", add: device.Device{Name: "SEP000000000003", AuthMode: device.AuthString},
			change: device.Change{AuthString: ptr("1234"), GenerateString: true}, wantErr: "not both"},
		{name: "fail/generate-in-null-mode", add: device.Device{Name: "SEP000000000004"},
			change: device.Change{GenerateString: true}, wantErr: "needs authentication mode string"},
		{name: "ok/leaving-string-mode-clears-string", add: device.Device{Name: "SEP000000000005", AuthMode: device.AuthString, AuthString: "1234"},
			change: device.Change{AuthMode: ptr(device.AuthNull)}, check: func(t *testing.T, d device.Device) {
				if d.AuthString != "" {
					t.Errorf("string %q kept in null mode", d.AuthString)
				}
			}},
		{name: "ok/description-keeps-failure-status", add: device.Device{Name: "SEP000000000006", Operation: device.OpInstall},
			change: device.Change{Description: ptr("x")}, check: func(t *testing.T, d device.Device) {
				if d.Status != device.StatusPending {
					t.Errorf("status = %q", d.Status)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newService(t)
			added, err := svc.Add(ctx, admin, tt.add, false)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "fail/arm-with-past-deadline" {
				// Time passes: the deadline is now behind us.
				later := now.Add(2 * time.Hour)
				st := svcStore(t, svc)
				svc = device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return later }})
			}
			d, err := svc.Change(ctx, admin, added.Name, tt.change)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("Change = %v, want invalid error containing %q", err, tt.wantErr)
				}
				if got, _ := svc.Get(ctx, added.Name); got.Status != added.Status || got.Operation != added.Operation || got.AuthString != added.AuthString {
					t.Errorf("a refused change was stored: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
		})
	}
}

// TestImportRoundTripNeutral: importing what is stored changes nothing,
// counts every row unchanged and keeps a failure status.
func TestImportRoundTripNeutral(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	name := "SEP001122334455"
	if _, err := svc.Add(ctx, admin, device.Device{Name: name, Description: "lobby", AuthMode: device.AuthString, Operation: device.OpInstall}, false); err != nil {
		t.Fatal(err)
	}
	c, err := st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	failed := device.FailedStatus(device.OpInstall, device.ReasonKeyGenTimeout)
	if err := st.FinishAttempt(ctx, device.Outcome{AttemptID: c.AttemptID, Device: name, FinishedAt: now, Result: failed}); err != nil {
		t.Fatal(err)
	}
	d, _ := svc.Get(ctx, name)
	row := device.ImportRow{Line: 2, Device: d, Given: device.Given{Description: true, SecurityProfile: true, AuthMode: true,
		AuthString: true, Operation: true, Key: true, Deadline: true}}
	counts, err := svc.Import(ctx, admin, []device.ImportRow{row})
	if err != nil {
		t.Fatal(err)
	}
	if counts != (device.ImportCounts{Unchanged: 1}) {
		t.Errorf("counts = %+v, want 1 unchanged", counts)
	}
	if got, _ := svc.Get(ctx, name); got.Status != failed || got.AuthString != d.AuthString {
		t.Errorf("device after re-import = %+v, want status %q kept", got, failed)
	}
	if evs, _ := svc.Audit(ctx, device.AuditQuery{Target: name}); len(evs) != 1 {
		t.Errorf("audit after a neutral import: %d events, want only the create", len(evs))
	}
}

func TestCriteriaQuery(t *testing.T) {
	tests := []struct {
		name    string
		c       device.Criteria
		want    []device.Filter
		wantErr string
	}{
		{name: "ok/flags", c: device.Criteria{Name: "SEP", SecurityProfile: "Encrypted", Operation: "Install/Upgrade", ExpiresBefore: "720h"},
			want: []device.Filter{{Field: device.FieldName, Match: device.MatchBeginsWith, Value: "SEP"},
				{Field: device.FieldSecurityProfile, Match: device.MatchEquals, Value: "encrypted"},
				{Field: device.FieldOperation, Match: device.MatchEquals, Value: "install"},
				{Field: device.FieldLSCExpires, Match: device.MatchBefore, Value: now.Add(720 * time.Hour).Format(time.RFC3339)}}},
		{name: "ok/within-results", c: device.Criteria{Where: []string{"description:is-empty", "status:contains:Failed"}},
			want: []device.Filter{{Field: device.FieldDescription, Match: device.MatchEmpty}, {Field: device.FieldStatus, Match: device.MatchContains, Value: "Failed"}}},
		{name: "fail/where-needs-value", c: device.Criteria{Where: []string{"name:equals"}}, wantErr: "needs a value"},
		{name: "fail/empty-takes-none", c: device.Criteria{Where: []string{"name:is-empty:x"}}, wantErr: "takes no value"},
		{name: "fail/sort", c: device.Criteria{Sort: "colour"}, wantErr: "want one of name,"},
		{name: "fail/expires", c: device.Criteria{ExpiresBefore: "soon"}, wantErr: "expires-before \"soon\""},
		{name: "fail/profile", c: device.Criteria{SecurityProfile: "paranoid"}, wantErr: "security profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.c.Query(now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("Query = %v, want invalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(q.Filters) != fmt.Sprint(tt.want) || q.Sort != device.FieldName || !q.Now.Equal(now) {
				t.Errorf("query = %+v, want filters %+v", q, tt.want)
			}
		})
	}
}

// TestRecoverAndSweep: recovery fails only this node's open attempts; the
// sweeper fails any node's attempts older than a session can last.
func TestRecoverAndSweep(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	for _, n := range []string{"SEP00000000000A", "SEP00000000000B", "SEP00000000000C"} {
		if _, err := svc.Add(ctx, admin, device.Device{Name: n, Operation: device.OpInstall}, false); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(name, node string, at time.Time) {
		if _, err := st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: at, Node: node}); err != nil {
			t.Fatal(err)
		}
	}
	claim("SEP00000000000A", "me", now.Add(-time.Minute))
	claim("SEP00000000000B", "other", now.Add(-time.Minute))
	claim("SEP00000000000C", "other", now.Add(-2*time.Hour))
	if n, err := svc.RecoverNode(ctx, "me"); err != nil || n != 1 {
		t.Fatalf("RecoverNode = %d, %v; want 1", n, err)
	}
	if n, err := svc.SweepStale(ctx, device.LongestSession(30*time.Minute, time.Minute, 30*time.Second)); err != nil || n != 1 {
		t.Fatalf("SweepStale = %d, %v; want the 2-hour-old attempt", n, err)
	}
	want := map[string]string{
		"SEP00000000000A": device.FailedStatus(device.OpInstall, device.ReasonServerRestart),
		"SEP00000000000B": device.StatusInProgress,
		"SEP00000000000C": device.FailedStatus(device.OpInstall, device.ReasonCommFailure),
	}
	for name, status := range want {
		if d, _ := svc.Get(ctx, name); d.Status != status || d.Operation != device.OpInstall {
			t.Errorf("%s: %s / %q, want %q and the operation armed", name, d.Operation, d.Status, status)
		}
	}
}

// TestDefaultKeyFollowsTheFleetParameter: with DefaultKeyNow, a device
// added without a key gets the default in force when it is added, not the
// one of the start.
func TestDefaultKeyFollowsTheFleetParameter(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := device.EC256
	svc := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.RSA2048, DefaultKeyNow: func() device.KeySpec { return key }})
	for i, want := range []device.KeySpec{device.EC256, device.EC384} {
		key = want
		d, err := svc.Add(t.Context(), admin, device.Device{Name: fmt.Sprintf("SEP00112233445%d", i)}, false)
		if err != nil || d.Key != want {
			t.Fatalf("Add = %+v, %v; want key %s", d, err, want)
		}
	}
}

// TestImportCarriedOver covers the rows capf migrate-from makes: a row
// that creates its device gives it the LSC the other CAPF issued; a row
// that must create its device refuses the whole import when the device
// exists; a row allowed to update keeps the stored LSC.
func TestImportCarriedOver(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	lsc := &device.Certificate{Serial: "0CAF", Issuer: "CN=capfd", NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), DER: []byte("der")}
	row := device.ImportRow{Line: 1, Device: device.Device{Name: "SEP00000000CAF0"}, LSC: lsc, MustCreate: true}
	if _, err := svc.Import(ctx, admin, []device.ImportRow{row}); err != nil {
		t.Fatal(err)
	}
	d, err := svc.Get(ctx, row.Device.Name)
	if err != nil || d.LSC == nil || d.LSC.Serial != "0CAF" || string(d.LSC.DER) != "der" {
		t.Fatalf("created device: %+v, %v; want the LSC carried over", d.LSC, err)
	}

	fresh := device.ImportRow{Line: 1, Device: device.Device{Name: "SEP00000000CAF1"}, MustCreate: true}
	again := row
	again.Line = 2
	_, err = svc.Import(ctx, admin, []device.ImportRow{fresh, again})
	if fault.KindOf(err) != fault.Conflict || !strings.Contains(err.Error(), "line 2: device SEP00000000CAF0 exists already") {
		t.Fatalf("import over an existing device = %v, want Conflict naming line 2", err)
	}
	if _, err := svc.Get(ctx, fresh.Device.Name); fault.KindOf(err) != fault.NotFound {
		t.Errorf("the refused import created %s: %v", fresh.Device.Name, err)
	}

	again.MustCreate = false
	again.LSC = &device.Certificate{Serial: "0BAD", NotAfter: now.AddDate(2, 0, 0)}
	again.Device.Description, again.Given.Description = "updated", true
	if _, err := svc.Import(ctx, admin, []device.ImportRow{again}); err != nil {
		t.Fatal(err)
	}
	if d, _ := svc.Get(ctx, row.Device.Name); d.Description != "updated" || d.LSC == nil || d.LSC.Serial != "0CAF" {
		t.Errorf("updated device: %q, LSC %+v; want the description changed and the LSC kept", d.Description, d.LSC)
	}
}
