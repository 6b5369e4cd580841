package caset

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/fault"
)

func newCA(t *testing.T) *ca.Authority {
	t.Helper()
	a, err := ca.Generate(ca.Options{KeyAlgorithm: ca.ECP256})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func issuer(t *testing.T, a *ca.Authority, st State) Issuer {
	t.Helper()
	id, err := KeyID(a.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	iss := Issuer{Record: Record{ID: id, State: st, Chain: a.Certificate().Raw}, Cert: a.Certificate()}
	if st.Trusted() {
		iss.Authority = a
	}
	return iss
}

func TestFind(t *testing.T) {
	a, b := newCA(t), newCA(t)
	recs := []Record{issuer(t, a, Active).Record, issuer(t, b, Staged).Record}
	serial := fmt.Sprintf("%X", a.Certificate().SerialNumber.Bytes())
	var colons []string
	for i := 0; i < len(serial); i += 2 {
		colons = append(colons, strings.ToLower(serial[i:i+2]))
	}
	for _, c := range []struct {
		ref  string
		want string // id, or the error kind
	}{
		{recs[0].ID, recs[0].ID},
		{strings.ToUpper(recs[1].ID), recs[1].ID},
		{recs[1].ID[:8], recs[1].ID},
		{serial, recs[0].ID},
		{strings.Join(colons, ":"), recs[0].ID},
		{"  " + strings.ToLower(serial) + "\n", recs[0].ID},
		{"00" + serial, recs[0].ID},
		{recs[1].ID[:4], "not-found"}, // too short a prefix
		{"", "invalid"},
		{"zz", "invalid"},
		{"deadbeefdeadbeef", "not-found"},
	} {
		r, err := Find(recs, c.ref)
		got := r.ID
		if err != nil {
			got = fault.KindOf(err).String()
		}
		if got != c.want {
			t.Errorf("Find(%q) = %q (%v), want %q", c.ref, got, err, c.want)
		}
	}
}

func TestSetReplace(t *testing.T) {
	one, two := newCA(t), newCA(t)
	s, err := NewSet(1, []Issuer{issuer(t, one, Active), issuer(t, two, Staged)})
	if err != nil {
		t.Fatal(err)
	}
	tlsCert := func() *x509.Certificate {
		c, err := s.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	if !tlsCert().Equal(one.Certificate()) || len(s.Trusted()) != 2 || s.Version() != 1 {
		t.Fatalf("version 1: TLS %s, %d trusted", tlsCert().Subject, len(s.Trusted()))
	}
	for _, bad := range []struct {
		name    string
		issuers []Issuer
	}{
		{"no-active", []Issuer{issuer(t, one, Retiring), issuer(t, two, Staged)}},
		{"two-active", []Issuer{issuer(t, one, Active), issuer(t, two, Active)}},
		{"no-key", []Issuer{issuer(t, one, Active), {Record: Record{ID: "x", State: Staged}, Cert: two.Certificate()}}},
	} {
		if err := s.Replace(9, bad.issuers); err == nil {
			t.Errorf("%s: Replace accepted", bad.name)
		}
	}
	if s.Version() != 1 || !tlsCert().Equal(one.Certificate()) {
		t.Fatal("a refused Replace changed the set")
	}
	if err := s.Replace(2, []Issuer{issuer(t, one, Retiring), issuer(t, two, Active)}); err != nil {
		t.Fatal(err)
	}
	if !tlsCert().Equal(two.Certificate()) || !s.Active().Certificate().Equal(two.Certificate()) {
		t.Fatal("after the activation TLS does not present certificate 2")
	}
	priv := newCA(t) // any key: only the public key is signed
	iss, err := s.Issue(context.Background(), ca.IssueRequest{DeviceName: "SEP001122334455", PublicKey: priv.Signer().Public()})
	if err != nil {
		t.Fatal(err)
	}
	if iss.Certificate.CheckSignatureFrom(two.Certificate()) != nil {
		t.Error("the LSC is not signed by the active CA")
	}
	if _, err := iss.Certificate.Verify(x509.VerifyOptions{Roots: s.LSCRoots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the LSC does not verify against the set's roots: %v", err)
	}
	old, err := one.Issue(context.Background(), ca.IssueRequest{DeviceName: "SEP001122334455", PublicKey: priv.Signer().Public()})
	if err != nil {
		t.Fatal(err)
	}
	verifies := func() bool {
		_, err := old.Certificate.Verify(x509.VerifyOptions{Roots: s.LSCRoots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err == nil
	}
	if !verifies() {
		t.Error("an LSC of the retiring CA is not trusted")
	}
	if err := s.Replace(3, []Issuer{issuer(t, one, Retired), issuer(t, two, Active)}); err != nil {
		t.Fatal(err)
	}
	if verifies() || len(s.Trusted()) != 1 {
		t.Error("an LSC of the retired CA is still trusted")
	}
}
