package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"
)

// testNow is the clock of the tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	keyOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns the i-th of three RSA 2048 keys shared by the tests
// (key generation is slow).
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

// selfSigned returns a self-signed certificate for key with the given
// subject and serial.
func selfSigned(t testing.TB, key crypto.Signer, subject pkix.Name, serial int64) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      subject,
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixture is a signer and a typical list: two SAST, TFTP, CAPF, CCM.
type fixture struct {
	primary, backup Signing
	capf, ccm       *x509.Certificate
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	p, b := rsaKey(t, 0), rsaKey(t, 1)
	return fixture{
		primary: Signing{Cert: selfSigned(t, p, pkix.Name{CommonName: "SAST primary", Organization: []string{"CAPF"}}, 11), Key: p},
		backup:  Signing{Cert: selfSigned(t, b, pkix.Name{CommonName: "SAST backup", Organization: []string{"CAPF"}}, 12), Key: b},
		capf:    selfSigned(t, rsaKey(t, 2), pkix.Name{CommonName: "CAPF-1234", Organization: []string{"CAPF"}, OrganizationalUnit: []string{"VOICE"}}, 13),
		ccm:     selfSigned(t, ecKey(t), pkix.Name{CommonName: "asterisk.example.net"}, 14),
	}
}

func (fx fixture) options(hash HashAlgorithm) BuildOptions {
	return BuildOptions{
		FileName: "ITLFile.tlv",
		Hash:     hash,
		Signer:   fx.primary,
		Now:      testNow,
		Entries: []Entry{
			{RoleSAST, fx.primary.Cert},
			{RoleSAST, fx.backup.Cert},
			{RoleTFTP, fx.primary.Cert},
			{RoleCAPF, fx.capf},
			{RoleCCM, fx.ccm},
		},
	}
}

// build builds the fixture's file.
func (fx fixture) build(t testing.TB, hash HashAlgorithm) []byte {
	t.Helper()
	b, err := Build(fx.options(hash))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readPEM reads a testdata file's first PEM block.
func readPEM(t testing.TB, path string) *pem.Block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return blk
}
