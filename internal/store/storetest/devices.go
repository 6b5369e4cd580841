package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// runDevice covers CreateDevice, GetDevice, UpdateDevice and DeleteDevice.
func runDevice(t *testing.T, open opener) {
	t.Run("create-get-round-trip", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		d.LSC = newCert("0A1B2C", at(365*24*time.Hour))
		create(t, s, d)
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("time-precision-and-utc", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		zone := time.FixedZone("PST", -8*3600)
		d.Deadline = time.Date(2031, 12, 31, 23, 59, 59, 999999999, zone)
		d.CreatedAt = time.Date(1999, 1, 1, 0, 0, 0, 1000, zone)
		d.UpdatedAt = time.Date(2025, 6, 1, 12, 0, 0, 1999, time.UTC)
		create(t, s, d)
		got := get(t, s, d.Name)
		checkDevice(t, got, d)
		if want := time.Date(2032, 1, 1, 7, 59, 59, 999999000, time.UTC); !got.Deadline.Equal(want) {
			t.Errorf("Deadline = %v, want %v", got.Deadline, want)
		}
	})

	t.Run("zero-times-round-trip", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("CSFZERO")
		d.Deadline, d.CreatedAt, d.UpdatedAt = time.Time{}, time.Time{}, time.Time{}
		d.LSC = &device.Certificate{Serial: "01", Issuer: "CN=X"}
		create(t, s, d)
		got := get(t, s, d.Name)
		checkDevice(t, got, d)
		if !got.Deadline.IsZero() || !got.CreatedAt.IsZero() || !got.LSC.NotBefore.IsZero() {
			t.Errorf("zero times came back as %v, %v, %v", got.Deadline, got.CreatedAt, got.LSC.NotBefore)
		}
	})

	t.Run("epoch-is-not-zero", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("CSFEPOCH")
		d.Deadline = time.Unix(0, 0)
		create(t, s, d)
		got := get(t, s, d.Name)
		if got.Deadline.IsZero() || !got.Deadline.Equal(time.Unix(0, 0)) {
			t.Errorf("Deadline = %v, want the Unix epoch", got.Deadline)
		}
	})

	t.Run("empty-fields-round-trip", func(t *testing.T) {
		s := open.fresh(t)
		d := device.Device{Name: "CSFEMPTY"}
		create(t, s, d)
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("create-duplicate-conflict", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		changed := d
		changed.Description = "second"
		wantKind(t, s.CreateDevice(t.Context(), changed, device.AuditEvent{}), fault.ErrConflict, d.Name)
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("create-empty-name-rejected", func(t *testing.T) {
		s := open.fresh(t)
		if err := s.CreateDevice(t.Context(), newDevice(""), device.AuditEvent{}); err == nil {
			t.Fatal("CreateDevice with an empty name: err = nil")
		}
		page, err := s.ListDevices(t.Context(), device.Query{})
		must(t, err)
		if page.Total != 0 {
			t.Errorf("Total = %d after a rejected create, want 0", page.Total)
		}
	})

	t.Run("get-missing-not-found", func(t *testing.T) {
		s := open.fresh(t)
		_, err := s.GetDevice(t.Context(), "SEP00000000FFFF")
		wantKind(t, err, fault.ErrNotFound, "SEP00000000FFFF")
	})

	t.Run("names-stored-as-given", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("CSFjdoe"))
		get(t, s, "CSFjdoe")
		_, err := s.GetDevice(t.Context(), "CSFJDOE")
		wantKind(t, err, fault.ErrNotFound, "CSFJDOE")
	})

	t.Run("update-writes-admin-fields-only", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		d.LSC = newCert("AA01", at(24*time.Hour))
		create(t, s, d)
		u := device.Device{
			Name:            "SEP0000000000FF", // ignored: the name is the key
			Description:     "moved",
			SecurityProfile: device.Authenticated,
			AuthMode:        device.AuthMIC,
			AuthString:      "",
			Operation:       device.OpDelete,
			Key:             device.EC384,
			Deadline:        time.Time{},
			Status:          device.StatusNone,
			LSC:             newCert("FF01", at(24*time.Hour)), // never written by an admin path
			CreatedAt:       at(999 * time.Hour),
			UpdatedAt:       at(2 * time.Hour),
			AuthFailures:    7,
			AttemptsTotal:   99,
		}
		var seen device.Device
		got, changed, err := s.UpdateDevice(t.Context(), d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			seen = *x
			*x = u
			return nil
		})
		must(t, err)
		if !changed {
			t.Error("UpdateDevice reported no change")
		}
		checkDevice(t, seen, d)
		want := u
		want.Name, want.CreatedAt, want.LSC, want.AuthFailures, want.AttemptsTotal = d.Name, d.CreatedAt, d.LSC, 0, 0
		checkDevice(t, got, want)
		checkDevice(t, get(t, s, d.Name), want)

		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: d.Name})
		must(t, err)
		if len(evs) != 1 || evs[0].Action != device.AuditDeviceUpdate || evs[0].Actor != device.CLIActor("alice") ||
			!evs[0].At.Equal(stored(u.UpdatedAt)) {
			t.Fatalf("audit = %+v, want one update by cli:alice at %v", evs, u.UpdatedAt)
		}
		fields := map[string]device.FieldChange{}
		for _, c := range evs[0].Changes {
			fields[c.Field] = c
		}
		if c := fields["description"]; c.Old != d.Description || c.New != "moved" {
			t.Errorf("description change = %+v", c)
		}
		if c := fields["auth-string"]; c.Old != "(6 digits)" || c.New != "(none)" {
			t.Errorf("auth-string change = %+v (must be masked)", c)
		}
		if _, ok := fields["lsc"]; ok || len(evs[0].Changes) != 8 {
			t.Errorf("changes = %+v, want the 8 administrator fields and status", evs[0].Changes)
		}
	})

	t.Run("update-unchanged-writes-nothing", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		got, changed, err := s.UpdateDevice(t.Context(), d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			x.UpdatedAt = at(5 * time.Hour) // only the time: no change of substance
			return nil
		})
		must(t, err)
		if changed {
			t.Error("UpdateDevice reported a change")
		}
		checkDevice(t, got, d)
		checkDevice(t, get(t, s, d.Name), d)
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{}); len(evs) != 0 {
			t.Errorf("audit events for no change: %+v", evs)
		}
	})

	t.Run("update-error-aborts", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		_, _, err := s.UpdateDevice(t.Context(), d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			x.Description = "must not be written"
			return fault.Invalidf("refused")
		})
		wantKind(t, err, fault.ErrInvalid, d.Name)
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("lost-update/session-finishes-between-admin-read-and-write", func(t *testing.T) {
		s := open.fresh(t)
		ctx := t.Context()
		d := newDevice("SEP001122334455")
		create(t, s, d)
		id, err := StartAttempt(s, ctx, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: "n1"})
		must(t, err)
		// The administrator's screen shows the device in progress, without an LSC.
		shown := get(t, s, d.Name)
		// The phone's session completes meanwhile.
		lsc := newCert("C0FFEE", at(24*time.Hour))
		must(t, s.FinishAttempt(ctx, device.Outcome{AttemptID: id, Node: "n1", Device: d.Name, FinishedAt: at(2 * time.Hour),
			Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: lsc}))
		// The administrator saves a new description, from what the screen showed.
		got, _, err := s.UpdateDevice(ctx, d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			if x.LSC == nil || x.Status != device.SuccessStatus(device.OpInstall) {
				t.Errorf("change sees %+v, want the device as the session left it", x)
			}
			x.Description = shown.Description + " (3rd floor)"
			x.UpdatedAt = at(3 * time.Hour)
			return nil
		})
		must(t, err)
		after := get(t, s, d.Name)
		checkDevice(t, got, after)
		if after.Description != d.Description+" (3rd floor)" {
			t.Errorf("description = %q, the administrator's change is lost", after.Description)
		}
		if after.LSC == nil || after.LSC.Serial != "C0FFEE" || after.Status != device.SuccessStatus(device.OpInstall) ||
			after.Operation != device.OpNone || after.AuthString != "" {
			t.Errorf("device = %+v: the session's LSC, status or completion was erased", after)
		}
	})

	t.Run("update-missing-not-found", func(t *testing.T) {
		s := open.fresh(t)
		_, _, err := s.UpdateDevice(t.Context(), "SEP00000000FFFF", device.CLIActor("alice"), func(*device.Device) error { return nil })
		wantKind(t, err, fault.ErrNotFound, "SEP00000000FFFF")
		if _, err := s.GetDevice(t.Context(), "SEP00000000FFFF"); err == nil {
			t.Error("UpdateDevice of a missing device created it")
		}
	})

	t.Run("delete-removes-history-keeps-issuances", func(t *testing.T) {
		s := open.fresh(t)
		ctx := t.Context()
		d, other := newDevice("SEP001122334455"), newDevice("SEP0011223344FF")
		create(t, s, d, other)
		for _, name := range []string{d.Name, other.Name} {
			id, err := StartAttempt(s, ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: t0})
			must(t, err)
			must(t, s.RecordIssuance(ctx, device.Issuance{Serial: "5E" + name[3:], Device: name, AttemptID: id, IssuedAt: t0}))
			must(t, s.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: name, Type: "LSC", FetchedAt: t0, DER: []byte{1}}))
		}

		must(t, s.DeleteDevice(ctx, d.Name, device.AuditEvent{}))
		_, err := s.GetDevice(ctx, d.Name)
		wantKind(t, err, fault.ErrNotFound, d.Name)
		as, err := s.ListAttempts(ctx, d.Name, 0)
		must(t, err)
		if len(as) != 0 {
			t.Errorf("ListAttempts after delete: %d attempts, want 0", len(as))
		}
		fcs, err := s.ListFetchedCertificates(ctx, d.Name)
		must(t, err)
		if len(fcs) != 0 {
			t.Errorf("ListFetchedCertificates after delete: %d, want 0", len(fcs))
		}
		is, err := s.ListIssuances(ctx, d.Name)
		must(t, err)
		if len(is) != 1 || is[0].Serial != "5E"+d.Name[3:] {
			t.Errorf("ListIssuances after delete = %+v, want the one issuance kept", is)
		}

		// The other device keeps everything.
		if as, _ := s.ListAttempts(ctx, other.Name, 0); len(as) != 1 {
			t.Errorf("other device: %d attempts, want 1", len(as))
		}
		if fcs, _ := s.ListFetchedCertificates(ctx, other.Name); len(fcs) != 1 {
			t.Errorf("other device: %d fetched certificates, want 1", len(fcs))
		}

		// A device created again under the name starts without history.
		create(t, s, d)
		if as, _ := s.ListAttempts(ctx, d.Name, 0); len(as) != 0 {
			t.Errorf("re-created device: %d attempts, want 0", len(as))
		}
	})

	t.Run("delete-missing-not-found", func(t *testing.T) {
		s := open.fresh(t)
		wantKind(t, s.DeleteDevice(t.Context(), "SEP00000000FFFF", device.AuditEvent{}), fault.ErrNotFound, "SEP00000000FFFF")
	})
}

// runImport covers ImportDevices.
func runImport(t *testing.T, open opener) {
	t.Run("creates-and-updates", func(t *testing.T) {
		s := open.fresh(t)
		old := newDevice("SEP000000000001")
		old.LSC = newCert("AA", at(24*time.Hour))
		old.CreatedAt = at(-100 * time.Hour)
		create(t, s, old)

		repl := device.Device{
			Name: old.Name, Description: "imported", SecurityProfile: device.NonSecure,
			AuthMode: device.AuthNull, Operation: device.OpTroubleshoot, Key: device.EC256,
			Status: device.StatusPending, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour),
			LSC: newCert("BB", at(48*time.Hour)),
		}
		n1, n2 := newDevice("SEP000000000002"), newDevice("CSFNEW")
		counts, err := ImportDevices(s, t.Context(), []device.Device{n1, repl, n2})
		must(t, err)
		if counts != (device.ImportCounts{Created: 2, Updated: 1}) {
			t.Errorf("counts = %+v, want 2 created, 1 updated", counts)
		}
		want := repl
		want.CreatedAt, want.LSC = old.CreatedAt, old.LSC
		checkDevice(t, get(t, s, old.Name), want)
		checkDevice(t, get(t, s, n1.Name), n1)
		checkDevice(t, get(t, s, n2.Name), n2)
	})

	t.Run("created-with-lsc", func(t *testing.T) {
		// A device carried over from another CAPF keeps the LSC that CAPF
		// issued, and the certificate is listed among the issuances; a
		// serial recorded before (a device deleted and imported again)
		// keeps its first record and does not fail the import.
		s := open.fresh(t)
		d := newDevice("SEP0000000000C1")
		d.LSC = newCert("C1C1", at(24*time.Hour))
		_, err := ImportDevices(s, t.Context(), []device.Device{d})
		must(t, err)
		checkDevice(t, get(t, s, d.Name), d)
		is, err := s.ListIssuances(t.Context(), d.Name)
		must(t, err)
		if len(is) != 1 || is[0].Serial != "C1C1" || is[0].AttemptID != 0 || is[0].Issuer != d.LSC.Issuer ||
			string(is[0].DER) != string(d.LSC.DER) || !is[0].NotAfter.Equal(stored(d.LSC.NotAfter)) {
			t.Fatalf("issuances = %+v, want the imported LSC C1C1", is)
		}
		must(t, s.DeleteDevice(t.Context(), d.Name, device.AuditEvent{At: at(time.Hour), Actor: device.CLIActor("test"), Action: device.AuditDeviceDelete, Target: d.Name}))
		_, err = ImportDevices(s, t.Context(), []device.Device{d})
		must(t, err)
		if is, err = s.ListIssuances(t.Context(), d.Name); err != nil || len(is) != 1 {
			t.Fatalf("issuances after a second import = %+v, %v; want the one record", is, err)
		}
	})

	t.Run("empty", func(t *testing.T) {
		s := open.fresh(t)
		counts, err := ImportDevices(s, t.Context(), nil)
		must(t, err)
		if counts != (device.ImportCounts{}) {
			t.Errorf("counts = %+v, want none", counts)
		}
	})

	t.Run("all-or-nothing", func(t *testing.T) {
		s := open.fresh(t)
		old := newDevice("SEP000000000001")
		create(t, s, old)
		var ds []device.Device
		for i := range 50 {
			ds = append(ds, newDevice(fmt.Sprintf("CSFUSER%03d", i)))
		}
		changed := old
		changed.Description = "must not be written"
		ds = append(ds, changed, device.Device{Name: ""}) // the empty name fails last
		if _, err := ImportDevices(s, t.Context(), ds); err == nil {
			t.Fatal("ImportDevices with an empty name: err = nil")
		}
		page, err := s.ListDevices(t.Context(), device.Query{})
		must(t, err)
		if page.Total != 1 {
			t.Errorf("after a failed import %d devices exist, want 1: %v", page.Total, names(page.Devices))
		}
		checkDevice(t, get(t, s, old.Name), old)
	})

	t.Run("many", func(t *testing.T) {
		s := open.fresh(t)
		var ds []device.Device
		for i := range 2000 {
			ds = append(ds, newDevice(fmt.Sprintf("SEP%012X", i)))
		}
		counts, err := ImportDevices(s, t.Context(), ds[:1000])
		must(t, err)
		if counts != (device.ImportCounts{Created: 1000}) {
			t.Errorf("first import counts = %+v, want 1000 created", counts)
		}
		counts, err = ImportDevices(s, t.Context(), ds)
		must(t, err)
		if counts != (device.ImportCounts{Created: 1000, Unchanged: 1000}) {
			t.Errorf("second import counts = %+v, want 1000 created, 1000 unchanged", counts)
		}
		page, err := s.ListDevices(t.Context(), device.Query{Limit: 1})
		must(t, err)
		if page.Total != 2000 {
			t.Errorf("Total = %d, want 2000", page.Total)
		}
	})
}

// runContext checks that methods honour a cancelled context.
func runContext(t *testing.T, open opener) {
	t.Run("cancelled", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("SEP000000000001"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.GetDevice(ctx, "SEP000000000001"); err == nil {
			t.Error("GetDevice with a cancelled context: err = nil")
		}
		if err := s.CreateDevice(ctx, newDevice("SEP000000000002"), device.AuditEvent{}); err == nil {
			t.Error("CreateDevice with a cancelled context: err = nil")
		}
		if _, err := ImportDevices(s, ctx, []device.Device{newDevice("SEP000000000003")}); err == nil {
			t.Error("ImportDevices with a cancelled context: err = nil")
		}
		if _, err := s.ListDevices(ctx, device.Query{}); err == nil {
			t.Error("ListDevices with a cancelled context: err = nil")
		}
		page, err := s.ListDevices(t.Context(), device.Query{})
		must(t, err)
		if got := names(page.Devices); len(got) != 1 {
			t.Errorf("devices after cancelled writes = %v, want only SEP000000000001", got)
		}
	})
}
