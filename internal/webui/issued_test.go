package webui_test

import (
	"context"
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

func (l lateCerts) List(ctx context.Context, q lsc.Query) ([]lsc.Record, error) {
	return lsc.NewService(lsc.Options{Store: (*l.e).store, Now: func() time.Time { return testNow }}).List(ctx, q)
}
