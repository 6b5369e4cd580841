package caset

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
)

// rootAllowingCA returns a CAPF authority whose certificate allows one CA
// below it (pathlen 1), as an imported one may.
func rootAllowingCA(t *testing.T) *ca.Authority {
	t.Helper()
	return rootWithPathLen(t, 1)
}

// rootWithPathLen returns a CAPF authority whose certificate has path
// length constraint pathLen (0: as this server made them before 1).
func rootWithPathLen(t *testing.T, pathLen int) *ca.Authority {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CAPF-root", Organization: []string{"Test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.New(c, k, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSetIssuing: the issuing CA signs and is an LSC anchor while the CAPF
// certificate that signed it is trusted; once that one is retired the
// active CA signs again and the issuing CA's LSCs no longer verify.
func TestSetIssuing(t *testing.T) {
	root, next := rootAllowingCA(t), newCA(t)
	if _, err := rootWithPathLen(t, 0).NewIssuing(ca.ECP256, 0); err == nil || !strings.Contains(err.Error(), "path length constraint 0") {
		t.Fatalf("an issuing CA under a pathlen-0 CAPF certificate: %v", err)
	}
	// The CAPF certificates this server makes allow one (pathlen 1).
	if _, err := newCA(t).NewIssuing(ca.ECP256, 0); err != nil {
		t.Fatalf("an issuing CA under a CAPF certificate this server made: %v", err)
	}
	iss, err := root.NewIssuing(ca.ECP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !iss.Certificate().NotAfter.Equal(root.Certificate().NotAfter) {
		t.Errorf("the issuing CA ends %s, want cut at its CAPF certificate's %s", iss.Certificate().NotAfter, root.Certificate().NotAfter)
	}
	set, err := NewSet(1, []Issuer{issuer(t, root, Active)})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.SetIssuing(iss); !got.Equal(iss.Certificate()) {
		t.Fatalf("signer %s, want the issuing CA", got.Subject)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lsc, err := set.Issue(t.Context(), ca.IssueRequest{DeviceName: "SEP001122334455", PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if lsc.Certificate.CheckSignatureFrom(iss.Certificate()) != nil {
		t.Fatalf("the LSC is issued by %s, want the issuing CA", lsc.Certificate.Issuer)
	}
	verify := func() error {
		_, err := lsc.Certificate.Verify(x509.VerifyOptions{Roots: set.LSCRoots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	if err := verify(); err != nil {
		t.Fatalf("the issuing CA's LSC does not verify against the set: %v", err)
	}
	if tc, _ := set.GetCertificate(nil); tc.Leaf != nil && !tc.Leaf.Equal(root.Certificate()) || tc.Leaf == nil && string(tc.Certificate[0]) != string(root.Certificate().Raw) {
		t.Errorf("TLS does not present the CAPF certificate")
	}

	// Rollover: root retiring, still trusted: the issuing CA still signs.
	if err := set.Replace(2, []Issuer{issuer(t, root, Retiring), issuer(t, next, Active)}); err != nil {
		t.Fatal(err)
	}
	if set.Signer() != iss || verify() != nil {
		t.Errorf("with its CAPF certificate retiring, the issuing CA no longer signs or verifies")
	}
	// Retired: the active CA signs, the issuing CA's LSCs are refused.
	if err := set.Replace(3, []Issuer{issuer(t, root, Retired), issuer(t, next, Active)}); err != nil {
		t.Fatal(err)
	}
	if set.Signer() != next {
		t.Errorf("with its CAPF certificate retired the issuing CA still signs")
	}
	if verify() == nil {
		t.Errorf("with its CAPF certificate retired the issuing CA's LSC still verifies")
	}
}

// TestCheckIssuing: what may not be an issuing CA is refused with its
// reason.
func TestCheckIssuing(t *testing.T) {
	root, plain := rootAllowingCA(t), newCA(t)
	good, err := root.NewIssuing(ca.ECP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	capfs := []*x509.Certificate{root.Certificate(), plain.Certificate()}
	now := time.Now()
	if p, err := CheckIssuing(good.Certificate(), good.Signer().Public(), "k", capfs, now); err != nil || !p.Equal(root.Certificate()) {
		t.Fatalf("a good issuing CA: %v (parent %v)", err, p)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name  string
		cert  *x509.Certificate
		pub   crypto.PublicKey
		capfs []*x509.Certificate
		at    time.Time
		want  string
	}{
		{"another key", good.Certificate(), other.Public(), capfs, now, "is for key"},
		{"the CAPF itself", root.Certificate(), root.Signer().Public(), capfs, now, "is a CAPF certificate of the set"},
		{"parent not in the set", good.Certificate(), good.Signer().Public(), capfs[1:], now, "not signed by a CAPF certificate of the set"},
		{"expired", good.Certificate(), good.Signer().Public(), capfs, good.Certificate().NotAfter.Add(time.Minute), "not valid now"},
	} {
		if _, err := CheckIssuing(c.cert, c.pub, "k", c.capfs, c.at); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestSetUpdate: Update puts the set and the issuing CA in force in one
// step, as a node does when either changed in the database; an update the
// set refuses keeps both as they were; nil takes the issuing CA away.
func TestSetUpdate(t *testing.T) {
	root := rootAllowingCA(t)
	iss, err := root.NewIssuing(ca.ECP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewSet(1, []Issuer{issuer(t, root, Active)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		version    int64
		issuers    []Issuer
		issuing    *ca.Authority
		wantErr    bool
		wantSigner *ca.Authority
		wantVer    int64
	}{
		{"issuing CA arrives", 2, []Issuer{issuer(t, root, Active)}, iss, false, iss, 2},
		{"refused: no active CA", 3, []Issuer{issuer(t, root, Staged)}, nil, true, iss, 2},
		{"issuing CA goes", 4, []Issuer{issuer(t, root, Active)}, nil, false, root, 4},
	} {
		err := set.Update(tc.version, tc.issuers, tc.issuing, nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: Update = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if set.Signer() != tc.wantSigner || set.Version() != tc.wantVer {
			t.Errorf("%s: signer %s at version %d, want %s at %d", tc.name, set.Signer().Certificate().Subject, set.Version(), tc.wantSigner.Certificate().Subject, tc.wantVer)
		}
		if tc.wantErr && set.Issuing() != iss {
			t.Errorf("%s: a refused update changed the issuing CA", tc.name)
		}
	}
}

// TestNewIssuingFor: an issuing CA certificate for a key that exists
// already (as one in a token) is for that key, signed by the CAPF
// certificate, a CA with path length 0, and the authority signs with that
// key; a CAPF certificate that allows no CA below it refuses.
func TestNewIssuingFor(t *testing.T) {
	root := rootAllowingCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rootWithPathLen(t, 0).NewIssuingFor(key, 0); err == nil || !strings.Contains(err.Error(), "path length constraint 0") {
		t.Fatalf("under a pathlen-0 CAPF certificate: %v", err)
	}
	iss, err := root.NewIssuingFor(key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := iss.Certificate()
	if !key.PublicKey.Equal(c.PublicKey) || c.CheckSignatureFrom(root.Certificate()) != nil || !c.IsCA || !c.MaxPathLenZero {
		t.Fatalf("issuing CA %s: want a pathlen-0 CA for the key given, signed by the CAPF certificate", c.Subject)
	}
	if d := time.Until(c.NotAfter); d > time.Hour+time.Minute || d < 50*time.Minute {
		t.Errorf("valid for %s more, want about the hour asked", d)
	}
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lsc, err := iss.Issue(t.Context(), ca.IssueRequest{DeviceName: "SEP001122334455", PublicKey: lk.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if err := lsc.Certificate.CheckSignatureFrom(c); err != nil {
		t.Fatalf("the LSC does not verify under the issuing CA: %v", err)
	}
}
