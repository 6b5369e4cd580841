package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
)

// LSCStore is what RunLSC tests: the devices and their sessions (which
// record issuances and revoke automatically) and the LSC inventory.
type LSCStore interface {
	device.Store
	lsc.Store
}

// RunLSC runs the contract suite of lsc.Store against the stores open
// returns (a new, empty one each call; RunLSC closes it).
func RunLSC(t *testing.T, open func(t *testing.T) LSCStore) {
	t.Helper()
	const kidA, kidB = "aa01", "bb02"
	// issue records an issuance to name by a new, finished attempt and
	// returns its attempt id; install says whether the phone stored it.
	issue := func(t *testing.T, s LSCStore, name, serial, kid string, at time.Time, install bool) {
		t.Helper()
		id := start(t, s, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: at, Rev: get(t, s, name).Rev})
		notAfter := at.Add(365 * 24 * time.Hour)
		must(t, s.RecordIssuance(t.Context(), device.Issuance{Serial: serial, Device: name, AttemptID: id, Issuer: "CN=CAPF",
			IssuerKeyID: kid, IssuedAt: at, NotBefore: at, NotAfter: notAfter, DER: []byte(serial)}))
		o := device.Outcome{AttemptID: id, Device: name, FinishedAt: at.Add(time.Second),
			Result: device.FailedStatus(device.OpInstall, device.ReasonCommFailure)}
		if install {
			o.Result, o.Completed = device.SuccessStatus(device.OpInstall), true
			o.SetLSC = &device.Certificate{Serial: serial, Issuer: "CN=CAPF", NotBefore: at, NotAfter: notAfter, DER: []byte(serial)}
		}
		must(t, s.FinishAttempt(t.Context(), o))
	}
	status := func(t *testing.T, s LSCStore, serial string, now time.Time) lsc.Record {
		t.Helper()
		r, err := s.GetCertificate(t.Context(), serial)
		must(t, err)
		return r
	}
	now := t0.Add(24 * time.Hour)

	t.Run("inventory-and-supersede", func(t *testing.T) {
		s := freshT(t, open)
		a, b := newDevice("SEP00000000000A"), newDevice("SEP00000000000B")
		create(t, s, a, b)
		issue(t, s, a.Name, "0A01", kidA, t0, true)
		issue(t, s, b.Name, "0B01", kidA, t0.Add(time.Minute), true)
		issue(t, s, a.Name, "0A02", kidA, t0.Add(2*time.Minute), false) // sent, never stored
		issue(t, s, a.Name, "0A03", kidB, t0.Add(3*time.Minute), true)

		r := status(t, s, "0A03", now)
		if r.Device != a.Name || r.IssuerKeyID != kidB || r.Issuer != "CN=CAPF" || string(r.DER) != "0A03" ||
			!r.NotAfter.Equal(t0.Add(3*time.Minute+365*24*time.Hour).Truncate(time.Microsecond)) || r.Revoked() {
			t.Errorf("GetCertificate(0A03) = %+v", r)
		}
		for _, serial := range []string{"0A01", "0A02"} {
			r := status(t, s, serial, now)
			if r.Status(now) != lsc.StatusSuperseded || r.Reason != lsc.ReasonSuperseded ||
				!r.RevokedAt.Equal(t0.Add(3*time.Minute+time.Second).Truncate(time.Microsecond).UTC()) || r.RevokedBy == "" {
				t.Errorf("%s after a newer LSC was installed: %+v, want superseded at the outcome's time", serial, r)
			}
		}
		if r := status(t, s, "0B01", now); r.Revoked() {
			t.Errorf("another device's LSC was revoked: %+v", r)
		}
		is, err := s.ListIssuances(t.Context(), a.Name)
		must(t, err)
		if len(is) != 3 || is[0].IssuerKeyID != kidB {
			t.Errorf("ListIssuances = %+v, want 3 with the issuer key id", is)
		}

		for _, c := range []struct {
			name string
			q    lsc.Query
			want []string
		}{
			{"all", lsc.Query{Now: now}, []string{"0A03", "0A02", "0B01", "0A01"}},
			{"device", lsc.Query{Device: a.Name, Now: now}, []string{"0A03", "0A02", "0A01"}},
			{"valid", lsc.Query{Status: lsc.StatusValid, Now: now}, []string{"0A03", "0B01"}},
			{"superseded", lsc.Query{Status: lsc.StatusSuperseded, Now: now}, []string{"0A02", "0A01"}},
			{"revoked", lsc.Query{Status: lsc.StatusRevoked, Now: now}, nil},
			{"expired", lsc.Query{Status: lsc.StatusExpired, Now: t0.Add(2 * 365 * 24 * time.Hour)}, []string{"0A03", "0B01"}},
			{"limit", lsc.Query{Limit: 1, Now: now}, []string{"0A03"}},
			{"unknown-device", lsc.Query{Device: "SEP0000000000FF", Now: now}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				rs, err := s.ListCertificates(t.Context(), c.q)
				must(t, err)
				var got []string
				for _, r := range rs {
					got = append(got, r.Serial)
				}
				if len(got) != len(c.want) || (len(got) > 0 && !equalStrings(got, c.want)) {
					t.Errorf("ListCertificates(%+v) = %v, want %v", c.q, got, c.want)
				}
			})
		}
		_, err = s.GetCertificate(t.Context(), "0FFF")
		wantKind(t, err, fault.ErrNotFound, "0FFF")
	})

	t.Run("delete-revokes", func(t *testing.T) {
		s := freshT(t, open)
		d := newDevice("SEP00000000000D")
		create(t, s, d)
		issue(t, s, d.Name, "0D01", kidA, t0, true)
		id := start(t, s, device.Attempt{Device: d.Name, Operation: device.OpDelete, StartedAt: t0.Add(time.Hour), Rev: get(t, s, d.Name).Rev})
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: t0.Add(time.Hour),
			Result: device.SuccessStatus(device.OpDelete), Completed: true, ClearLSC: true}))
		r := status(t, s, "0D01", now)
		if r.Status(now) != lsc.StatusRevoked || r.Reason != lsc.ReasonCessationOfOperation {
			t.Errorf("LSC after Delete: %+v, want revoked, cessationOfOperation", r)
		}
	})

	t.Run("revoke-by-hand", func(t *testing.T) {
		s := freshT(t, open)
		d := newDevice("SEP00000000000E")
		create(t, s, d)
		issue(t, s, d.Name, "0E01", kidA, t0, true)
		at := t0.Add(2 * time.Hour).Truncate(time.Microsecond)
		ev := device.AuditEvent{At: at, Actor: device.CLIActor("alice"), Action: lsc.AuditRevoke, Target: "certificate 0E01"}
		r, err := s.RevokeCertificate(t.Context(), "0E01", lsc.Revocation{At: at, Reason: lsc.ReasonKeyCompromise, By: "cli:alice"}, ev)
		must(t, err)
		if r.Reason != lsc.ReasonKeyCompromise || !r.RevokedAt.Equal(at) || r.RevokedBy != "cli:alice" || r.Device != d.Name {
			t.Errorf("RevokeCertificate = %+v", r)
		}
		if got := status(t, s, "0E01", now); got.Status(now) != lsc.StatusRevoked || got.Reason != lsc.ReasonKeyCompromise {
			t.Errorf("GetCertificate after revoke = %+v", got)
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: "certificate 0E01"})
		must(t, err)
		if len(evs) != 1 || evs[0].Action != lsc.AuditRevoke {
			t.Errorf("audit = %+v, want the revocation", evs)
		}

		_, err = s.RevokeCertificate(t.Context(), "0E01", lsc.Revocation{At: at.Add(time.Hour), Reason: lsc.ReasonSuperseded}, ev)
		wantKind(t, err, fault.ErrConflict, "0E01")
		if got := status(t, s, "0E01", now); got.Reason != lsc.ReasonKeyCompromise || !got.RevokedAt.Equal(at) {
			t.Errorf("a second revocation changed the first: %+v", got)
		}
		_, err = s.RevokeCertificate(t.Context(), "0FFF", lsc.Revocation{At: at, Reason: lsc.ReasonKeyCompromise}, ev)
		wantKind(t, err, fault.ErrNotFound, "0FFF")
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: "certificate 0E01"}); len(evs) != 1 {
			t.Errorf("refused revocations were audited: %d events", len(evs))
		}
	})

	// A current LSC revoked by hand no longer counts as the phone's valid
	// LSC: not in the valid or expiring searches (the renewal's, the
	// expiry gauge's, the dashboard's), nor in the dashboard's counts, but
	// in its own state, revoked.
	t.Run("revoked-current-lsc-is-not-valid", func(t *testing.T) {
		s := freshT(t, open)
		kept, gone, old := newDevice("SEP0000000000C1"), newDevice("SEP0000000000C2"), newDevice("SEP0000000000C3")
		create(t, s, kept, gone, old)
		issue(t, s, kept.Name, "C101", kidA, t0, true)
		issue(t, s, gone.Name, "C201", kidA, t0, true)
		issue(t, s, old.Name, "C301", kidA, t0, true)
		at := t0.Add(time.Hour).Truncate(time.Microsecond)
		for _, serial := range []string{"C201", "C301"} {
			ev := device.AuditEvent{At: at, Actor: device.CLIActor("alice"), Action: lsc.AuditRevoke, Target: "certificate " + serial}
			_, err := s.RevokeCertificate(t.Context(), serial, lsc.Revocation{At: at, Reason: lsc.ReasonKeyCompromise, By: "cli:alice"}, ev)
			must(t, err)
		}
		d := get(t, s, gone.Name)
		if d.LSC == nil || !d.LSC.RevokedAt.Equal(at) || d.LSCState(now) != device.LSCRevoked {
			t.Errorf("device with a revoked LSC: LSC %+v, state %q, want revoked at %v", d.LSC, d.LSCState(now), at)
		}
		if d := get(t, s, kept.Name); d.LSC == nil || !d.LSC.RevokedAt.IsZero() || d.LSCState(now) != device.LSCValid {
			t.Errorf("device with a valid LSC: LSC %+v, state %q", d.LSC, d.LSCState(now))
		}
		later := t0.Add(2 * 365 * 24 * time.Hour) // all three expired
		before := now.Add(400 * 24 * time.Hour).Format(time.RFC3339)
		for _, c := range []struct {
			name    string
			filters []device.Filter
			at      time.Time
			want    []string
		}{
			{"valid", []device.Filter{{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCValid}}, now, []string{kept.Name}},
			{"valid-expiring", []device.Filter{
				{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCValid},
				{Field: device.FieldLSCExpires, Match: device.MatchBefore, Value: before},
			}, now, []string{kept.Name}},
			{"revoked", []device.Filter{{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCRevoked}}, now, []string{gone.Name, old.Name}},
			{"revoked-after-expiry", []device.Filter{{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCRevoked}}, later, []string{gone.Name, old.Name}},
			{"expired", []device.Filter{{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCExpired}}, later, []string{kept.Name}},
		} {
			t.Run(c.name, func(t *testing.T) {
				p, err := s.ListDevices(t.Context(), device.Query{Filters: c.filters, Now: c.at, Limit: 10})
				must(t, err)
				var got []string
				for _, d := range p.Devices {
					got = append(got, d.Name)
				}
				if p.Total != len(c.want) || !equalStrings(got, c.want) {
					t.Errorf("ListDevices = %v (total %d), want %v", got, p.Total, c.want)
				}
			})
		}
		db, err := s.Dashboard(t.Context(), device.DashboardQuery{Now: now, ExpiringBefore: now.Add(400 * 24 * time.Hour), Limit: 10})
		must(t, err)
		wantLSC := []device.Count{{Value: device.LSCNone}, {Value: device.LSCValid, Count: 1},
			{Value: device.LSCExpired}, {Value: device.LSCRevoked, Count: 2}}
		if fmt.Sprint(db.ByLSC) != fmt.Sprint(wantLSC) {
			t.Errorf("dashboard by LSC = %v, want %v", db.ByLSC, wantLSC)
		}
		if db.ExpiringSoon != 1 || len(db.Expiring) != 1 || db.Expiring[0].Name != kept.Name {
			t.Errorf("dashboard expiring = %d %v, want only %s", db.ExpiringSoon, names(db.Expiring), kept.Name)
		}
	})

	t.Run("list-revoked-per-issuer", func(t *testing.T) {
		s := freshT(t, open)
		a, b := newDevice("SEP0000000000A1"), newDevice("SEP0000000000B1")
		create(t, s, a, b)
		issue(t, s, a.Name, "A101", kidA, t0, true)
		issue(t, s, a.Name, "A102", kidA, t0.Add(time.Minute), true) // supersedes A101
		issue(t, s, b.Name, "B101", kidB, t0, true)
		issue(t, s, b.Name, "B102", kidB, t0.Add(time.Minute), true) // supersedes B101
		got := func(kid string, at time.Time) []string {
			rs, err := s.ListRevoked(t.Context(), kid, at)
			must(t, err)
			var out []string
			for _, r := range rs {
				out = append(out, r.Serial)
			}
			return out
		}
		if g := got(kidA, now); !equalStrings(g, []string{"A101"}) {
			t.Errorf("ListRevoked(A) = %v, want [A101]", g)
		}
		if rs, _ := s.ListRevoked(t.Context(), kidA, now); len(rs) == 1 && (rs[0].DER != nil || rs[0].Reason != lsc.ReasonSuperseded || rs[0].RevokedAt.IsZero()) {
			t.Errorf("ListRevoked(A) = %+v, want the revocation without DER", rs[0])
		}
		countA := func() int64 {
			n, err := s.CountRevoked(t.Context(), kidA)
			must(t, err)
			return n
		}
		if n := countA(); n != 1 {
			t.Errorf("CountRevoked(A) = %d, want 1", n)
		}
		// An issuance recorded before key ids were: listed for every CA,
		// with its DER, for the caller to sort out.
		issue(t, s, a.Name, "A1FF", "", t0.Add(2*time.Minute), false)
		issue(t, s, a.Name, "A103", kidA, t0.Add(3*time.Minute), true) // supersedes A102 and A1FF
		rs, err := s.ListRevoked(t.Context(), kidB, now)
		must(t, err)
		if len(rs) != 2 || rs[1].Serial != "A1FF" || string(rs[1].DER) != "A1FF" {
			t.Errorf("ListRevoked(B) with a legacy revocation = %+v, want B101 then A1FF with its DER", rs)
		}
		if n := countA(); n != 3 {
			t.Errorf("CountRevoked(A) = %d, want 3", n)
		}
		if g := got(kidA, now); !equalStrings(g, []string{"A101", "A102", "A1FF"}) {
			t.Errorf("ListRevoked(A) = %v, want [A101 A102 A1FF]", g)
		}
		if g := got(kidA, t0.Add(2*365*24*time.Hour)); len(g) != 0 {
			t.Errorf("ListRevoked after expiry = %v, want none", g)
		}
		if n := countA(); n != 3 {
			t.Errorf("CountRevoked(A) counts expired ones too: %d, want 3", n)
		}
	})

	t.Run("crl", func(t *testing.T) {
		s := freshT(t, open)
		_, err := s.GetCRL(t.Context(), kidA)
		wantKind(t, err, fault.ErrNotFound, kidA)
		c := lsc.CRL{IssuerKeyID: kidA, Number: 10, ThisUpdate: t0.UTC().Truncate(time.Microsecond), NextUpdate: t0.Add(time.Hour).UTC().Truncate(time.Microsecond), DER: []byte{1, 2}}
		for _, step := range []struct {
			c    lsc.CRL
			want bool
		}{
			{c, true},
			{lsc.CRL{IssuerKeyID: kidA, Number: 9, ThisUpdate: t0, NextUpdate: t0, DER: []byte{9}}, false},
			{lsc.CRL{IssuerKeyID: kidA, Number: 10, ThisUpdate: t0, NextUpdate: t0, DER: []byte{9}}, false},
		} {
			ok, err := s.SaveCRL(t.Context(), step.c)
			must(t, err)
			if ok != step.want {
				t.Errorf("SaveCRL(number %d) = %v, want %v", step.c.Number, ok, step.want)
			}
		}
		g, err := s.GetCRL(t.Context(), kidA)
		must(t, err)
		if g.Number != 10 || string(g.DER) != "\x01\x02" || !g.ThisUpdate.Equal(c.ThisUpdate) || !g.NextUpdate.Equal(c.NextUpdate) {
			t.Errorf("GetCRL = %+v, want %+v", g, c)
		}
		if ok, err := s.SaveCRL(t.Context(), lsc.CRL{IssuerKeyID: kidA, Number: 11, ThisUpdate: t0, NextUpdate: t0, DER: []byte{3}}); err != nil || !ok {
			t.Errorf("SaveCRL(11) = %v, %v", ok, err)
		}
		if _, err := s.GetCRL(t.Context(), kidB); fault.KindOf(err) != fault.NotFound {
			t.Errorf("GetCRL of another CA: %v, want NotFound", err)
		}
	})
}

// equalStrings reports whether a and b hold the same strings in order.
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
