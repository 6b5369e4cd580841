package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestCampaignCommands lists a campaign scheduled on the data directory and
// cancels it: the waiting phones are disarmed, the count is printed, the
// cancel is audited, and a second cancel is a conflict.
func TestCampaignCommands(t *testing.T) {
	data := initData(t)
	for _, n := range []string{"SEP001122334401", "SEP001122334402"} {
		if _, e, code := run(t, data, "device", "add", n); code != ExitOK {
			t.Fatalf("device add %s: %s", n, e)
		}
	}
	st, err := sqlite.Open(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := device.OpInstall
	c, err := device.NewService(device.ServiceOptions{Store: st}).Schedule(t.Context(), device.CLIActor("alice"),
		device.Criteria{Name: "SEP"}, device.Change{Operation: &op})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(c.ID, 10)

	out, e, code := run(t, data, "campaign", "list")
	if code != ExitOK || !strings.Contains(out, "Install/Upgrade") || !strings.Contains(out, `Device Name begins with "SEP"`) ||
		!strings.Contains(out, "scheduled") {
		t.Fatalf("campaign list: exit %d\n%s%s", code, out, e)
	}
	out, e, code = run(t, data, "campaign", "cancel", id)
	if code != ExitOK || !strings.Contains(out, "2 phones back to No Pending Operation; skipped 0") {
		t.Fatalf("campaign cancel: exit %d\n%s%s", code, out, e)
	}
	out, _, _ = run(t, data, "device", "show", "SEP001122334401")
	if !strings.Contains(out, "No Pending Operation") {
		t.Errorf("device after the cancel:\n%s", out)
	}
	out, _, _ = run(t, data, "campaign", "list", "--json")
	var cs []device.Campaign
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != 1 || !cs[0].Cancelled() {
		t.Errorf("campaign list --json = %s (%v), want the campaign cancelled", out, err)
	}
	out, _, _ = run(t, data, "audit", "--limit", "1")
	if !strings.Contains(out, device.AuditCampaignCancel) || !strings.Contains(out, "campaign "+id) {
		t.Errorf("audit:\n%s", out)
	}
	if _, e, code := run(t, data, "campaign", "cancel", id); code != ExitConflict || !strings.Contains(e, "cancelled already") {
		t.Errorf("second cancel: exit %d %s, want a conflict", code, e)
	}
	if _, _, code := run(t, data, "campaign", "cancel", "999"); code != ExitNotFound {
		t.Errorf("cancel 999: exit %d, want not found", code)
	}
	if _, _, code := run(t, data, "campaign", "cancel", "x"); code != ExitUsage {
		t.Errorf("cancel x: exit %d, want usage", code)
	}
}
