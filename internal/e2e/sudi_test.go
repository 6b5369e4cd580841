package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// TestMatrixSUDI re-enrols phones by their LSC while they send SUDI_DATA,
// as every 78xx/88xx does, under each sudi_verification policy: a SUDI that
// chains to nothing trusted must not lock out a phone whose LSC is valid
// (unless the administrator requires SUDI), and a tampered SUDI signature is
// refused whatever the policy but off.
func TestMatrixSUDI(t *testing.T) {
	// No manufacturer bundle: what most deployments have.
	noBundle := serverParams{"manufacturer_ca_bundle": ""}
	servers := map[string]*server{}
	for _, policy := range []string{"when-trusted", "required", "off"} {
		p := serverParams{"sudi_verification": policy}
		for k, v := range noBundle {
			p[k] = v
		}
		servers[policy] = startServer(t, p, "")
	}
	rogue := newPKI(t, "Unknown Manufacturer SUDI CA")

	type sudiKind int
	const (
		sudiIsLSC       sudiKind = iota // the phone's LSC, signed by its key: chains to the CAPF
		sudiUnknown                     // from a manufacturer CA nobody configured
		sudiTampered                    // from that CA, signatures by another key
		sudiTamperedLSC                 // the LSC, signatures by another key
	)
	for _, tc := range []struct {
		name       string
		policy     string
		sudi       sudiKind
		wantEnd    wire.Reason
		wantStatus string
		wantSUDI   string
	}{
		{"ok/sudi-is-the-lsc", "when-trusted", sudiIsLSC, wire.ReasonSuccess, "Upgrade Success", "verified"},
		{"ok/sudi-is-the-lsc-required", "required", sudiIsLSC, wire.ReasonSuccess, "Upgrade Success", "verified"},
		{"ok/unknown-manufacturer-when-trusted", "when-trusted", sudiUnknown, wire.ReasonSuccess, "Upgrade Success", "not verified: unknown issuer"},
		{"fail/unknown-manufacturer-required", "required", sudiUnknown, wire.ReasonRefused, "Upgrade Failed: Invalid Credentials", "not verified: unknown issuer"},
		{"ok/unknown-manufacturer-off", "off", sudiUnknown, wire.ReasonSuccess, "Upgrade Success", "ignored (sudi_verification off)"},
		{"fail/tampered-signature", "when-trusted", sudiTampered, wire.ReasonRefused, "Upgrade Failed: Invalid Credentials", "refused: signature does not verify"},
		{"fail/tampered-signature-of-own-lsc", "when-trusted", sudiTamperedLSC, wire.ReasonRefused, "Upgrade Failed: Invalid Credentials", "refused: signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := servers[tc.policy]
			name := newPhoneName()
			state := t.TempDir()
			enroll(t, s, name, state, "ec256")
			lsc, err := phonesim.LoadLSC(state)
			if err != nil || lsc == nil {
				t.Fatalf("LoadLSC: %v %v", lsc, err)
			}
			s.mustCapf("device", "set", name, "--auth-mode", "lsc", "--operation", "install")

			var sudi *phonesim.Credential
			switch tc.sudi {
			case sudiIsLSC:
				sudi = lsc
			case sudiUnknown:
				sudi = rogue.issue(t, "PID:CP-8865 SN:"+name, false, false)
			case sudiTampered, sudiTamperedLSC:
				// The phone signs with a key that is not the SUDI
				// certificate's: the signatures do not verify.
				cert := rogue.issue(t, "PID:CP-8865 SN:"+name, false, false).Certificate
				if tc.sudi == sudiTamperedLSC {
					cert = lsc.Certificate
				}
				other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				sudi = &phonesim.Credential{Certificate: cert, Key: other}
			}
			// The state directory keeps its LSC; the SUDI is given for
			// this run only (a mismatched one cannot be saved and loaded).
			res, err := s.phone(name, "", func(o *phonesim.Options) {
				o.AuthMode, o.LSC, o.SUDI = phonesim.AuthModeLSC, lsc, sudi
			})
			if err != nil || res.EndReason != tc.wantEnd {
				t.Fatalf("phone: %+v %v; want END_SESSION %v", res, err, tc.wantEnd)
			}
			d := s.device(name)
			if d.Status != tc.wantStatus {
				t.Errorf("status %q, want %q", d.Status, tc.wantStatus)
			}
			if len(d.History) == 0 || d.History[0].SUDI != tc.wantSUDI {
				t.Fatalf("history %+v, want the newest attempt with SUDI %q", d.History, tc.wantSUDI)
			}
			if tc.wantEnd == wire.ReasonSuccess && (d.History[0].AuthMode != "lsc" || res.Installed == nil) {
				t.Errorf("history %+v, installed %v: want a new LSC by LSC authentication", d.History[0], res.Installed != nil)
			}
			if show := s.mustCapf("device", "show", name); !strings.Contains(show, tc.wantSUDI) {
				t.Errorf("device show lacks %q:\n%s", tc.wantSUDI, show)
			}
			// The session's log line says it too.
			field := "sudi=" + tc.wantSUDI
			if strings.Contains(tc.wantSUDI, " ") {
				field = "sudi=" + strconv.Quote(tc.wantSUDI)
			}
			waitFor(t, func() bool {
				for line := range strings.Lines(s.errOut.String()) {
					if strings.Contains(line, "device="+name) && strings.Contains(line, field) {
						return true
					}
				}
				return false
			})
		})
	}
}
