package cli

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/api"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestRemoteCampaign: capf campaign list, show and cancel through internal/api
// give the local output and exit codes; a campaign cancelled through the
// API is on record as the token's.
func TestRemoteCampaign(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, st := remoteServer(t, data, func(svc *device.Service) http.Handler {
		h, _ := api.New(api.Options{Devices: svc, Campaigns: svc})
		return withTestTokens(h)
	})
	var ids []string
	for _, prefix := range []string{"SEP0011223344", "SEP0099887766"} {
		for _, n := range []string{"01", "02"} {
			if _, e, code := run(t, data, "device", "add", prefix+n); code != ExitOK {
				t.Fatalf("device add: %s", e)
			}
		}
		op := device.OpInstall
		c, err := device.NewService(device.ServiceOptions{Store: st}).Schedule(t.Context(), device.CLIActor("alice"),
			device.Criteria{Name: prefix}, device.Change{Operation: &op})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strconv.FormatInt(c.ID, 10))
	}
	// One phone of the first campaign fails its session.
	failSession(t, st, "SEP001122334401")
	same := sameLocalRemote(data, remote)
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"list", []string{"campaign", "list"}, ExitOK, `Device Name begins with "SEP0099887766"`},
		{"list-json", []string{"campaign", "list", "--json"}, ExitOK, `"operation": "install"`},
		{"list-one", []string{"campaign", "list", "--limit", "1"}, ExitOK, "SEP0099887766"},
		{"show", []string{"campaign", "show", ids[0]}, ExitOK, `failed with "Upgrade Failed: wrong authentication string": SEP001122334401`},
		{"show-pending", []string{"campaign", "show", ids[1]}, ExitOK, "time left:      unknown (no phone has finished yet)"},
		{"show-not-a-number", []string{"campaign", "show", "0"}, ExitUsage, "want a positive number"},
		{"show-unknown", []string{"campaign", "show", "99"}, ExitNotFound, "99"},
		{"cancel-not-a-number", []string{"campaign", "cancel", "first"}, ExitUsage, "want a positive number"},
		{"cancel-unknown", []string{"campaign", "cancel", "99"}, ExitNotFound, "99"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, code := same(t, tt.args, nil, nil)
			if code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, tt.wantCode, tt.want, got)
			}
		})
	}
	// show --json through the API: the progress as the API gives it.
	out, errOut, code := run(t, data, append(append([]string(nil), remote...), "campaign", "show", ids[0], "--json")...)
	var p device.CampaignProgress
	if code != ExitOK || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("campaign show --json: exit %d %s%s", code, out, errOut)
	}
	if p.Failed != 1 || len(p.Failures) != 1 || p.Failures[0].Devices[0] != "SEP001122334401" || len(p.PerMinute) == 0 || p.Pending != 1 {
		t.Errorf("campaign show --json = %+v; want one failure, one pending, the minutes", p)
	}
	// The first campaign is cancelled locally, the second through the API,
	// with the same output; again, both are conflicts.
	swap := strings.NewReplacer("campaign "+ids[0], "campaign "+ids[1])
	got, code := same(t, []string{"campaign", "cancel", ids[0]}, []string{"campaign", "cancel", ids[1]}, swap)
	if code != ExitOK || !strings.Contains(got, "2 phones back to No Pending Operation") {
		t.Fatalf("cancel: exit %d\n%s", code, got)
	}
	// Their messages name who cancelled: the local user, and the token.
	for _, args := range [][]string{{"campaign", "cancel", ids[0]}, append(append([]string(nil), remote...), "campaign", "cancel", ids[1])} {
		if _, errOut, code := run(t, data, args...); code != ExitConflict || !strings.Contains(errOut, "cancelled already") {
			t.Fatalf("second cancel: exit %d\n%s", code, errOut)
		}
	}
	out, _, _ = run(t, data, "campaign", "list", "--json")
	var cs []device.Campaign
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != 2 {
		t.Fatalf("campaign list --json = %s (%v)", out, err)
	}
	for _, c := range cs {
		if id := strconv.FormatInt(c.ID, 10); id == ids[1] && !strings.Contains(c.CancelledBy, "remote-test") {
			t.Errorf("campaign %s cancelled through the API by %q, want the token remote-test", id, c.CancelledBy)
		}
	}
	// A viewer lists but cannot cancel.
	viewer := []string{"--server", remote[1], "--token", viewerToken, "--server-ca", remote[5]}
	if out, errOut, code := run(t, data, append(viewer, "campaign", "list")...); code != ExitOK || !strings.Contains(out, "cancelled") {
		t.Fatalf("viewer campaign list: exit %d %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, append(viewer, "campaign", "cancel", ids[0])...); code != ExitFailure || !strings.Contains(out+errOut, "viewer") {
		t.Fatalf("viewer campaign cancel: exit %d %s%s", code, out, errOut)
	}
}

// failSession records on st a session of name that failed (a wrong
// authentication string), as a phone's leaves it.
func failSession(t *testing.T, st *sqlite.Store, name string) {
	t.Helper()
	d, err := st.GetDevice(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	if _, err := st.RecordAuthFailure(t.Context(), device.AuthFailure{Attempt: device.Attempt{
		Device: name, Operation: d.Operation, Remote: "192.0.2.10", StartedAt: at, FinishedAt: at.Add(time.Second),
		Result: device.FailedStatus(d.Operation, "wrong authentication string"), Reason: "wrong authentication string", Node: "test",
	}}); err != nil {
		t.Fatal(err)
	}
}
