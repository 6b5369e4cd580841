package session

import (
	"context"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// TestHistoryReasonSaysItOnce records a failed authentication with the
// failure reason in the status ("Upgrade Failed: Invalid LSC") and what
// failed in the history's reason, without the reason (or "authentication
// failed") said again.
func TestHistoryReasonSaysItOnce(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		msg        *wire.Message
		wantReason string
		wantDetail string
	}{
		{"wrong-string", &auth.Error{Reason: device.ReasonInvalidAuthString, Detail: "authentication string does not match"}, nil,
			device.ReasonInvalidAuthString, "authentication string does not match"},
		{"invalid-lsc", &auth.Error{Reason: device.ReasonInvalidLSC, Detail: "does not chain to the CAPF certificate"}, nil,
			device.ReasonInvalidLSC, "does not chain to the CAPF certificate"},
		{"invalid-mic", &auth.Error{Reason: device.ReasonInvalidMIC, Detail: "MIC expired at 2025-01-01T00:00:00Z"}, nil,
			device.ReasonInvalidMIC, "MIC expired at 2025-01-01T00:00:00Z"},
		{"malformed", nil, authResponse(phone).Add(wire.TagSHA2SignedData, []byte{3, 0}),
			device.ReasonInvalidCredentials, "malformed credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, pending(device.OpInstall, device.RSA2048))
			f.auth.err = tt.err
			msg := tt.msg
			if msg == nil {
				msg = authResponse(phone)
			}
			f.s.Start()
			expectEnd(t, f.s.Handle(context.Background(), msg), wire.ReasonRefused)
			o := f.store.lastOutcome(t)
			if o.Result != device.FailedStatus(device.OpInstall, tt.wantReason) {
				t.Errorf("status = %q, want the reason %q in it", o.Result, tt.wantReason)
			}
			if !strings.Contains(o.Reason, tt.wantDetail) {
				t.Errorf("history reason = %q, want what failed (%q)", o.Reason, tt.wantDetail)
			}
			all := strings.ToLower(o.Result + " — " + o.Reason)
			if n := strings.Count(all, strings.ToLower(tt.wantReason)); n != 1 {
				t.Errorf("status and reason %q say %q %d times, want once", all, tt.wantReason, n)
			}
			if strings.Contains(all, "authentication failed") {
				t.Errorf("history reason %q repeats that authentication failed", o.Reason)
			}
		})
	}
}
