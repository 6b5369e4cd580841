package webui_test

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

// TestCASetPageShowsIssuingCA: Security > CAPF Certificate says there is
// no issuing CA, then shows the one in place — id, serial, the CAPF
// certificate above it, its phones, that it signs — to a viewer too.
func TestCASetPageShowsIssuingCA(t *testing.T) {
	e, adm, _ := caSetEnv(t)
	w := e.get("/security/certificate", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="issuing-none"`)
	wantNoBody(t, w, `id="issuing-ca"`)

	capf, issuing := issuingPair(t)
	if _, err := adm.Service.Stage(t.Context(), []*x509.Certificate{capf}, "ca-x", nil, device.CLIActor("test")); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Service.PutIssuing(t.Context(), issuing, capf, "issuing-x", nil, device.CLIActor("test"), "test"); err != nil {
		t.Fatal(err)
	}
	iid, pid := mustID(t, issuing), mustID(t, capf)
	giveCALSC(t, e, "SEP00000000B001", "B001", iid, issuing.Subject.String())
	w = e.get("/security/certificate", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="issuing-ca"`, `<dd id="issuing-id" class="mono">`+iid+`</dd>`, `<dd id="issuing-parent" class="mono">`+pid+`</dd>`,
		`<dd id="issuing-phones">1</dd>`, `<dd id="issuing-signing">yes</dd>`, "CN=Issuing")
	wantNoBody(t, w, `id="issuing-none"`, `id="ca-`+iid+`"`)
}
