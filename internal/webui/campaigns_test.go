package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// realCampaigns runs the UI's campaigns on its real device service.
func realCampaigns(o *webui.Options) { o.Campaigns = o.Devices.(*device.Service) }

// scheduleInstall schedules Install/Upgrade over the phones whose name
// begins with SEP through the bulk pages and returns the campaign page.
func scheduleInstall(t *testing.T, e *env) string {
	t.Helper()
	w := e.post("/bulk", "admin", url.Values{"where": {"name:begins-with:SEP"}, "operation": {"install"}, "confirm": {"yes"}})
	wantStatus(t, w, http.StatusSeeOther)
	return w.Header().Get("Location")
}

// A campaign is listed, its page says its search in words with one
// progress bar and no chart before a completion, and cancelling it (admin
// only, with the anti-forgery token, after a confirmation) disarms the
// waiting phones, leaves the one in a session alone and says so.
func TestCampaignListAndCancel(t *testing.T) {
	e := newEnv(t, realCampaigns)
	fleet := []string{"SEP000000000001", "SEP000000000002", "SEP000000000003"}
	for _, n := range fleet {
		e.add(device.Device{Name: n})
	}
	page := scheduleInstall(t, e)
	if !strings.HasPrefix(page, "/campaigns/") {
		t.Fatalf("bulk redirected to %q", page)
	}
	ctx := context.Background()
	d, err := e.devices.Get(ctx, fleet[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StartAttempt(ctx, device.Attempt{Device: fleet[1], Operation: device.OpInstall, Node: "n1", Rev: d.Rev, StartedAt: testNow}); err != nil {
		t.Fatal(err)
	}

	w := e.get("/campaigns", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `href="`+page+`"`, "Install/Upgrade", `Device Name begins with &#34;SEP&#34;`, "web:alice", "Scheduled")

	w = e.get(page, "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="campaign-search">`, `phones: Device Name begins with &#34;SEP&#34;.`, `id="progress-bar"`, "No completion yet.",
		`data-href="`+page+`"`)
	wantNoBody(t, w, "<progress", `id="rate-chart"`, `id="cancel-campaign"`, "where &#34;", "name:begins-with")
	wantBody(t, e.get(page, "admin"), `id="cancel-campaign"`, `action="`+page+`/cancel"`)

	unchanged := func() {
		t.Helper()
		for _, n := range fleet {
			if got, _ := e.devices.Get(ctx, n); got.Operation != device.OpInstall {
				t.Fatalf("%s was disarmed: %+v", n, got)
			}
		}
	}
	w = e.post(page+"/cancel", "viewer", url.Values{"confirm": {"yes"}})
	wantStatus(t, w, http.StatusForbidden)
	unchanged()
	w = e.post(page+"/cancel", "admin", url.Values{"confirm": {"yes"}, webauth.CSRFField: {"forged"}})
	wantStatus(t, w, http.StatusForbidden)
	wantBody(t, w, "anti-forgery token")
	unchanged()
	w = e.post(page+"/cancel", "admin", nil)
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="confirm-text"`, "return to No Pending Operation", `name="confirm" value="yes"`)
	unchanged()

	w = e.post(page+"/cancel", "admin", url.Values{"confirm": {"yes"}})
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="cancel-result"`, "Cancelled: 2 phones are back to No Pending Operation. Skipped 1: 1 running a session now, 0 changed since",
		`id="campaign-cancelled">Cancelled`, "by web:alice")
	wantNoBody(t, w, `id="cancel-campaign"`)
	for i, n := range fleet {
		want := device.OpNone
		if i == 1 {
			want = device.OpInstall
		}
		if got, _ := e.devices.Get(ctx, n); got.Operation != want {
			t.Errorf("%s after the cancel: %s, want %s", n, got.Operation, want)
		}
	}
	all, err := e.devices.Audit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if all[0].Action != device.AuditCampaignCancel || all[0].Actor.String() != "web:alice" || all[0].Target != "campaign "+strings.TrimPrefix(page, "/campaigns/") {
		t.Errorf("newest audit event %+v, want alice's cancel of the campaign", all[0])
	}
	wantBody(t, e.get("/campaigns", "viewer"), "Cancelled ", "by web:alice")
	wantStatus(t, e.post(page+"/cancel", "admin", url.Values{"confirm": {"yes"}}), http.StatusConflict)
	wantStatus(t, e.post(page+"/cancel", "admin", nil), http.StatusConflict)
	wantStatus(t, e.post("/campaigns/999/cancel", "admin", url.Values{"confirm": {"yes"}}), http.StatusNotFound)
}

// A bulk Delete counts and acts only on the phones with an LSC on record,
// and says how many it skips, on the confirmation and the campaign's page.
func TestBulkDeleteSkipsPhonesWithoutLSC(t *testing.T) {
	e := newEnv(t, realCampaigns)
	e.add(device.Device{Name: "SEP000000000001"}, device.Device{Name: "SEP000000000002"}, device.Device{Name: "SEP000000000003", Operation: device.OpInstall})
	e.giveLSC("SEP000000000003")
	f := url.Values{"where": {"name:begins-with:SEP"}, "operation": {"delete"}}
	w := e.post("/bulk", "admin", f)
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "Schedule Delete for 1 phone?", `id="confirm-skipped">2 other phones the search matches have no LSC on record and are skipped`)
	f.Set("confirm", "yes")
	w = e.post("/bulk", "admin", f)
	wantStatus(t, w, http.StatusSeeOther)
	page := w.Header().Get("Location")
	wantBody(t, e.get(page, "viewer"), "for 1 phone: ", "Skipped 2 phones without an LSC on record.")
	for n, want := range map[string]device.Operation{"SEP000000000001": device.OpNone, "SEP000000000002": device.OpNone, "SEP000000000003": device.OpDelete} {
		if got, _ := e.devices.Get(context.Background(), n); got.Operation != want {
			t.Errorf("%s: %s, want %s", n, got.Operation, want)
		}
	}
	w = e.post("/bulk", "admin", url.Values{"where": {"name:begins-with:SEP000000000001"}, "operation": {"troubleshoot"}})
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "the phone the search matches has no LSC on record: Troubleshoot needs one")
}
