package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
)

// issuingPair makes a CAPF CA that allows one CA below it and an issuing
// CA signed by it, both valid at testNow.
func issuingPair(t *testing.T) (capf, issuing *x509.Certificate) {
	t.Helper()
	mk := func(cn string, pathLen int, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	capf, key := mk("CAPF with issuer", 1, nil, nil)
	issuing, _ = mk("Issuing", 0, capf, key)
	return capf, issuing
}

// TestCASetShowsIssuingCA: GET /ca-set names no issuing CA while there is
// none, and then the one in place: its id, serial, validity, the CAPF
// certificate above it, the phones holding its LSCs, and that it signs.
func TestCASetShowsIssuingCA(t *testing.T) {
	e, _ := caSetEnv(t)
	v := decode[CASetView](t, e.do(asViewer, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK)
	if v.Issuing != nil {
		t.Fatalf("issuing = %+v before there is one, want null", v.Issuing)
	}
	capf, issuing := issuingPair(t)
	svc := caset.NewService(e.store, func() time.Time { return testNow })
	if _, err := svc.Stage(t.Context(), []*x509.Certificate{capf}, "ca-x", nil, device.CLIActor("test")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutIssuing(t.Context(), issuing, capf, "issuing-x", nil, device.CLIActor("test"), "test"); err != nil {
		t.Fatal(err)
	}
	iid, _ := caset.KeyID(issuing)
	pid, _ := caset.KeyID(capf)
	giveCALSC(t, e, "SEP00000000B001", "B001", iid, issuing.Subject.String())
	v = decode[CASetView](t, e.do(asViewer, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK)
	is := v.Issuing
	if is == nil || is.ID != iid || is.ParentID != pid || is.Phones != 1 || !is.Signing || is.Subject != issuing.Subject.String() ||
		!is.NotAfter.Equal(issuing.NotAfter) || is.Serial == "" {
		t.Fatalf("issuing = %+v, want %s below %s, 1 phone, signing", is, iid, pid)
	}
	for _, r := range v.CAs {
		if r.ID == iid {
			t.Errorf("the issuing CA is listed among the CAPF certificates: %+v", v.CAs)
		}
	}
}
