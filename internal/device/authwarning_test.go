package device_test

import (
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// TestAuthWarning: only an operation armed with LSC precedence on a phone
// whose LSC is revoked or expired is warned about; without an LSC the
// phone falls back to its MIC, and MIC precedence or a string do not use
// the LSC.
func TestAuthWarning(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	valid := &device.Certificate{NotAfter: now.Add(time.Hour)}
	expired := &device.Certificate{NotAfter: now.Add(-time.Hour)}
	revoked := &device.Certificate{NotAfter: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)}
	for _, c := range []struct {
		name string
		op   device.Operation
		mode device.AuthMode
		lsc  *device.Certificate
		want string // a part of the warning; "" for none
	}{
		{"revoked/install", device.OpInstall, device.AuthLSC, revoked, "its LSC is revoked"},
		{"revoked/delete", device.OpDelete, device.AuthLSC, revoked, "its LSC is revoked"},
		{"expired/troubleshoot", device.OpTroubleshoot, device.AuthLSC, expired, "its LSC has expired"},
		{"valid", device.OpInstall, device.AuthLSC, valid, ""},
		{"no-lsc-falls-back-to-mic", device.OpInstall, device.AuthLSC, nil, ""},
		{"nothing-armed", device.OpNone, device.AuthLSC, revoked, ""},
		{"mic-precedence", device.OpInstall, device.AuthMIC, revoked, ""},
		{"string", device.OpInstall, device.AuthString, revoked, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := device.Device{Name: "SEP001122334455", Operation: c.op, AuthMode: c.mode, LSC: c.lsc}
			got := d.AuthWarning(now)
			if c.want == "" && got != "" || c.want != "" && (!strings.Contains(got, c.want) || !strings.Contains(got, device.AuthMIC.Label())) {
				t.Errorf("AuthWarning = %q, want %q", got, c.want)
			}
		})
	}
}
