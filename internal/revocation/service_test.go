package revocation_test

import (
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
)

// TestServiceRefuses: bad serials and reasons are refused with their
// reason and change nothing.
func TestServiceRefuses(t *testing.T) {
	f := newFleet(t)
	serial, _ := f.enrol("SEP00000000000A")
	alice := device.CLIActor("alice")
	for _, c := range []struct {
		name, serial, reason string
		kind                 fault.Kind
		says                 string
	}{
		{"fail/not-hex", "XYZ", "keyCompromise", fault.Invalid, "not a hex digit"},
		{"fail/empty", "", "keyCompromise", fault.Invalid, "empty"},
		{"fail/unknown", "7E57", "keyCompromise", fault.NotFound, "no LSC with this serial"},
		{"fail/bad-reason", serial, "certificateHold", fault.Invalid, "want one of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.Revoke(t.Context(), alice, c.serial, c.reason)
			if fault.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.says) {
				t.Errorf("Revoke(%q, %q) = %v, want %v saying %q", c.serial, c.reason, err, c.kind, c.says)
			}
			if _, err := f.svc.Get(t.Context(), c.serial); c.kind == fault.Invalid && c.serial != serial && fault.KindOf(err) != fault.Invalid {
				t.Errorf("Get(%q) = %v, want Invalid", c.serial, err)
			}
		})
	}
	r, err := f.svc.Get(t.Context(), strings.ToLower(serial[:2]+":"+serial[2:]))
	if err != nil || r.Status(f.svc.Now()) != lsc.StatusValid {
		t.Fatalf("Get after refusals = %+v, %v; want valid", r, err)
	}
	if _, err := f.svc.Revoke(t.Context(), alice, serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Revoke(t.Context(), alice, serial, "keyCompromise"); fault.KindOf(err) != fault.Conflict {
		t.Errorf("second Revoke = %v, want Conflict", err)
	}
	evs, _ := f.st.ListAudit(t.Context(), device.AuditQuery{Target: "certificate " + serial})
	if len(evs) != 1 || evs[0].Actor.Name != "alice" {
		t.Errorf("audit = %+v, want alice's one revocation", evs)
	}
	if _, err := f.svc.List(t.Context(), lsc.Query{Status: "bogus"}); fault.KindOf(err) != fault.Invalid {
		t.Errorf("List(status bogus) = %v, want Invalid", err)
	}
}
