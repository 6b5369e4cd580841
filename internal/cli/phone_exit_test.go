package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"testing"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

func TestPhoneOutcome(t *testing.T) {
	lsc := &x509.Certificate{}
	for _, tc := range []struct {
		name   string
		res    phonesim.Result
		runErr error
		want   int
	}{
		{"ok/installed", phonesim.Result{EndReason: wire.ReasonSuccess, Operations: []string{"KEY_GENERATE_REQUEST", "STORE_CERTIFICATE_REQUEST"}, Installed: lsc}, nil, ExitOK},
		{"ok/deleted", phonesim.Result{EndReason: wire.ReasonSuccess, Operations: []string{"DELETE_CERTIFICATE_REQUEST"}}, nil, ExitOK},
		{"ok/nothing-pending", phonesim.Result{EndReason: wire.ReasonNoAction}, nil, ExitOK},
		{"ok/troubleshoot", phonesim.Result{EndReason: wire.ReasonNoAction, Operations: []string{"FETCH_CERTIFICATE_REQUEST"}, Fetched: true}, nil, ExitOK},
		{"fail/refused", phonesim.Result{EndReason: wire.ReasonRefused}, nil, ExitPhoneRefused},
		{"fail/refused-after-key", phonesim.Result{EndReason: wire.ReasonRefused, Operations: []string{"KEY_GENERATE_REQUEST"}}, nil, ExitPhoneRefused},
		{"fail/unknown-device", phonesim.Result{EndReason: wire.ReasonUnknownDevice}, nil, ExitPhoneUnknown},
		{"fail/success-without-operation", phonesim.Result{EndReason: wire.ReasonSuccess}, nil, ExitPhoneEndedEarly},
		{"fail/success-without-certificate", phonesim.Result{EndReason: wire.ReasonSuccess, Operations: []string{"KEY_GENERATE_REQUEST"}}, nil, ExitPhoneEndedEarly},
		{"fail/no-action-after-key", phonesim.Result{EndReason: wire.ReasonNoAction, Operations: []string{"KEY_GENERATE_REQUEST"}}, nil, ExitPhoneEndedEarly},
		{"fail/other-reason", phonesim.Result{EndReason: wire.Reason(42)}, nil, ExitPhoneEndedEarly},
		{"fail/retry-later", phonesim.Result{}, fmt.Errorf("giving up: %w", phonesim.ErrRetryLater), ExitPhoneRetryLater},
		{"fail/protocol", phonesim.Result{}, fmt.Errorf("x: %w", phonesim.ErrProtocol), ExitPhoneEndedEarly},
		{"fail/untrusted", phonesim.Result{}, fmt.Errorf("x: %w", phonesim.ErrUntrusted), ExitPhoneEndedEarly},
		{"fail/communication", phonesim.Result{}, fmt.Errorf("x: %w", phonesim.ErrCommunication), ExitPhoneEndedEarly},
		{"fail/local", phonesim.Result{}, errors.New("state directory: permission denied"), ExitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := phoneOutcome("SEP1", &tc.res, tc.runErr)
			got := ExitOK
			if err != nil {
				got = exitCode(err)
			}
			if got != tc.want {
				t.Errorf("exit code %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}
