package device_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// refusingAudit is a store whose audit log refuses every event.
type refusingAudit struct{ device.Store }

func (refusingAudit) AppendAudit(context.Context, device.AuditEvent) error {
	return errors.New("database is read-only")
}

// TestCampaignStrings: after a bulk Generate String, the campaign's
// strings are those the phones hold, each showing is audited (the count,
// never a string) before it is returned, and one that cannot be audited
// is refused.
func TestCampaignStrings(t *testing.T) {
	svc, st := newService(t)
	fleet := []string{"SEP000000000002", "SEP000000000001", "SEP000000000003"}
	addAll(t, svc, fleet...)
	install, mode := device.OpInstall, device.AuthString
	c, err := svc.Schedule(t.Context(), admin, device.Criteria{Name: "sep"}, device.Change{Operation: &install, AuthMode: &mode, GenerateString: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.CampaignStrings(t.Context(), admin, c.ID, "CSV")
	if err != nil {
		t.Fatal(err)
	}
	if got.Campaign != c.ID || len(got.Strings) != 3 || got.Skipped != 0 || got.Strings[0].Device != "SEP000000000001" {
		t.Fatalf("strings %+v", got)
	}
	for _, cs := range got.Strings {
		d, _ := svc.Get(t.Context(), cs.Device)
		if cs.AuthString != d.AuthString || len(cs.AuthString) != device.GeneratedStringLen {
			t.Errorf("%s: %q, holds %q", cs.Device, cs.AuthString, d.AuthString)
		}
	}
	evs, err := svc.Audit(t.Context(), device.AuditQuery{Target: "campaign " + strconv.FormatInt(c.ID, 10)})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Action != device.AuditCampaignStrings || evs[0].Actor != admin || !strings.Contains(evs[0].Detail, "3 authentication strings shown as CSV") {
		t.Fatalf("audit: %+v", evs)
	}
	for _, cs := range got.Strings {
		if strings.Contains(evs[0].Detail, cs.AuthString) {
			t.Errorf("the audit detail %q holds a string", evs[0].Detail)
		}
	}

	if _, err := svc.CampaignStrings(t.Context(), admin, c.ID+1, "page"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("unknown campaign: %v", err)
	}
	refusing := device.NewService(device.ServiceOptions{Store: refusingAudit{st}})
	if got, err := refusing.CampaignStrings(t.Context(), admin, c.ID, "page"); err == nil || !strings.Contains(err.Error(), "audit") || len(got.Strings) != 0 {
		t.Fatalf("unaudited showing: %d strings, %v; want refused", len(got.Strings), err)
	}
}
