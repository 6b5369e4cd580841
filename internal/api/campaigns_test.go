package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

// realCampaigns points e's API at its real device service for campaigns,
// so that a bulk run and its cancel act on the database.
func realCampaigns(e *env) {
	e.srv = newServer(Options{Devices: e.devices, Campaigns: e.devices})
	e.h = withTestPrincipal(e.srv.mux)
}

// Cancelling a campaign disarms its waiting phones, leaves the running one
// alone, says how many of each, is audited, and is refused to a viewer and
// the second time.
func TestCancelCampaign(t *testing.T) {
	e := newEnv(t)
	realCampaigns(e)
	fleet := []string{"SEP000000000001", "SEP000000000002", "SEP000000000003"}
	for _, n := range fleet {
		decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": n}), http.StatusCreated)
	}
	c := decode[device.Campaign](t, e.do(asAdmin, http.MethodPost, Prefix+"/bulk",
		map[string]any{"criteria": map[string]any{"name": "SEP"}, "change": map[string]any{"operation": "install"}}), http.StatusCreated)
	if c.Devices != 3 || c.Search != `Device Name begins with "SEP"` {
		t.Fatalf("campaign %+v, want 3 phones and its search in words", c)
	}
	// A phone starts its session.
	d, err := e.devices.Get(t.Context(), fleet[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StartAttempt(t.Context(), device.Attempt{Device: fleet[1], Operation: device.OpInstall, StartedAt: testNow, Node: "n1", Rev: d.Rev}); err != nil {
		t.Fatal(err)
	}
	path := Prefix + "/campaigns/" + itoa(c.ID) + "/cancel"

	p := problem(t, e.do(asViewer, http.MethodPost, path, nil), http.StatusForbidden)
	if p.Detail == "" {
		t.Error("a viewer's refusal says nothing")
	}
	if got, _ := e.devices.Get(t.Context(), fleet[0]); got.Operation != device.OpInstall {
		t.Fatalf("a viewer's cancel changed %s: %+v", fleet[0], got)
	}

	r := decode[cancelBody](t, e.do(asAdmin, http.MethodPost, path, nil), http.StatusOK)
	if r.Cancelled != 2 || r.Skipped != 1 || r.Running != 1 || r.Campaign.ID != c.ID || r.Campaign.CancelledBy != "api:ops" {
		t.Errorf("cancel = %+v, want 2 cancelled, 1 skipped (running), by api:ops", r)
	}
	for i, n := range fleet {
		got, _ := e.devices.Get(t.Context(), n)
		want := device.OpNone
		if i == 1 {
			want = device.OpInstall
		}
		if got.Operation != want {
			t.Errorf("%s after the cancel: operation %s, want %s", n, got.Operation, want)
		}
	}
	evs, err := e.devices.Audit(t.Context(), device.AuditQuery{Target: "campaign " + itoa(c.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Action != device.AuditCampaignCancel || evs[0].Actor.String() != "api:ops" {
		t.Errorf("campaign audit = %+v, want the cancel by api:ops", evs)
	}
	list := decode[[]device.Campaign](t, e.do(asViewer, http.MethodGet, Prefix+"/campaigns", nil), http.StatusOK)
	if len(list) != 1 || !list[0].CancelledAt.Equal(testNow) {
		t.Errorf("GET /campaigns = %+v, want the campaign cancelled at %v", list, testNow)
	}

	problem(t, e.do(asAdmin, http.MethodPost, path, nil), http.StatusConflict)
	problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/campaigns/999/cancel", nil), http.StatusNotFound)
}

// A bulk Delete acts only on the phones with an LSC on record and says how
// many it skipped.
func TestBulkDeleteSkipsPhonesWithoutLSC(t *testing.T) {
	e := newEnv(t)
	realCampaigns(e)
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": "SEP000000000001"}), http.StatusCreated)
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": "SEP000000000002"}), http.StatusCreated)
	enrolled := device.Device{Name: "SEP000000000003", SecurityProfile: device.NonSecure, AuthMode: device.AuthNull, Operation: device.OpNone,
		Key: device.EC256, Status: device.StatusNone, CreatedAt: testNow, UpdatedAt: testNow,
		LSC: &device.Certificate{Serial: "0A", Issuer: "CN=CAPF-TEST", NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour), DER: []byte{1}}}
	if err := e.store.CreateDevice(t.Context(), enrolled, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	c := decode[device.Campaign](t, e.do(asAdmin, http.MethodPost, Prefix+"/bulk",
		map[string]any{"criteria": map[string]any{"name": "SEP"}, "change": map[string]any{"operation": "delete"}}), http.StatusCreated)
	if c.Devices != 1 || c.Skipped != 2 {
		t.Errorf("campaign %+v, want 1 phone and 2 skipped", c)
	}
	// Troubleshoot over phones none of which has an LSC schedules nothing.
	p := problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/bulk",
		map[string]any{"criteria": map[string]any{"name": "SEP000000000001"}, "change": map[string]any{"operation": "troubleshoot"}}), http.StatusUnprocessableEntity)
	said := p.Detail
	for _, e := range p.Errors {
		said += " " + e.Location + ": " + e.Message
	}
	if !strings.Contains(said, "the phone the search matches has no LSC on record: Troubleshoot needs one") {
		t.Errorf("problem %+v, want it to say why", p)
	}
	if cs, _ := e.devices.Campaigns(t.Context(), 0); len(cs) != 1 {
		t.Errorf("campaigns = %+v, want only the Delete", cs)
	}
}
