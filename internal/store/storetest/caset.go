package storetest

import (
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/lsc"
)

// CASetStore is what RunCASet tests: the CA set, the keys it may store a
// CA's key in, and the devices and LSC inventory whose holders it counts.
type CASetStore interface {
	caset.Store
	keys.Store
	LSCStore
}

// RunCASet runs the contract of caset.Store, and the caset.Service over
// it, against the stores open returns (a new, empty one each call;
// RunCASet closes it).
func RunCASet(t *testing.T, open func(t *testing.T) CASetStore) {
	t.Helper()
	certs := make([]*x509.Certificate, 3)
	for i := range certs {
		a, err := ca.Generate(ca.Options{KeyAlgorithm: ca.ECP256})
		must(t, err)
		certs[i] = a.Certificate()
	}
	id := func(i int) string { s, err := caset.KeyID(certs[i]); must(t, err); return s }
	rec := func(i int, st caset.State) caset.Record {
		return caset.Record{ID: id(i), State: st, Chain: certs[i].Raw, KeyRef: fmt.Sprintf("ref-%d", i), CreatedAt: at(time.Duration(i) * time.Minute), ChangedAt: at(time.Duration(i) * time.Minute)}
	}
	ev := func(action string) device.AuditEvent {
		return device.AuditEvent{At: t0, Actor: device.CLIActor("root"), Action: action, Target: "ca", Detail: "test"}
	}
	states := func(t *testing.T, s CASetStore) string {
		t.Helper()
		recs, err := s.ListCAs(t.Context())
		must(t, err)
		out := ""
		for _, r := range recs {
			out += fmt.Sprintf("%s=%s ", r.KeyRef, r.State)
		}
		return out
	}
	version := func(t *testing.T, s CASetStore) int64 {
		t.Helper()
		v, err := s.CASetVersion(t.Context())
		must(t, err)
		return v
	}
	wantKind := func(t *testing.T, err error, k fault.Kind, what string) {
		t.Helper()
		if fault.KindOf(err) != k {
			t.Errorf("%s: %v, want %v", what, err, k)
		}
	}

	t.Run("add-and-list", func(t *testing.T) {
		s := freshT(t, open)
		if got := states(t, s); got != "" || version(t, s) != 0 {
			t.Fatalf("a new store: %q version %d, want an empty set at version 0", got, version(t, s))
		}
		wantKind(t, s.AddCA(t.Context(), caset.Record{ID: "", State: caset.Active, Chain: certs[0].Raw}, nil, ev("x")), fault.Invalid, "no id")
		must(t, s.AddCA(t.Context(), rec(0, caset.Active), nil, ev(caset.AuditAdopt)))
		key := &keys.Record{ID: "ca-" + id(1), Kind: keys.KindCAPF, Chain: certs[1].Raw, Sealed: []byte("sealed"), KEKID: "kek-1", CreatedAt: t0}
		must(t, s.AddCA(t.Context(), rec(1, caset.Staged), key, ev(caset.AuditRegenerate)))
		v := version(t, s)
		if v != 2 {
			t.Errorf("version after two additions = %d, want 2", v)
		}
		wantKind(t, s.AddCA(t.Context(), rec(2, caset.Active), nil, ev("x")), fault.Conflict, "a second active CA")
		wantKind(t, s.AddCA(t.Context(), rec(1, caset.Staged), nil, ev("x")), fault.Conflict, "the same id twice")
		key2 := &keys.Record{ID: "ca-" + id(1), Kind: keys.KindCAPF, Chain: certs[2].Raw, Sealed: []byte("s"), KEKID: "kek-1", CreatedAt: t0}
		wantKind(t, s.AddCA(t.Context(), rec(2, caset.Staged), key2, ev("x")), fault.Conflict, "a key id stored already")
		if got := states(t, s); got != "ref-0=active ref-1=staged " || version(t, s) != v {
			t.Errorf("after refused additions: %q version %d, want them unchanged", got, version(t, s))
		}
		recs, err := s.ListCAs(t.Context())
		must(t, err)
		if r := recs[1]; r.ID != id(1) || string(r.Chain) != string(certs[1].Raw) || !r.CreatedAt.Equal(at(time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("ListCAs[1] = %+v", r)
		}
		ks, err := s.ListKeys(t.Context())
		must(t, err)
		if len(ks) != 1 || ks[0].ID != "ca-"+id(1) || string(ks[0].Sealed) != "sealed" {
			t.Errorf("keys = %+v, want the staged CA's key", ks)
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{})
		must(t, err)
		if len(evs) != 2 || evs[0].Action != caset.AuditRegenerate || evs[1].Action != caset.AuditAdopt {
			t.Errorf("audit = %+v, want one event per addition", evs)
		}
	})

	t.Run("change-states", func(t *testing.T) {
		s := freshT(t, open)
		must(t, s.AddCA(t.Context(), rec(0, caset.Active), nil, ev("a")))
		must(t, s.AddCA(t.Context(), rec(1, caset.Staged), nil, ev("a")))
		v := version(t, s)
		// All or none: the second change's CA is not staged.
		err := s.ChangeCAStates(t.Context(), []caset.StateChange{{ID: id(0), From: caset.Active, To: caset.Retiring}, {ID: id(0), From: caset.Staged, To: caset.Active}}, at(time.Hour), ev("x"))
		wantKind(t, err, fault.Conflict, "a change from the wrong state")
		err = s.ChangeCAStates(t.Context(), []caset.StateChange{{ID: "ffff", From: caset.Staged, To: caset.Retired}}, at(time.Hour), ev("x"))
		wantKind(t, err, fault.NotFound, "an unknown CA")
		err = s.ChangeCAStates(t.Context(), []caset.StateChange{{ID: id(1), From: caset.Staged, To: caset.Active}}, at(time.Hour), ev("x"))
		wantKind(t, err, fault.Conflict, "a second active CA")
		if got := states(t, s); got != "ref-0=active ref-1=staged " || version(t, s) != v {
			t.Fatalf("after refused changes: %q version %d, want them unchanged", got, version(t, s))
		}
		// The swap, in either order.
		must(t, s.ChangeCAStates(t.Context(), []caset.StateChange{{ID: id(1), From: caset.Staged, To: caset.Active}, {ID: id(0), From: caset.Active, To: caset.Retiring}}, at(time.Hour), ev(caset.AuditActivate)))
		if got := states(t, s); got != "ref-0=retiring ref-1=active " || version(t, s) != v+1 {
			t.Errorf("after the swap: %q version %d", got, version(t, s))
		}
		recs, err := s.ListCAs(t.Context())
		must(t, err)
		if !recs[0].ChangedAt.Equal(at(time.Hour).Truncate(time.Microsecond)) {
			t.Errorf("changed_at = %v, want %v", recs[0].ChangedAt, at(time.Hour))
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{})
		must(t, err)
		if len(evs) != 3 || evs[0].Action != caset.AuditActivate {
			t.Errorf("audit = %+v, want the activation last", evs)
		}
	})

	t.Run("lsc-holders", func(t *testing.T) {
		s := freshT(t, open)
		issue := func(name, serial, kid, issuer string, notAfter time.Time) {
			t.Helper()
			id := start(t, s, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: t0, Rev: get(t, s, name).Rev})
			must(t, s.RecordIssuance(t.Context(), device.Issuance{Serial: serial, Device: name, AttemptID: id, Issuer: issuer,
				IssuerKeyID: kid, IssuedAt: t0, NotBefore: t0, NotAfter: notAfter, DER: []byte(serial)}))
			must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: id, Device: name, FinishedAt: t0.Add(time.Second),
				Result: device.SuccessStatus(device.OpInstall), Completed: true,
				SetLSC: &device.Certificate{Serial: serial, Issuer: issuer, NotBefore: t0, NotAfter: notAfter, DER: []byte(serial)}}))
		}
		names := []string{"SEP00000000000A", "SEP00000000000B", "SEP00000000000C", "SEP00000000000D", "SEP00000000000E", "SEP00000000000F"}
		for _, n := range names {
			create(t, s, newDevice(n))
		}
		year := t0.Add(365 * 24 * time.Hour)
		issue(names[0], "0A01", "aa01", "CN=CAPF-1", year)
		issue(names[1], "0B01", "bb02", "CN=CAPF-2", year)
		issue(names[2], "0C01", "aa01", "CN=CAPF-1", t0.Add(time.Hour)) // expired at now
		issue(names[3], "0D01", "", "CN=CAPF-1", year)                  // before key ids
		issue(names[4], "0E01", "aa01", "CN=CAPF-1", year)              // revoked below
		issue(names[5], "0F01", "aa01", "CN=CAPF-1", year)
		issue(names[5], "0F02", "bb02", "CN=CAPF-2", year) // renewed under 2
		_, err := s.RevokeCertificate(t.Context(), "0E01", lsc.Revocation{At: t0.Add(time.Minute), Reason: lsc.ReasonKeyCompromise, By: "test"}, ev("lsc.revoke"))
		must(t, err)
		now := t0.Add(2 * time.Hour)
		for _, c := range []struct {
			kid, subject string
			want         int
		}{{"aa01", "CN=CAPF-1", 2}, {"bb02", "CN=CAPF-2", 2}, {"cc03", "CN=CAPF-3", 0}} {
			n, err := s.CountLSCHolders(t.Context(), c.kid, c.subject, now)
			must(t, err)
			if n != c.want {
				t.Errorf("CountLSCHolders(%s) = %d, want %d", c.kid, n, c.want)
			}
		}
	})

	t.Run("service", func(t *testing.T) {
		s := freshT(t, open)
		base := time.Now().UTC()
		clock := base
		svc := caset.NewService(s, func() time.Time { return clock })
		actor := device.CLIActor("root")
		adopted, err := svc.Adopt(t.Context(), certs[0], "capf.key", actor)
		must(t, err)
		again, err := svc.Adopt(t.Context(), certs[1], "other", actor)
		must(t, err)
		if !adopted || again {
			t.Errorf("Adopt = %v then %v, want only the first into an empty set", adopted, again)
		}
		_, _, err = svc.Activate(t.Context(), "", actor)
		wantKind(t, err, fault.Invalid, "activate with nothing staged")
		_, _, err = svc.Activate(t.Context(), id(0), actor)
		wantKind(t, err, fault.Conflict, "activate the active CA")
		_, _, err = svc.Activate(t.Context(), "0123456789", actor)
		wantKind(t, err, fault.NotFound, "activate an unknown id")
		clock = base.Add(30 * time.Second)
		_, err = svc.Stage(t.Context(), []*x509.Certificate{certs[1]}, id(1)+"/capf.key", nil, actor)
		must(t, err)
		_, _, err = svc.Retire(t.Context(), id(0), false, actor)
		wantKind(t, err, fault.Conflict, "retire the active CA")
		v := version(t, s)
		if got := states(t, s); got != "capf.key=active "+id(1)+"/capf.key=staged " {
			t.Fatalf("before activation: %q", got)
		}
		clock = base.Add(time.Minute)
		act, prev, err := svc.Activate(t.Context(), "", actor)
		must(t, err)
		if act.ID != id(1) || prev.ID != id(0) || prev.State != caset.Retiring || version(t, s) != v+1 {
			t.Errorf("Activate = %s, %s (%s)", act.ID, prev.ID, prev.State)
		}
		// A phone holds a valid LSC from CA 0: retire refuses, naming the
		// count, unless forced; the serial works as the reference, as
		// openssl prints it.
		create(t, s, newDevice("SEP0000000000AA"))
		aid := start(t, s, device.Attempt{Device: "SEP0000000000AA", Operation: device.OpInstall, StartedAt: t0, Rev: get(t, s, "SEP0000000000AA").Rev})
		year := base.Add(365 * 24 * time.Hour)
		must(t, s.RecordIssuance(t.Context(), device.Issuance{Serial: "AB01", Device: "SEP0000000000AA", AttemptID: aid, Issuer: certs[0].Subject.String(),
			IssuerKeyID: id(0), IssuedAt: t0, NotBefore: t0, NotAfter: year, DER: []byte("x")}))
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: aid, Device: "SEP0000000000AA", FinishedAt: t0, Result: device.SuccessStatus(device.OpInstall), Completed: true,
			SetLSC: &device.Certificate{Serial: "AB01", Issuer: certs[0].Subject.String(), NotBefore: t0, NotAfter: year, DER: []byte("x")}}))
		serial := fmt.Sprintf("%x", certs[0].SerialNumber.Bytes())
		colons := ""
		for i := 0; i < len(serial); i += 2 {
			if i > 0 {
				colons += ":"
			}
			colons += serial[i : i+2]
		}
		v = version(t, s)
		_, n, err := svc.Retire(t.Context(), colons, false, actor)
		wantKind(t, err, fault.Conflict, "retire while a phone holds its LSC")
		if n != 1 || version(t, s) != v {
			t.Errorf("refused retire: count %d, version %d->%d, want 1 and unchanged", n, v, version(t, s))
		}
		st, err := svc.Status(t.Context())
		must(t, err)
		if len(st) != 2 || st[0].Holders != 1 || st[1].Holders != 0 {
			t.Errorf("Status = %+v", st)
		}
		r, n, err := svc.Retire(t.Context(), colons, true, actor)
		must(t, err)
		if r.ID != id(0) || n != 1 || r.State != caset.Retired {
			t.Errorf("forced retire = %+v, %d", r, n)
		}
		_, _, err = svc.Retire(t.Context(), id(0), true, actor)
		wantKind(t, err, fault.Conflict, "retire twice")
		if got := states(t, s); got != "capf.key=retired "+id(1)+"/capf.key=active " {
			t.Errorf("after retire: %q", got)
		}
	})

	runCAIssuing(t, open)
	runCAPending(t, open)
}
