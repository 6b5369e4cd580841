package revocation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestWithResponseExtensionKeys: the re-signed response verifies under
// each key type a CAPF CA may have (x/crypto/ocsp picks the hash by key:
// SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521).
func TestWithResponseExtensionKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{"rsa-2048": rsaKey}
	for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	nonce, _ := asn1.Marshal([]byte("0123456789abcdef"))
	ext := pkix.Extension{Id: oidOCSPNonce, Value: nonce}
	now := time.Now().UTC().Truncate(time.Second)
	for name, key := range keys {
		t.Run("ok/"+name, func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CAPF-" + name},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
				KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
			if err != nil {
				t.Fatal(err)
			}
			ca, _ := x509.ParseCertificate(der)
			resp, err := ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(7),
				ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, key)
			if err != nil {
				t.Fatal(err)
			}
			out, err := withResponseExtension(resp, ext, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ocsp.ParseResponse(out, ca)
			if err != nil {
				t.Fatalf("re-signed response does not verify: %v", err)
			}
			if got.Status != ocsp.Good || got.SerialNumber.Int64() != 7 {
				t.Errorf("response = status %d serial %v", got.Status, got.SerialNumber)
			}
			if _, err := withResponseExtension(out, ext, key); err == nil {
				t.Error("a second responseExtensions was added")
			}
		})
	}
}
