package webui_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// TestPhonePageAuthWarning: a phone armed with LSC precedence whose LSC
// has expired is told, on its page, that its operation will not
// authenticate and how to arm it instead; with MIC precedence it is not.
func TestPhonePageAuthWarning(t *testing.T) {
	e := newEnv(t)
	const name = "SEP0011223344AA"
	e.add(device.Device{Name: name, SecurityProfile: device.NonSecure, AuthMode: device.AuthNull, Operation: device.OpInstall, Key: device.RSA2048})
	ctx := context.Background()
	d, err := e.devices.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	claim, err := e.store.StartAttempt(ctx, device.Attempt{Device: name, Operation: d.Operation, Node: "n1", Rev: d.Rev, StartedAt: testNow.Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.FinishAttempt(ctx, device.Outcome{AttemptID: claim.AttemptID, Node: "n1", Device: name, FinishedAt: testNow.Add(-48 * time.Hour),
		Result: device.SuccessStatus(device.OpInstall), Completed: true,
		SetLSC: &device.Certificate{Serial: "0ABCDEF1", Issuer: "CN=CAPF-test", NotBefore: testNow.Add(-48 * time.Hour), NotAfter: testNow.Add(-time.Hour), DER: e.cert.Raw}}); err != nil {
		t.Fatal(err)
	}
	arm := func(mode device.AuthMode) {
		t.Helper()
		op := device.OpInstall
		if _, err := e.devices.Change(ctx, device.CLIActor("test"), name, device.Change{AuthMode: &mode, Operation: &op}); err != nil {
			t.Fatal(err)
		}
	}
	arm(device.AuthLSC)
	w := e.get("/phones/"+name, "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="auth-warning"`, "its LSC has expired", device.AuthMIC.Label())
	arm(device.AuthMIC)
	wantNoBody(t, e.get("/phones/"+name, "viewer"), `id="auth-warning"`)
}
