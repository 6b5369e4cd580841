package lsc_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestRenewal arms the phones whose valid LSC expires within the window
// and that have nothing pending, with LSC authentication and the same key
// type, once per LSC, audited as the renewal; on a fake clock.
func TestRenewal(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := ca.Generate(ca.Options{Dir: filepath.Join(t.TempDir(), "ca"), KeyAlgorithm: ca.ECP256, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ctx := t.Context()
	// give installs an LSC for key on the phone, expiring at notAfter, and
	// leaves op armed after it.
	give := func(name string, key crypto.Signer, notAfter time.Time, op device.Operation) string {
		t.Helper()
		if err := st.CreateDevice(ctx, device.Device{Name: name, SecurityProfile: "authenticated", AuthMode: device.AuthNull,
			Operation: device.OpInstall, Key: "ec256", Status: device.StatusPending}, device.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		d, _ := st.GetDevice(ctx, name)
		c, err := st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now, Rev: d.Rev})
		if err != nil {
			t.Fatal(err)
		}
		is, err := a.Issue(ctx, ca.IssueRequest{DeviceName: name, PublicKey: key.Public()})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.FinishAttempt(ctx, device.Outcome{AttemptID: c.AttemptID, Device: name, FinishedAt: now,
			Result: device.SuccessStatus(device.OpInstall), Completed: true,
			SetLSC: &device.Certificate{Serial: is.SerialHex, NotBefore: now, NotAfter: notAfter, DER: is.DER}}); err != nil {
			t.Fatal(err)
		}
		if op != device.OpNone {
			if _, _, err := st.UpdateDevice(ctx, name, device.CLIActor("alice"), func(d *device.Device) error {
				d.Operation, d.Status = op, device.StatusPending
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		return is.SerialHex
	}
	day := 24 * time.Hour
	soonEC := give("SEP00000000000A", ecKey, now.Add(10*day), device.OpNone)
	give("SEP00000000000B", ecKey, now.Add(60*day), device.OpNone)         // outside the window
	give("SEP00000000000C", ecKey, now.Add(10*day), device.OpTroubleshoot) // something pending
	give("SEP00000000000D", ecKey, now.Add(-day), device.OpNone)           // expired: cannot authenticate by it
	give("SEP00000000000E", rsaKey, now.Add(5*day), device.OpNone)         // RSA
	r := lsc.NewRenewal(st, clock)

	if armed, err := r.Run(ctx, 0); err != nil || len(armed) != 0 {
		t.Fatalf("Run(0) = %v, %v; want nothing (off)", armed, err)
	}
	armed, err := r.Run(ctx, 30*day)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(armed)
	if !slices.Equal(armed, []string{"SEP00000000000A", "SEP00000000000E"}) {
		t.Fatalf("armed %v, want A and E", armed)
	}
	for name, key := range map[string]device.KeySpec{"SEP00000000000A": device.EC256, "SEP00000000000E": device.RSA2048} {
		d, _ := st.GetDevice(ctx, name)
		if d.Operation != device.OpInstall || d.AuthMode != device.AuthLSC || d.Key != key || d.Status != device.StatusPending {
			t.Errorf("%s after renewal: operation %s, mode %s, key %s, status %s", name, d.Operation, d.AuthMode, d.Key, d.Status)
		}
	}
	evs, _ := st.ListAudit(ctx, device.AuditQuery{Target: "SEP00000000000A"})
	if len(evs) == 0 || evs[0].Actor.Kind != device.ActorSystem || evs[0].Actor.Name != lsc.RenewalActorPrefix+soonEC {
		t.Errorf("audit of the renewal: %+v", evs)
	}
	if d, _ := st.GetDevice(ctx, "SEP00000000000C"); d.Operation != device.OpTroubleshoot {
		t.Errorf("a pending Troubleshoot was replaced: %+v", d)
	}

	// Armed once: not again while pending, nor after an administrator
	// cancelled it; a day later still not.
	if armed, err := r.Run(ctx, 30*day); err != nil || len(armed) != 0 {
		t.Errorf("second run armed %v, %v", armed, err)
	}
	if _, _, err := st.UpdateDevice(ctx, "SEP00000000000A", device.CLIActor("alice"), func(d *device.Device) error {
		d.Operation, d.Status = device.OpNone, device.StatusNone
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(day)
	if armed, err := r.Run(ctx, 30*day); err != nil || len(armed) != 0 {
		t.Errorf("after the administrator cancelled it, the renewal armed %v again, %v", armed, err)
	}
	// B comes into the window as time passes.
	now = now.Add(40 * day)
	if armed, err := r.Run(ctx, 30*day); err != nil || !slices.Equal(armed, []string{"SEP00000000000B"}) {
		t.Errorf("40 days later: armed %v, %v; want B", armed, err)
	}
}

// TestRenewalSkipsRevokedLSC never arms a renewal by an LSC revoked by
// hand: it proves nothing any more, and a fresh LSC would go to whoever
// holds the compromised key. The phone beside it, with the same expiry,
// is armed.
func TestRenewalSkipsRevokedLSC(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := ca.Generate(ca.Options{Dir: filepath.Join(t.TempDir(), "ca"), KeyAlgorithm: ca.ECP256, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx := t.Context()
	notAfter := now.Add(10 * 24 * time.Hour)
	serials := map[string]string{}
	for _, name := range []string{"SEP00000000000A", "SEP00000000000R"} {
		if err := st.CreateDevice(ctx, device.Device{Name: name, SecurityProfile: "authenticated", AuthMode: device.AuthNull,
			Operation: device.OpInstall, Key: "ec256", Status: device.StatusPending}, device.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		d, _ := st.GetDevice(ctx, name)
		c, err := st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now, Rev: d.Rev})
		if err != nil {
			t.Fatal(err)
		}
		is, err := a.Issue(ctx, ca.IssueRequest{DeviceName: name, PublicKey: key.Public()})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecordIssuance(ctx, device.Issuance{Serial: is.SerialHex, Device: name, AttemptID: c.AttemptID,
			IssuedAt: now, NotBefore: now, NotAfter: notAfter, DER: is.DER}); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishAttempt(ctx, device.Outcome{AttemptID: c.AttemptID, Device: name, FinishedAt: now,
			Result: device.SuccessStatus(device.OpInstall), Completed: true,
			SetLSC: &device.Certificate{Serial: is.SerialHex, NotBefore: now, NotAfter: notAfter, DER: is.DER}}); err != nil {
			t.Fatal(err)
		}
		serials[name] = is.SerialHex
	}
	if _, err := st.RevokeCertificate(ctx, serials["SEP00000000000R"], lsc.Revocation{At: now, Reason: lsc.ReasonKeyCompromise, By: "cli:alice"},
		device.AuditEvent{At: now, Actor: device.CLIActor("alice"), Action: lsc.AuditRevoke, Target: "certificate " + serials["SEP00000000000R"]}); err != nil {
		t.Fatal(err)
	}
	armed, err := lsc.NewRenewal(st, clock).Run(ctx, 30*24*time.Hour)
	if err != nil || !slices.Equal(armed, []string{"SEP00000000000A"}) {
		t.Fatalf("Run = %v, %v; want only SEP…A (SEP…R's LSC is revoked)", armed, err)
	}
	if d, _ := st.GetDevice(ctx, "SEP00000000000R"); d.Operation != device.OpNone || d.AuthMode == device.AuthLSC {
		t.Errorf("the phone with a revoked LSC was armed: operation %s, mode %s", d.Operation, d.AuthMode)
	}
}
