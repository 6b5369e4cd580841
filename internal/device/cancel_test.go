package device_test

import (
	"errors"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// withLSC stores a phone called name with an LSC on record (expired when
// expired is set), as an import of a phone enrolled elsewhere would.
func withLSC(t *testing.T, st device.Store, name string, expired bool) {
	t.Helper()
	notAfter := now.Add(365 * 24 * time.Hour)
	if expired {
		notAfter = now.Add(-time.Hour)
	}
	d := device.Device{Name: name, SecurityProfile: device.NonSecure, AuthMode: device.AuthNull, Operation: device.OpNone,
		Key: device.EC256, Status: device.StatusNone, CreatedAt: now, UpdatedAt: now,
		LSC: &device.Certificate{Serial: "01" + name[len(name)-2:], Issuer: "CN=CAPF-TEST", NotBefore: notAfter.Add(-400 * 24 * time.Hour), NotAfter: notAfter, DER: []byte(name)}}
	if err := st.CreateDevice(t.Context(), d, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
}

func TestBulkNeedsLSC(t *testing.T) {
	for _, op := range []device.Operation{device.OpDelete, device.OpTroubleshoot} {
		t.Run(string(op), func(t *testing.T) {
			svc, st := newService(t)
			withLSC(t, st, "SEP000000000001", false)
			withLSC(t, st, "SEP000000000002", true) // an expired LSC is still on record
			addAll(t, svc, "SEP000000000003", "SEP000000000004")
			c := device.Criteria{Name: "SEP"}
			act, skip, err := svc.CountForBulk(t.Context(), c, op)
			if err != nil || act != 2 || skip != 2 {
				t.Fatalf("CountForBulk = %d, %d, %v; want 2 to act on, 2 skipped", act, skip, err)
			}
			if act, skip, _ := svc.CountForBulk(t.Context(), c, device.OpInstall); act != 4 || skip != 0 {
				t.Errorf("CountForBulk(install) = %d, %d; want all 4, none skipped", act, skip)
			}
			cmp, err := svc.Schedule(t.Context(), admin, c, device.Change{Operation: &op})
			if err != nil {
				t.Fatal(err)
			}
			if cmp.Devices != 2 || cmp.Skipped != 2 {
				t.Errorf("campaign = %+v, want 2 phones, 2 skipped", cmp)
			}
			for name, want := range map[string]device.Operation{
				"SEP000000000001": op, "SEP000000000002": op, "SEP000000000003": device.OpNone, "SEP000000000004": device.OpNone,
			} {
				if d, _ := svc.Get(t.Context(), name); d.Operation != want {
					t.Errorf("%s: operation %s, want %s", name, d.Operation, want)
				}
			}
		})
	}
}

func TestCancelCampaign(t *testing.T) {
	svc, _ := newService(t)
	addAll(t, svc, "SEP000000000001", "SEP000000000002")
	install := device.OpInstall
	c, err := svc.Schedule(t.Context(), admin, device.Criteria{}, device.Change{Operation: &install})
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.CancelCampaign(t.Context(), device.CLIActor("bob"), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cancelled != 2 || r.Skipped() != 0 || !r.Campaign.CancelledAt.Equal(now) || r.Campaign.CancelledBy != "cli:bob" {
		t.Errorf("cancel = %+v, want 2 cancelled by cli:bob at %v", r, now)
	}
	for _, n := range []string{"SEP000000000001", "SEP000000000002"} {
		if d, _ := svc.Get(t.Context(), n); d.Operation != device.OpNone || d.Status != device.StatusNone {
			t.Errorf("%s after the cancel: %s %q", n, d.Operation, d.Status)
		}
	}
	if _, err := svc.CancelCampaign(t.Context(), admin, c.ID); !errors.Is(err, fault.ErrConflict) {
		t.Errorf("second cancel: err = %v, want Conflict", err)
	}
	for _, id := range []int64{0, -1, c.ID + 1} {
		if _, err := svc.CancelCampaign(t.Context(), admin, id); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("cancel %d: err = %v, want NotFound", id, err)
		}
	}
}
