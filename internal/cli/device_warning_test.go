package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

// TestPrintDeviceWarning: device show/add/set print the warning of an
// operation that will not authenticate as armed, and nothing when there
// is none.
func TestPrintDeviceWarning(t *testing.T) {
	now := time.Now()
	d := device.Device{Name: "SEP001122334455", SecurityProfile: device.NonSecure, AuthMode: device.AuthLSC, Operation: device.OpInstall,
		Key: device.RSA2048, LSC: &device.Certificate{Serial: "0A", NotAfter: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)}}
	var b strings.Builder
	if err := printDevice(&b, view.DeviceOf(d, now), false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Warning:") || !strings.Contains(b.String(), "its LSC is revoked") {
		t.Errorf("device show without the warning:\n%s", b.String())
	}
	b.Reset()
	if err := printDevice(&b, view.DeviceOf(d, now), true); err != nil || !strings.Contains(b.String(), `"warning": "its LSC is revoked`) {
		t.Errorf("JSON without the warning (%v):\n%s", err, b.String())
	}
	d.AuthMode = device.AuthString
	b.Reset()
	if err := printDevice(&b, view.DeviceOf(d, now), false); err != nil || strings.Contains(b.String(), "Warning") {
		t.Errorf("a warning for authentication by string (%v):\n%s", err, b.String())
	}
}
