package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// TestRevokedLSCAuthentication: the CAPF's own LSC authentication obeys
// the revocation records, through capf serve and the phone simulator. A
// phone whose LSC an administrator revoked (keyCompromise) and which is
// then armed for Install by existing certificate is refused with the
// invalid-LSC answer, and capf device show says why; a phone with a valid
// LSC re-keys by it; a copy of that phone's old key and LSC (superseded
// once the phone stored the new one) is refused too.
func TestRevokedLSCAuthentication(t *testing.T) {
	s := startServer(t, nil, "")
	lscMode := func(o *phonesim.Options) { o.AuthMode = phonesim.AuthModeLSC }
	serialOf := func(r *phonesim.Result) string { return fmt.Sprintf("%X", r.Installed.SerialNumber.Bytes()) }

	// Stolen phone: its LSC is revoked, keyCompromise.
	stolen, stolenState := newPhoneName(), t.TempDir()
	first := enroll(t, s, stolen, stolenState, "ec256")
	s.mustCapf("cert", "revoke", serialOf(first), "--reason", "keyCompromise")
	s.mustCapf("device", "set", stolen, "--operation", "install", "--auth-mode", "lsc")
	res, err := s.phone(stolen, stolenState, lscMode)
	if err != nil || res.EndReason != wire.ReasonRefused || res.Installed != nil {
		t.Fatalf("the phone with a revoked LSC: %+v %v; want refused (END_SESSION reason %v)", res, err, wire.ReasonRefused)
	}
	d := s.device(stolen)
	if d.Status != "Upgrade Failed: Invalid LSC" || d.Operation != "install" || len(d.History) == 0 ||
		!strings.Contains(d.History[0].Reason, "LSC revoked: keyCompromise") {
		t.Fatalf("device after the revoked LSC's attempt: %+v", d)
	}
	if out := s.mustCapf("device", "show", stolen); !strings.Contains(out, "LSC revoked: keyCompromise") {
		t.Errorf("capf device show does not say the LSC was revoked:\n%s", out)
	}

	// A phone with a valid LSC re-keys by it; an old copy of it does not.
	good, goodState := newPhoneName(), t.TempDir()
	old := enroll(t, s, good, goodState, "ec256")
	oldState := t.TempDir()
	if err := os.CopyFS(oldState, os.DirFS(goodState)); err != nil {
		t.Fatal(err)
	}
	s.mustCapf("device", "set", good, "--operation", "install", "--auth-mode", "lsc")
	res, err = s.phone(good, goodState, lscMode)
	if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil || serialOf(res) == serialOf(old) {
		t.Fatalf("re-key by a valid LSC: %+v %v", res, err)
	}
	if d := s.device(good); d.Status != "Upgrade Success" || len(d.History) == 0 || d.History[0].AuthMode != "lsc" {
		t.Fatalf("device after the re-key: %+v", d)
	}
	s.mustCapf("device", "set", good, "--operation", "install", "--auth-mode", "lsc")
	res, err = s.phone(good, oldState, lscMode)
	if err != nil || res.EndReason != wire.ReasonRefused || res.Installed != nil {
		t.Fatalf("the superseded LSC: %+v %v; want refused", res, err)
	}
	if d := s.device(good); len(d.History) == 0 || !strings.Contains(d.History[0].Reason, "LSC revoked: superseded") {
		t.Errorf("device after the superseded LSC's attempt: %+v", d)
	}
	// The phone itself, with its current LSC, still goes through.
	res, err = s.phone(good, goodState, lscMode)
	if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
		t.Fatalf("re-key by the current LSC after the refusal: %+v %v", res, err)
	}
}
