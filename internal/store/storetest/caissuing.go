package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

// runCAIssuing checks the issuing CA's part of caset.Store (IssuingCA,
// PutIssuingCA, RetireIssuingCA, FormerIssuingCAs, ForgetIssuingCA) and of
// the caset.Service over it: one at a time, stored with its key and audit
// line in one transaction that moves the set's counter; a removed one
// kept as a former issuing CA with its key until forgotten; every refusal
// changing nothing.
func runCAIssuing(t *testing.T, open func(t *testing.T) CASetStore) {
	t.Helper()
	parent, parentKey := issuingTestCA(t, "CAPF with issuer", nil, nil)
	issuing, _ := issuingTestCA(t, "Issuing", parent, parentKey)
	other, _ := issuingTestCA(t, "Issuing 2", parent, parentKey)
	pid, err := caset.KeyID(parent)
	must(t, err)
	iid, err := caset.KeyID(issuing)
	must(t, err)
	oid, err := caset.KeyID(other)
	must(t, err)
	ev := device.AuditEvent{At: t0, Actor: device.CLIActor("root"), Action: caset.AuditIssuer, Target: iid, Detail: "test"}
	rec := caset.IssuingRecord{ID: iid, ParentID: pid, Chain: issuing.Raw, KeyRef: caset.IssuingKeyPrefix + iid, CreatedAt: at(time.Minute)}
	key := &keys.Record{ID: caset.IssuingKeyPrefix + iid, Kind: keys.KindCAPF, Chain: issuing.Raw, Sealed: []byte("sealed"), KEKID: "kek-1", CreatedAt: t0}

	t.Run("issuing-put-and-read", func(t *testing.T) {
		s := freshT(t, open)
		if _, ok, err := s.IssuingCA(t.Context()); err != nil || ok {
			t.Fatalf("IssuingCA of a new store = %v, %v, want none", ok, err)
		}
		must(t, s.AddCA(t.Context(), caset.Record{ID: pid, State: caset.Active, Chain: parent.Raw, KeyRef: "capf", CreatedAt: t0, ChangedAt: t0}, nil, ev))
		v0, err := s.CASetVersion(t.Context())
		must(t, err)
		for _, bad := range []caset.IssuingRecord{{ParentID: pid, Chain: issuing.Raw, KeyRef: "k"}, {ID: iid, Chain: issuing.Raw, KeyRef: "k"}, {ID: iid, ParentID: pid, KeyRef: "k"}, {ID: iid, ParentID: pid, Chain: issuing.Raw}} {
			if err := s.PutIssuingCA(t.Context(), bad, nil, ev); fault.KindOf(err) != fault.Invalid {
				t.Errorf("PutIssuingCA(%+v) = %v, want Invalid", bad, err)
			}
		}
		// A key id stored already: refused, and the issuing CA with it.
		clash := *key
		clash.ID = "capf"
		must(t, s.CreateKeys(t.Context(), []keys.Record{{ID: "capf", Kind: keys.KindCAPF, Chain: parent.Raw, Sealed: []byte("s"), KEKID: "kek-1", CreatedAt: t0}}, device.AuditEvent{}))
		if err := s.PutIssuingCA(t.Context(), rec, &clash, ev); fault.KindOf(err) != fault.Conflict {
			t.Errorf("PutIssuingCA with a key id stored already = %v, want Conflict", err)
		}
		if _, ok, err := s.IssuingCA(t.Context()); err != nil || ok {
			t.Fatalf("after a refused put: %v, %v, want none", ok, err)
		}
		if v, err := s.CASetVersion(t.Context()); err != nil || v != v0 {
			t.Fatalf("after refused puts: version %d (%v), want %d", v, err, v0)
		}
		must(t, s.PutIssuingCA(t.Context(), rec, key, ev))
		got, ok, err := s.IssuingCA(t.Context())
		must(t, err)
		if !ok || got.ID != iid || got.ParentID != pid || string(got.Chain) != string(issuing.Raw) || got.KeyRef != rec.KeyRef || !got.CreatedAt.Equal(at(time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("IssuingCA = %+v, %v, want %+v", got, ok, rec)
		}
		if v, err := s.CASetVersion(t.Context()); err != nil || v != v0+1 {
			t.Errorf("version after the put = %d (%v), want %d: the nodes must see it", v, err, v0+1)
		}
		ks, err := s.ListKeys(t.Context())
		must(t, err)
		if len(ks) != 2 || ks[1].ID != key.ID || string(ks[1].Sealed) != "sealed" {
			t.Errorf("keys = %+v, want the issuing CA's sealed key beside capf", ks)
		}
		// One at a time: a second one is a Conflict and stores nothing.
		second := caset.IssuingRecord{ID: oid, ParentID: pid, Chain: other.Raw, KeyRef: caset.IssuingKeyPrefix + oid, CreatedAt: at(time.Hour)}
		key2 := &keys.Record{ID: second.KeyRef, Kind: keys.KindCAPF, Chain: other.Raw, Sealed: []byte("s2"), KEKID: "kek-1", CreatedAt: t0}
		if err := s.PutIssuingCA(t.Context(), second, key2, ev); fault.KindOf(err) != fault.Conflict {
			t.Errorf("a second issuing CA = %v, want Conflict", err)
		}
		if got, _, _ := s.IssuingCA(t.Context()); got.ID != iid {
			t.Errorf("after the refused second: %s in place, want %s", got.ID, iid)
		}
		if ks, _ := s.ListKeys(t.Context()); len(ks) != 2 {
			t.Errorf("after the refused second: %d keys, want 2", len(ks))
		}
		if v, _ := s.CASetVersion(t.Context()); v != v0+1 {
			t.Errorf("after the refused second: version %d, want %d", v, v0+1)
		}
		// Retired by its id only, keeping its key; then another can come.
		if err := s.RetireIssuingCA(t.Context(), oid, at(2*time.Hour), ev); fault.KindOf(err) != fault.NotFound {
			t.Errorf("RetireIssuingCA of another id = %v, want NotFound", err)
		}
		if got, ok, _ := s.IssuingCA(t.Context()); !ok || got.ID != iid {
			t.Errorf("after a refused retirement: %+v %v, want %s in place", got, ok, iid)
		}
		if fs, err := s.FormerIssuingCAs(t.Context()); err != nil || len(fs) != 0 {
			t.Errorf("former issuing CAs before any retirement = %+v, %v", fs, err)
		}
		must(t, s.RetireIssuingCA(t.Context(), iid, at(2*time.Hour), ev))
		if _, ok, err := s.IssuingCA(t.Context()); err != nil || ok {
			t.Errorf("after the retirement: %v %v, want none in place", ok, err)
		}
		fs, err := s.FormerIssuingCAs(t.Context())
		must(t, err)
		if len(fs) != 1 || fs[0].ID != iid || fs[0].ParentID != pid || string(fs[0].Chain) != string(issuing.Raw) || fs[0].KeyRef != rec.KeyRef ||
			!fs[0].CreatedAt.Equal(at(time.Minute).Truncate(time.Microsecond)) || !fs[0].RemovedAt.Equal(at(2*time.Hour).Truncate(time.Microsecond)) {
			t.Errorf("former issuing CAs = %+v, want %s removed at %v", fs, iid, at(2*time.Hour))
		}
		if ks, _ := s.ListKeys(t.Context()); len(ks) != 2 || ks[1].ID != key.ID {
			t.Errorf("keys after the retirement = %+v, want the former issuing CA's key kept beside capf", ks)
		}
		if v, _ := s.CASetVersion(t.Context()); v != v0+2 {
			t.Errorf("version after the retirement = %d, want %d: the nodes must see it", v, v0+2)
		}
		if err := s.RetireIssuingCA(t.Context(), iid, at(3*time.Hour), ev); fault.KindOf(err) != fault.NotFound {
			t.Errorf("a second retirement = %v, want NotFound", err)
		}
		// A former one cannot be put in place again until forgotten.
		if err := s.PutIssuingCA(t.Context(), rec, nil, ev); fault.KindOf(err) != fault.Conflict {
			t.Errorf("PutIssuingCA of a former issuing CA = %v, want Conflict", err)
		}
		// Forgotten by its id only, with its key.
		if err := s.ForgetIssuingCA(t.Context(), oid, ev); fault.KindOf(err) != fault.NotFound {
			t.Errorf("ForgetIssuingCA of an id that is no former one = %v, want NotFound", err)
		}
		must(t, s.ForgetIssuingCA(t.Context(), iid, ev))
		if fs, err := s.FormerIssuingCAs(t.Context()); err != nil || len(fs) != 0 {
			t.Errorf("former issuing CAs after forgetting = %+v, %v", fs, err)
		}
		if ks, _ := s.ListKeys(t.Context()); len(ks) != 1 || ks[0].ID != "capf" {
			t.Errorf("keys after forgetting = %+v, want capf alone", ks)
		}
		if v, _ := s.CASetVersion(t.Context()); v != v0+3 {
			t.Errorf("version after forgetting = %d, want %d: the nodes must see it", v, v0+3)
		}
		must(t, s.PutIssuingCA(t.Context(), second, key2, ev))
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{})
		must(t, err)
		n := 0
		for _, e := range evs {
			if e.Action == caset.AuditIssuer {
				n++
			}
		}
		if n != 5 { // the AddCA above used the same event, the put, the retirement, the forgetting, the second put
			t.Errorf("%d %s events, want 5 (one per change made)", n, caset.AuditIssuer)
		}
	})

	t.Run("issuing-service", func(t *testing.T) {
		s := freshT(t, open)
		now := time.Now().UTC()
		svc := caset.NewService(s, func() time.Time { return now })
		actor := device.CLIActor("root")
		if _, err := svc.Adopt(t.Context(), parent, "capf", actor); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := svc.Issuing(t.Context()); err != nil || ok {
			t.Fatalf("Issuing before any = %v, %v", ok, err)
		}
		r, err := svc.PutIssuing(t.Context(), issuing, parent, caset.IssuingKeyPrefix+iid, nil, actor, "made here")
		must(t, err)
		if r.ParentID != pid {
			t.Errorf("PutIssuing parent = %s, want %s", r.ParentID, pid)
		}
		if _, err := svc.PutIssuing(t.Context(), other, parent, caset.IssuingKeyPrefix+oid, nil, actor, "again"); fault.KindOf(err) != fault.Conflict {
			t.Errorf("a second PutIssuing = %v, want Conflict", err)
		}
		_, c, ok, err := svc.Issuing(t.Context())
		must(t, err)
		if !ok || !c.Equal(issuing) {
			t.Fatalf("Issuing = %v, %v", ok, c)
		}
		// It signs while valid below a trusted CAPF certificate; not once
		// it has expired.
		for _, tc := range []struct {
			at   time.Time
			want bool
		}{{now, true}, {issuing.NotAfter.Add(time.Minute), false}} {
			clock := tc.at
			st, err := caset.NewService(s, func() time.Time { return clock }).IssuingStatus(t.Context())
			must(t, err)
			if st == nil || st.ID != iid || st.ParentID != pid || st.Signing != tc.want {
				t.Errorf("IssuingStatus at %v = %+v, want %s below %s, signing %v", tc.at, st, iid, pid, tc.want)
			}
		}
		// A phone holding an LSC of the issuing CA counts for the CAPF
		// certificate above it: retiring that one is refused.
		name := "SEP0000000001AA"
		create(t, s, newDevice(name))
		aid := start(t, s, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: t0, Rev: get(t, s, name).Rev})
		year := now.Add(365 * 24 * time.Hour)
		must(t, s.RecordIssuance(t.Context(), device.Issuance{Serial: "CD01", Device: name, AttemptID: aid, Issuer: issuing.Subject.String(),
			IssuerKeyID: iid, IssuedAt: t0, NotBefore: t0, NotAfter: year, DER: []byte("x")}))
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: aid, Device: name, FinishedAt: t0, Result: device.SuccessStatus(device.OpInstall), Completed: true,
			SetLSC: &device.Certificate{Serial: "CD01", Issuer: issuing.Subject.String(), NotBefore: t0, NotAfter: year, DER: []byte("x")}}))
		must(t, s.AddCA(t.Context(), caset.Record{ID: oid, State: caset.Staged, Chain: other.Raw, KeyRef: "x", CreatedAt: now, ChangedAt: now}, nil, device.AuditEvent{At: now, Action: "x"}))
		if _, _, err := svc.Activate(t.Context(), oid, actor); err != nil {
			t.Fatal(err)
		}
		if _, n, err := svc.Retire(t.Context(), pid, false, actor); fault.KindOf(err) != fault.Conflict || n != 1 {
			t.Errorf("retire the CAPF certificate above the issuing CA = %d, %v, want Conflict naming 1 phone", n, err)
		}
		// Removing it keeps it trusted as a former issuing CA: the phone
		// still counts for the CAPF certificate above it.
		v, _ := s.CASetVersion(t.Context())
		if r, n, err := svc.RemoveIssuing(t.Context(), false, actor); err != nil || r.ID != iid || n != 1 || r.RemovedAt.IsZero() {
			t.Errorf("RemoveIssuing with a phone on it = %+v, %d, %v, want it taken out of place naming 1 phone", r, n, err)
		}
		if _, ok, _ := s.IssuingCA(t.Context()); ok {
			t.Fatal("the removal left the issuing CA in place")
		}
		if v2, _ := s.CASetVersion(t.Context()); v2 != v+1 {
			t.Errorf("version after the removal = %d, want %d", v2, v+1)
		}
		rows, err := svc.FormerIssuingStatus(t.Context())
		must(t, err)
		if len(rows) != 1 || rows[0].ID != iid || rows[0].Phones != 1 || rows[0].Signing || rows[0].RemovedAt.IsZero() {
			t.Errorf("FormerIssuingStatus = %+v, want %s with 1 phone, not signing", rows, iid)
		}
		if _, n, err := svc.Retire(t.Context(), pid, false, actor); fault.KindOf(err) != fault.Conflict || n != 1 {
			t.Errorf("retire the CAPF certificate above the former issuing CA = %d, %v, want Conflict naming 1 phone", n, err)
		}
		if _, _, err := svc.RemoveIssuing(t.Context(), true, actor); fault.KindOf(err) != fault.NotFound {
			t.Errorf("RemoveIssuing with none = %v, want NotFound", err)
		}
		// Forgetting it is refused while that phone holds its LSC, unless
		// forced; a short or unknown id is refused.
		if _, n, err := svc.ForgetIssuing(t.Context(), iid, false, actor); fault.KindOf(err) != fault.Conflict || n != 1 {
			t.Errorf("ForgetIssuing with a phone on it = %d, %v, want Conflict naming 1 phone", n, err)
		}
		for _, bad := range []string{"", iid[:4], oid} {
			if _, _, err := svc.ForgetIssuing(t.Context(), bad, true, actor); fault.KindOf(err) != fault.NotFound {
				t.Errorf("ForgetIssuing(%q) = %v, want NotFound", bad, err)
			}
		}
		if fs, _ := s.FormerIssuingCAs(t.Context()); len(fs) != 1 {
			t.Fatalf("refused forgets changed the former issuing CAs: %+v", fs)
		}
		if r, n, err := svc.ForgetIssuing(t.Context(), iid[:8], true, actor); err != nil || r.ID != iid || n != 1 {
			t.Errorf("forced ForgetIssuing by a prefix = %+v, %d, %v", r, n, err)
		}
		if fs, _ := s.FormerIssuingCAs(t.Context()); len(fs) != 0 {
			t.Errorf("former issuing CAs after forgetting = %+v", fs)
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{})
		must(t, err)
		if evs[0].Action != caset.AuditIssuerForget || evs[0].Target != iid || evs[1].Action != caset.AuditIssuerRemove || evs[1].Target != iid {
			t.Errorf("the newest audit events = %+v, %+v, want %s and %s of %s", evs[0], evs[1], caset.AuditIssuerForget, caset.AuditIssuerRemove, iid)
		}
	})
}

// issuingTestCA makes a CA certificate named cn (path length 1), signed
// by parent (self-signed when nil), and its key.
func issuingTestCA(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	must(t, err)
	ski := sha1.Sum(pub)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLen: 1, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, SubjectKeyId: ski[:]}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
	must(t, err)
	c, err := x509.ParseCertificate(der)
	must(t, err)
	return c, k
}
