package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/webui"
)

// TestPhonePageListsIssuedLSCs: the phone page lists every LSC issued to
// the phone with its state and revocation, for a viewer too; without the
// inventory the section is left out.
func TestPhonePageListsIssuedLSCs(t *testing.T) {
	var e *env
	e = newEnv(t, func(o *webui.Options) { o.Certificates = lateCerts{&e} })
	e.add(device.Device{Name: "SEP000000000001"})
	ctx := t.Context()
	for _, serial := range []string{"0A01", "0A02"} {
		if err := e.store.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: "SEP000000000001", IssuedAt: testNow,
			NotBefore: testNow, NotAfter: testNow.Add(24 * time.Hour), DER: []byte{0x30, 0}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lsc.NewService(lsc.Options{Store: e.store}).Revoke(ctx, device.CLIActor("alice"), "0A01", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	w := e.get("/phones/SEP000000000001", "viewer")
	wantBody(t, w, `id="issued-table"`, `<td class="mono">0A01</td><td>revoked</td>`, `keyCompromise`, `<td class="mono">0A02</td><td>valid</td>`)

	plain := newEnv(t)
	plain.add(device.Device{Name: "SEP000000000001"})
	wantNoBody(t, plain.get("/phones/SEP000000000001", "viewer"), `issued-heading`)
}

// lateCerts reads the inventory of the env's store, which exists only
// once newEnv has returned.
type lateCerts struct{ e **env }

func (l lateCerts) svc() *lsc.Service {
	return lsc.NewService(lsc.Options{Store: (*l.e).store, Now: func() time.Time { return testNow }})
}

func (l lateCerts) List(ctx context.Context, q lsc.Query) ([]lsc.Record, error) {
	return l.svc().List(ctx, q)
}

func (l lateCerts) Get(ctx context.Context, serial string) (lsc.Record, error) {
	return l.svc().Get(ctx, serial)
}

func (l lateCerts) Revoke(ctx context.Context, actor device.Actor, serial, reason string) (lsc.Record, error) {
	return l.svc().Revoke(ctx, actor, serial, reason)
}

// TestPhonePageRevokes: an administrator revokes an LSC of the phone
// after a confirmation naming it; a viewer gets no button and is refused;
// a serial of another phone is not found.
func TestPhonePageRevokes(t *testing.T) {
	var e *env
	e = newEnv(t, func(o *webui.Options) { o.Certificates = lateCerts{&e} })
	e.add(device.Device{Name: "SEP000000000001"}, device.Device{Name: "SEP000000000002"})
	ctx := t.Context()
	for serial, name := range map[string]string{"0A01": "SEP000000000001", "0B01": "SEP000000000002"} {
		if err := e.store.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name, IssuedAt: testNow,
			NotBefore: testNow, NotAfter: testNow.Add(24 * time.Hour), DER: []byte{0x30, 0}}); err != nil {
			t.Fatal(err)
		}
	}
	wantNoBody(t, e.get("/phones/SEP000000000001", "viewer"), `id="revoke-0A01"`)
	wantBody(t, e.get("/phones/SEP000000000001", "admin"), `id="revoke-0A01"`)
	if w := e.post("/phones/SEP000000000001/revoke", "viewer", url.Values{"serial": {"0A01"}, "confirm": {"yes"}}); w.Code != http.StatusForbidden {
		t.Errorf("viewer's revoke: %d, want 403", w.Code)
	}
	w := e.post("/phones/SEP000000000001/revoke", "admin", url.Values{"serial": {"0a:01"}})
	wantBody(t, w, `id="confirm-revoke-form"`, `0A01`, `<option value="keyCompromise" selected>`)
	if w := e.post("/phones/SEP000000000001/revoke", "admin", url.Values{"serial": {"0B01"}, "confirm": {"yes"}, "reason": {"keyCompromise"}}); w.Code != http.StatusNotFound {
		t.Errorf("revoking another phone's LSC from this page: %d, want 404", w.Code)
	}
	if w := e.post("/phones/SEP000000000001/revoke", "admin", url.Values{"serial": {"0A01"}, "confirm": {"yes"}, "reason": {"certificateHold"}}); w.Code == http.StatusSeeOther {
		t.Error("a revocation with reason certificateHold was accepted")
	}
	w = e.post("/phones/SEP000000000001/revoke", "admin", url.Values{"serial": {"0A01"}, "confirm": {"yes"}, "reason": {"cessationOfOperation"}})
	wantRedirect(t, w, "/phones/SEP000000000001")
	wantBody(t, e.get("/phones/SEP000000000001", "admin"), `<td class="mono">0A01</td><td>revoked</td>`, "cessationOfOperation")
	r, err := lsc.NewService(lsc.Options{Store: e.store}).Get(ctx, "0B01")
	if err != nil || r.Revoked() {
		t.Errorf("the other phone's LSC: %+v %v", r, err)
	}
}
