package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// runCampaignStrings covers CampaignStrings: the strings of the devices
// still at the campaign's revision, in name order; removed and re-armed
// devices counted as skipped; a device without a string left out;
// NotFound for an unknown campaign.
func runCampaignStrings(t *testing.T, open opener) {
	s := open.fresh(t)
	var ds []device.Device
	for i := range 5 {
		d := newDevice(fmt.Sprintf("SEP00000000001%d", 4-i)) // created out of name order
		d.Operation, d.Status, d.AuthString = device.OpNone, device.StatusNone, ""
		ds = append(ds, d)
	}
	create(t, s, ds...)
	other := newDevice("SEP0000000000FF")
	create(t, s, other)
	var seen []string
	arm := armEach(&seen)
	c, err := s.ScheduleCampaign(t.Context(), device.Campaign{CreatedAt: campaignStart, Actor: "cli:alice",
		Operation: device.OpInstall, Search: "test"}, device.Query{Now: campaignStart, Filters: []device.Filter{
		f(device.FieldName, device.MatchBeginsWith, "SEP00000000001")}}, device.CLIActor("alice"),
		func(old device.Device) (device.Device, error) {
			d, err := arm(old)
			if old.Name == "SEP000000000012" {
				d.AuthMode, d.AuthString = device.AuthNull, "" // armed without a string
			}
			return d, err
		})
	must(t, err)
	if c.Devices != 5 {
		t.Fatalf("campaign covers %d devices, want 5", c.Devices)
	}
	must(t, s.DeleteDevice(t.Context(), "SEP000000000011", device.AuditEvent{}))
	_, _, err = s.UpdateDevice(t.Context(), "SEP000000000013", device.CLIActor("bob"), func(d *device.Device) error {
		d.AuthString = "99999999"
		return nil
	})
	must(t, err)

	got, skipped, err := s.CampaignStrings(t.Context(), c.ID)
	must(t, err)
	var names []string
	for _, cs := range got {
		names = append(names, cs.Device)
		d := get(t, s, cs.Device)
		if cs.AuthString == "" || cs.AuthString != d.AuthString {
			t.Errorf("%s: string %q, stored %q", cs.Device, cs.AuthString, d.AuthString)
		}
	}
	if want := []string{"SEP000000000010", "SEP000000000014"}; !slices.Equal(names, want) || skipped != 2 {
		t.Errorf("strings of %v, %d skipped; want %v and 2 skipped (one removed, one changed)", names, skipped, want)
	}
	if _, _, err := s.CampaignStrings(t.Context(), c.ID+100); fault.KindOf(err) != fault.NotFound {
		t.Errorf("unknown campaign: %v, want NotFound", err)
	}
}
