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
		wantKind(t, s.CreateDevice(t.Context(), changed), fault.ErrConflict, d.Name)
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("create-empty-name-rejected", func(t *testing.T) {
		s := open.fresh(t)
		if err := s.CreateDevice(t.Context(), newDevice("")); err == nil {
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

	t.Run("update-replaces-all-but-created", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		u := device.Device{
			Name:            d.Name,
			Description:     "moved",
			SecurityProfile: device.Authenticated,
			AuthMode:        device.AuthMIC,
			AuthString:      "",
			Operation:       device.OpDelete,
			Key:             device.EC384,
			Deadline:        time.Time{},
			Status:          device.StatusNone,
			LSC:             newCert("FF01", at(24*time.Hour)),
			CreatedAt:       at(999 * time.Hour),
			UpdatedAt:       at(2 * time.Hour),
		}
		must(t, s.UpdateDevice(t.Context(), u))
		want := u
		want.CreatedAt = d.CreatedAt
		checkDevice(t, get(t, s, d.Name), want)

		u.LSC = nil
		must(t, s.UpdateDevice(t.Context(), u))
		want.LSC = nil
		checkDevice(t, get(t, s, d.Name), want)
	})

	t.Run("update-missing-not-found", func(t *testing.T) {
		s := open.fresh(t)
		wantKind(t, s.UpdateDevice(t.Context(), newDevice("SEP00000000FFFF")), fault.ErrNotFound, "SEP00000000FFFF")
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
			id, err := s.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: t0})
			must(t, err)
			must(t, s.RecordIssuance(ctx, device.Issuance{Serial: "5E" + name[3:], Device: name, AttemptID: id, IssuedAt: t0}))
			must(t, s.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: name, Type: "LSC", FetchedAt: t0, DER: []byte{1}}))
		}

		must(t, s.DeleteDevice(ctx, d.Name))
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
		wantKind(t, s.DeleteDevice(t.Context(), "SEP00000000FFFF"), fault.ErrNotFound, "SEP00000000FFFF")
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
		counts, err := s.ImportDevices(t.Context(), []device.Device{n1, repl, n2})
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

	t.Run("empty", func(t *testing.T) {
		s := open.fresh(t)
		counts, err := s.ImportDevices(t.Context(), nil)
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
		if _, err := s.ImportDevices(t.Context(), ds); err == nil {
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
		counts, err := s.ImportDevices(t.Context(), ds[:1000])
		must(t, err)
		if counts != (device.ImportCounts{Created: 1000}) {
			t.Errorf("first import counts = %+v, want 1000 created", counts)
		}
		counts, err = s.ImportDevices(t.Context(), ds)
		must(t, err)
		if counts != (device.ImportCounts{Created: 1000, Updated: 1000}) {
			t.Errorf("second import counts = %+v, want 1000 created, 1000 updated", counts)
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
		if err := s.CreateDevice(ctx, newDevice("SEP000000000002")); err == nil {
			t.Error("CreateDevice with a cancelled context: err = nil")
		}
		if _, err := s.ImportDevices(ctx, []device.Device{newDevice("SEP000000000003")}); err == nil {
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
