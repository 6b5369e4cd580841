package session

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// fakeRevocations answers from a map serial → why and remembers what it
// was asked.
type fakeRevocations struct {
	revoked map[string]string
	err     error
	asked   []string // serial/keyid
}

func (r *fakeRevocations) LSCRevoked(_ context.Context, serial, keyID string) (string, bool, error) {
	r.asked = append(r.asked, serial+"/"+keyID)
	if r.err != nil {
		return "", false, r.err
	}
	why, ok := r.revoked[serial]
	return why, ok, nil
}

// TestRevokedLSCRefused: a phone authenticating by an LSC that is on the
// revocation records fails as an invalid LSC does (status, END_SESSION
// reason, byte for byte), with the revocation in the history's reason and
// nothing claimed; a valid LSC goes on; the look-up is made only when an
// LSC authenticated (never for a MIC, an authentication string or null),
// and a look-up that fails makes the phone retry later, not pass.
func TestRevokedLSCRefused(t *testing.T) {
	lscCert := newFakeIssuer(t).cert // any certificate: fakeAuth says it verified
	serial := fmt.Sprintf("%X", lscCert.SerialNumber.Bytes())
	keyID := hex.EncodeToString(lscCert.AuthorityKeyId)

	// What the session answers today for an LSC that does not verify.
	invalid := newFixture(t, pending(device.OpInstall, device.EC256))
	invalid.auth.err = &auth.Error{Reason: device.ReasonInvalidLSC, Detail: "does not chain to the CAPF certificate"}
	invalid.s.Start()
	wantRefusal, err := invalid.s.Handle(context.Background(), authResponse(phone)).Reply.Encode()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		mode      device.AuthMode
		cert      *x509.Certificate
		kind      auth.CertKind
		revoked   map[string]string
		lookupErr error
		wantAsked bool
		want      string // "refused", "key", "retry"
	}{
		{"lsc-revoked-keyCompromise", device.AuthLSC, lscCert, auth.CertLSC, map[string]string{serial: "keyCompromise since 2026-11-25T11:00:00Z (admin:alice)"}, nil, true, "refused"},
		{"lsc-superseded", device.AuthLSC, lscCert, auth.CertLSC, map[string]string{serial: "superseded since 2026-11-25T11:00:00Z (superseded by LSC 0B (attempt 3))"}, nil, true, "refused"},
		{"lsc-in-mic-mode", device.AuthMIC, lscCert, auth.CertLSC, map[string]string{serial: "cessationOfOperation since 2026-11-25T11:00:00Z"}, nil, true, "refused"},
		{"lsc-valid", device.AuthLSC, lscCert, auth.CertLSC, map[string]string{"0BAD": "keyCompromise"}, nil, true, "key"},
		{"lookup-fails", device.AuthLSC, lscCert, auth.CertLSC, nil, errors.New("database is locked"), true, "retry"},
		{"mic-not-looked-up", device.AuthMIC, lscCert, auth.CertMIC, map[string]string{serial: "keyCompromise"}, nil, false, "key"},
		{"null-not-looked-up", device.AuthNull, nil, "", map[string]string{serial: "keyCompromise"}, nil, false, "key"},
		{"string-not-looked-up", device.AuthString, nil, "", map[string]string{serial: "keyCompromise"}, nil, false, "key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pending(device.OpInstall, device.EC256)
			d.AuthMode = tt.mode
			if tt.mode == device.AuthString {
				d.AuthString = "24681357"
			}
			f := newFixture(t, d)
			f.auth.cert, f.auth.kind = tt.cert, tt.kind
			revs := &fakeRevocations{revoked: tt.revoked, err: tt.lookupErr}
			f.deps.Revocations = revs
			f.s = New(f.deps, sid, "192.0.2.10:5000")
			f.s.Start()
			step := f.s.Handle(context.Background(), authResponse(phone))

			if asked := len(revs.asked) > 0; asked != tt.wantAsked {
				t.Fatalf("look-ups %v, want asked=%v", revs.asked, tt.wantAsked)
			}
			if tt.wantAsked && !slices.Equal(revs.asked, []string{serial + "/" + keyID}) {
				t.Errorf("asked %v, want one look-up of %s/%s", revs.asked, serial, keyID)
			}
			switch tt.want {
			case "refused":
				got, err := step.Reply.Encode()
				if err != nil || !bytes.Equal(got, wantRefusal) || !step.Done {
					t.Errorf("reply % x (%v), want the invalid-LSC refusal % x", got, err, wantRefusal)
				}
				o := f.store.lastOutcome(t)
				if o.Result != device.FailedStatus(device.OpInstall, device.ReasonInvalidLSC) {
					t.Errorf("status %q, want %q", o.Result, device.FailedStatus(device.OpInstall, device.ReasonInvalidLSC))
				}
				if want := "LSC revoked: " + tt.revoked[serial]; o.Reason != want {
					t.Errorf("history reason %q, want %q", o.Reason, want)
				}
				if slices.Contains(f.store.calls, "start") || len(f.store.issuances) != 0 {
					t.Errorf("a revoked LSC claimed the device or got a certificate: calls %v", f.store.calls)
				}
			case "key":
				expectReply(t, step, wire.CmdKeyGenerateRequest)
				if len(f.store.failures) != 0 {
					t.Errorf("failures recorded: %+v", f.store.failures)
				}
			case "retry":
				if step.Reply == nil || step.Reply.Command != wire.CmdRetryLater || !step.Done {
					t.Fatalf("step %+v, want RETRY_LATER", step)
				}
				if len(f.store.failures) != 0 || slices.Contains(f.store.calls, "start") {
					t.Errorf("a failed look-up recorded %v, calls %v", f.store.failures, f.store.calls)
				}
				if !strings.Contains(f.s.Summary().Reason, "revocation records") {
					t.Errorf("summary reason %q", f.s.Summary().Reason)
				}
			}
		})
	}
}
