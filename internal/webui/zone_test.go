package webui_test

import (
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webui"
)

// TestOneNamedZonePerPage: with the UI in JST, every page names its zone
// once, the bulk deadline is labelled with it, read in it and shown back
// in it on the confirmation, the LSC expires search reads its date in it
// and describes it in it, and the campaign chart's bars are in it too.
func TestOneNamedZonePerPage(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	e := newEnv(t, func(o *webui.Options) { o.Location = jst })
	e.add(device.Device{Name: "SEP000000000001"})
	where := "name:begins-with:SEP"

	w := e.get("/bulk?where="+url.QueryEscape(where), "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `<p class="hint" id="page-zone">Times in JST.</p>`, "Operation Completes By (JST)", "Date and time in JST")

	form := func(deadline string) url.Values {
		return url.Values{"where": {where}, "operation": {"install"}, "deadline": {deadline}}
	}
	w = e.post("/bulk", "admin", form("2026-12-01T09:00"))
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="confirm-deadline">Operation Completes By 2026-12-01 09:00:00 JST.`)
	f := form("2026-12-01T09:00")
	f.Set("confirm", "yes")
	wantRedirect(t, e.post("/bulk", "admin", f), "/campaigns/7")
	if dl := e.campaigns.changes[0].Deadline; dl == nil || !dl.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("deadline %v, want 09:00 JST = 00:00 UTC", dl)
	}
	w = e.post("/bulk", "admin", form("tomorrow"))
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "2027-03-31T18:00 (JST)")

	// The find form's date is midnight in JST, and is described so.
	w = e.get("/phones?field=lsc-expires&match=before&value=2027-01-01&find=1", "admin")
	wantRedirect(t, w, "/phones?where=lsc-expires%3Abefore%3A2026-12-31T15%3A00%3A00Z")
	wantBody(t, e.get(w.Header().Get("Location"), "admin"), "2027-01-01 00:00 JST")

	// The campaign's chart: its edges and its bars in the same zone
	// (testNow is 12:00 UTC, 21:00 JST).
	w = e.get("/campaigns/7", "admin")
	wantBody(t, w, "21:00: 0", "Times in JST.")
	wantNoBody(t, w, "12:00: 0")
}

// TestUnnamedServerZoneIsNamed: a server zone Go knows only as "Local" is
// named by its abbreviation and offset, not as "Local".
func TestUnnamedServerZoneIsNamed(t *testing.T) {
	data, err := os.ReadFile("/usr/share/zoneinfo/Europe/Berlin")
	if err != nil {
		t.Skipf("no zone data: %v", err)
	}
	// What time.Local is on a server whose TZ Go cannot name.
	local, err := time.LoadLocationFromTZData("Local", data)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *webui.Options) { o.Location = local })
	w := e.get("/bulk", "admin")
	wantBody(t, w, "Times in CET, UTC&#43;01:00.", "Operation Completes By (CET, UTC&#43;01:00)")
	wantNoBody(t, w, "Local")
}
