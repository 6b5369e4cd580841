package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

const devName = "SEP001122334455"

// cred is a certificate with its private key.
type cred struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (c cred) der() []byte { return c.cert.Raw }

// pki is the test PKI: a fake Cisco manufacturing CA (RSA and EC) with
// MICs, a CAPF with LSCs, a SUDI CA with a SUDI, and an unrelated CA.
type pki struct {
	mfgRSA, mfgEC, capf, capfEC, sudiCA, other cred

	lscRSA, lscEC, lscWrongCN, lscOtherCA, lscExpired        cred
	micRSA, micEC, micSAN, micExpired, micUntrusted, micSHA1 cred
	sudi, sudiUntrusted                                      cred
}

var (
	pkiOnce sync.Once
	thePKI  *pki
	pkiErr  error
)

// testPKI builds the PKI once per test binary.
func testPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() { thePKI, pkiErr = buildPKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return thePKI
}

func rsaKey() crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func ecKey(c elliptic.Curve) crypto.Signer {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

var serial int64

// issue signs tmpl for key by parent (self-signed when parent is nil).
func issue(tmpl *x509.Certificate, key crypto.Signer, parent *cred) (cred, error) {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = testNow.Add(-24 * time.Hour)
		tmpl.NotAfter = testNow.Add(365 * 24 * time.Hour)
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return cred{}, err
	}
	c, err := x509.ParseCertificate(der)
	return cred{c, key}, err
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              testNow.Add(10 * 365 * 24 * time.Hour),
	}
}

func leafTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test"}},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func buildPKI() (*pki, error) {
	p := &pki{}
	var err error
	must := func(c cred, e error) cred {
		if e != nil && err == nil {
			err = e
		}
		return c
	}
	p.mfgRSA = must(issue(caTemplate("Cisco Manufacturing CA"), rsaKey(), nil))
	p.mfgEC = must(issue(caTemplate("Cisco Manufacturing CA III"), ecKey(elliptic.P384()), nil))
	p.capf = must(issue(caTemplate("CAPF-0a1b2c3d"), rsaKey(), nil))
	p.capfEC = must(issue(caTemplate("CAPF-ec"), ecKey(elliptic.P256()), nil))
	p.sudiCA = must(issue(caTemplate("ACT2 SUDI CA"), rsaKey(), nil))
	p.other = must(issue(caTemplate("Some Other CA"), rsaKey(), nil))
	phoneRSA, phoneEC := rsaKey(), ecKey(elliptic.P256())

	p.lscRSA = must(issue(leafTemplate(devName), phoneRSA, &p.capf))
	p.lscEC = must(issue(leafTemplate(devName), phoneEC, &p.capfEC))
	p.lscWrongCN = must(issue(leafTemplate("SEP665544332211"), phoneRSA, &p.capf))
	p.lscOtherCA = must(issue(leafTemplate(devName), phoneRSA, &p.other))
	expired := leafTemplate(devName)
	expired.NotBefore, expired.NotAfter = testNow.Add(-2*365*24*time.Hour), testNow.Add(-time.Hour)
	p.lscExpired = must(issue(expired, phoneRSA, &p.capf))

	p.micRSA = must(issue(leafTemplate("CP-7975G-"+devName), phoneRSA, &p.mfgRSA))
	p.micEC = must(issue(leafTemplate("CP-8865-"+devName), phoneEC, &p.mfgEC))
	san := leafTemplate("Cisco IP Phone")
	san.URIs = []*url.URL{{Opaque: "sep001122334455"}}
	p.micSAN = must(issue(san, phoneRSA, &p.mfgRSA))
	expired = leafTemplate("CP-7941G-" + devName)
	expired.NotBefore, expired.NotAfter = time.Date(2005, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2015, 6, 1, 0, 0, 0, 0, time.UTC)
	p.micExpired = must(issue(expired, phoneRSA, &p.mfgRSA))
	p.micUntrusted = must(issue(leafTemplate("CP-7975G-"+devName), phoneRSA, &p.other))
	sha1MIC := leafTemplate("CP-7961G-" + devName)
	sha1MIC.SignatureAlgorithm = x509.SHA1WithRSA
	p.micSHA1 = must(issue(sha1MIC, phoneRSA, &p.mfgRSA))

	p.sudi = must(issue(leafTemplate("PID:CP-8865 SN:FCH12345678"), ecKey(elliptic.P256()), &p.sudiCA))
	p.sudiUntrusted = must(issue(leafTemplate("PID:CP-8865 SN:FCH12345678"), rsaKey(), &p.other))
	return p, err
}

func pool(certs ...cred) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.cert)
	}
	return p
}

// options returns verifier options trusting the test PKI.
func (p *pki) options() Options {
	return Options{
		LSCRoots:  pool(p.capf, p.capfEC),
		MICRoots:  pool(p.mfgRSA, p.mfgEC),
		SUDIRoots: pool(p.sudiCA),
		Now:       func() time.Time { return testNow },
	}
}

// signDigest signs as a phone does: raw PKCS#1 v1.5 for RSA, ASN.1 ECDSA.
func signDigest(t testing.TB, key crypto.Signer, digest []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.Hash(0), digest)
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest)
	default:
		t.Fatalf("signDigest: %T is neither RSA nor ECDSA", key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func digest(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(b)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(b)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(b)
		return d[:]
	}
	panic("hash")
}

// present builds what a phone named devName sends to authenticate with c:
// both signatures over the device name and the certificate.
func present(t testing.TB, c cred, kind CertKind) Presented {
	t.Helper()
	return presentAs(t, c, kind, devName)
}

// presentAs is present for a phone of another name.
func presentAs(t testing.TB, c cred, kind CertKind, name string) Presented {
	t.Helper()
	payload := wire.SignedPayload(name, c.der())
	return Presented{
		DeviceName: name,
		SessionID:  0x01020304,
		CertType:   kind,
		CertDER:    c.der(),
		SHA1Sig:    signDigest(t, c.key, digest(crypto.SHA1, payload)),
		SHA2Hash:   crypto.SHA512,
		SHA2Sig:    signDigest(t, c.key, digest(crypto.SHA512, payload)),
	}
}

// withSUDI adds SUDI data signed by s for session id p.SessionID.
func withSUDI(t testing.TB, p Presented, s cred) Presented {
	t.Helper()
	payload := wire.SUDISignedPayload(p.SessionID, s.der())
	p.SUDI = &SUDI{
		CertDER:   s.der(),
		SHA1Sig:   signDigest(t, s.key, digest(crypto.SHA1, payload)),
		SHA512Sig: signDigest(t, s.key, digest(crypto.SHA512, payload)),
	}
	return p
}
