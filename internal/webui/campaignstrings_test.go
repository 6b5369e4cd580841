package webui_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webui"
)

// TestCampaignStrings: after a bulk Generate String, an administrator
// gets the campaign's strings as a printable page and as CSV, each
// showing audited; a viewer is refused both, with nothing audited; no
// string reaches the log.
func TestCampaignStrings(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(o *webui.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.add(device.Device{Name: "SEP000000000002"}, device.Device{Name: "SEP000000000001"})
	install, mode := device.OpInstall, device.AuthString
	c, err := e.devices.Schedule(context.Background(), device.CLIActor("test"), device.Criteria{Name: "SEP"},
		device.Change{Operation: &install, AuthMode: &mode, GenerateString: true})
	if err != nil {
		t.Fatal(err)
	}
	var strs []string
	for _, n := range []string{"SEP000000000001", "SEP000000000002"} {
		d, _ := e.devices.Get(context.Background(), n)
		strs = append(strs, d.AuthString)
	}
	id := strconv.FormatInt(c.ID, 10)
	target := "campaign " + id
	audited := func() int {
		t.Helper()
		evs, err := e.devices.Audit(context.Background(), device.AuditQuery{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Action == device.AuditCampaignStrings {
				n++
				if ev.Actor.String() != "web:alice" {
					t.Errorf("showing audited for %s", ev.Actor)
				}
			}
		}
		return n
	}

	for _, path := range []string{"/campaigns/" + id + "/strings", "/campaigns/" + id + "/strings.csv"} {
		w := e.get(path, "viewer")
		wantStatus(t, w, http.StatusForbidden)
		wantNoBody(t, w, strs...)
	}
	if n := audited(); n != 0 {
		t.Fatalf("a viewer's refused request audited %d showings", n)
	}
	wantNoBody(t, e.get("/campaigns/7", "viewer"), `id="strings-links"`)
	wantBody(t, e.get("/campaigns/7", "admin"), `id="strings-links"`, `href="/campaigns/7/strings"`)

	w := e.get("/campaigns/"+id+"/strings", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="campaign-strings"`, "<td>SEP000000000001</td><td class=\"mono\">"+strs[0]+"</td>",
		"<td>SEP000000000002</td><td class=\"mono\">"+strs[1]+"</td>")
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if n := audited(); n != 1 {
		t.Fatalf("%d showings audited after the page, want 1", n)
	}

	w = e.get("/campaigns/"+id+"/strings.csv", "admin")
	wantStatus(t, w, http.StatusOK)
	rows, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"Device Name", "Authentication String"}, {"SEP000000000001", strs[0]}, {"SEP000000000002", strs[1]}}
	if len(rows) != len(want) || rows[1][1] != strs[0] || rows[2][0] != want[2][0] || rows[2][1] != strs[1] {
		t.Fatalf("CSV %q, want %q", rows, want)
	}
	if n := audited(); n != 2 {
		t.Fatalf("%d showings audited after the CSV, want 2", n)
	}
	wantStatus(t, e.get("/campaigns/999/strings", "admin"), http.StatusNotFound)
	for _, s := range strs {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a string:\n%s", logs.String())
		}
	}
}
