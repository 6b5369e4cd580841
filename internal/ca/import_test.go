package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

// foreignCA makes a CA certificate as `openssl req -x509` does (CA:TRUE,
// no key usage) and returns it with its key as one PEM file.
func foreignCA(t *testing.T, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "capfd"},
		NotBefore: testNow.AddDate(-1, 0, 0), NotAfter: testNow.AddDate(5, 0, 0), IsCA: isCA, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	// The key first, the certificate after: capfd's files come either way.
	data := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	return c, key, data
}

func TestParsePEMPair(t *testing.T) {
	c, _, data := foreignCA(t, true)
	got, key, err := ParsePEMPair(data)
	if err != nil || !got.Equal(c) || key == nil {
		t.Fatalf("ParsePEMPair = %v, %v, %v", got, key, err)
	}
	_, _, leafData := foreignCA(t, false)
	_, otherKey, _ := foreignCA(t, true)
	otherKeyDER, _ := x509.MarshalECPrivateKey(otherKey)
	mismatched := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: otherKeyDER})...)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"fail/no-key", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), "no PEM private key"},
		{"fail/no-certificate", []byte("hello"), "no PEM certificate"},
		{"fail/other-key", mismatched, "does not match"},
		{"fail/not-a-ca", leafData, "not a CA certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParsePEMPair(tc.data)
			if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePEMPair = %v, want Invalid saying %q", err, tc.want)
			}
		})
	}
}

func TestInstallThenLoadWithIssuers(t *testing.T) {
	c, key, _ := foreignCA(t, true)
	iss, _, _ := foreignCA(t, true)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := Install(dir, c, key); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	if err := WriteLSCIssuers(dir, []*x509.Certificate{iss}); err != nil {
		t.Fatal(err)
	}
	a, err := Load(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Certificate().Equal(c) {
		t.Error("Load gave another certificate than the one installed")
	}
	if got := a.LSCIssuers(); len(got) != 1 || !got[0].Equal(iss) {
		t.Errorf("LSCIssuers = %v, want the issuer", got)
	}
	// The issuer is a trust anchor for LSC authentication.
	if _, err := iss.Verify(x509.VerifyOptions{Roots: a.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the issuer does not verify against Roots: %v", err)
	}
	// Install never replaces.
	other, otherKey, _ := foreignCA(t, true)
	if err := Install(dir, other, otherKey); fault.KindOf(err) != fault.Conflict {
		t.Fatalf("Install over an existing CA = %v, want Conflict", err)
	}
	if a, err := Load(Options{Dir: dir}); err != nil || !a.Certificate().Equal(c) {
		t.Fatalf("after the refused Install: %v, %v", a, err)
	}
	if err := Install(t.TempDir(), other, key); fault.KindOf(err) != fault.Invalid {
		t.Errorf("Install of a key that does not match = %v, want Invalid", err)
	}
}
