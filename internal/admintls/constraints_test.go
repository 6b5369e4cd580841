package admintls_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/admintls"
)

// verify checks leaf against ca as a browser would, for each of its names.
func verify(t *testing.T, ca, leaf *x509.Certificate) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	names := append([]string{}, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: n, CurrentTime: t0}); err != nil {
			t.Errorf("Verify(%s): %v", n, err)
		}
	}
}

// forge signs a server certificate for dns and ips with the CA's key of
// dir, as a thief of ca-key.pem would, and writes it to dir/forged.pem.
func forge(t *testing.T, dir string, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, admintls.CAFile), filepath.Join(dir, admintls.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cn := "forged"
	if len(dns) > 0 {
		cn = dns[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pair.Leaf, &key.PublicKey, pair.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "forged.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCAIsNameConstrained: the admin CA's certificate carries critical
// name constraints for the server certificate's names; the server
// certificate verifies (Go and openssl), and a certificate for any other
// name signed with the CA's key does not.
func TestCAIsNameConstrained(t *testing.T) {
	dir := t.TempDir()
	res := create(t, dir, []string{"capf.example.net", "192.0.2.7"}, t0)
	ca := res.CA
	if !ca.PermittedDNSDomainsCritical {
		t.Error("the name constraints are not critical")
	}
	if !sameSet(ca.PermittedDNSDomains, res.Certificate.Leaf.DNSNames) {
		t.Errorf("permitted DNS %v, want the server certificate's %v", ca.PermittedDNSDomains, res.Certificate.Leaf.DNSNames)
	}
	var ranges []string
	for _, n := range ca.PermittedIPRanges {
		ranges = append(ranges, n.String())
	}
	if want := []string{"127.0.0.1/32", "192.0.2.7/32", "::1/128"}; !sameSet(ranges, want) {
		t.Errorf("permitted IP ranges %v, want %v", ranges, want)
	}
	verify(t, ca, res.Certificate.Leaf)

	openssl, _ := exec.LookPath("openssl")
	opensslVerify := func(file string) (string, error) {
		out, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(dir, admintls.CAFile), "-purpose", "sslserver", file).CombinedOutput()
		return string(out), err
	}
	if openssl != "" {
		if out, err := opensslVerify(filepath.Join(dir, admintls.ServerFile)); err != nil || !strings.Contains(out, ": OK") {
			t.Fatalf("openssl verify of the server certificate: %v\n%s", err, out)
		}
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	forged := []struct {
		name string
		dns  []string
		ips  []net.IP
	}{
		{"other-domain", []string{"bank.example"}, nil},
		{"suffix-not-subdomain", []string{"evilcapf.example.net"}, nil},
		{"other-address", nil, []net.IP{net.ParseIP("198.51.100.1")}},
		{"good-and-bad-name", []string{"capf.example.net", "bank.example"}, nil},
	}
	for _, f := range forged {
		t.Run(f.name, func(t *testing.T) {
			leaf := forge(t, dir, f.dns, f.ips)
			name := "198.51.100.1"
			if len(f.dns) > 0 {
				name = f.dns[len(f.dns)-1]
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: t0})
			var inv x509.CertificateInvalidError
			if !asInvalid(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
				t.Errorf("x509 Verify of a forged certificate for %s: %v, want CANotAuthorizedForThisName", name, err)
			}
			if openssl == "" {
				return
			}
			if out, err := opensslVerify(filepath.Join(dir, "forged.pem")); err == nil || !strings.Contains(out, "subtree violation") {
				t.Errorf("openssl verify of a forged certificate: %v, want a name constraint violation\n%s", err, out)
			}
		})
	}
	// A subdomain of a permitted name is within the constraints (RFC
	// 5280): the certificate the CA may issue after a rename below it.
	sub := forge(t, dir, []string{"www.capf.example.net"}, nil)
	if _, err := sub.Verify(x509.VerifyOptions{Roots: roots, DNSName: "www.capf.example.net", CurrentTime: t0}); err != nil {
		t.Errorf("subdomain: %v", err)
	}
}

func asInvalid(err error, inv *x509.CertificateInvalidError) bool {
	e, ok := err.(x509.CertificateInvalidError)
	if ok {
		*inv = e
	}
	return ok
}

// TestUnconstrainedCAReplaced: an admin CA made by an older version (no
// name constraints) is replaced at the next start, its key overwritten,
// and the result says why.
func TestUnconstrainedCAReplaced(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CAPF admin CA old"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	oldKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	if err := os.WriteFile(filepath.Join(dir, admintls.CAKeyFile), oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, admintls.CAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	res := create(t, dir, []string{"capf.example.net"}, t0)
	if !res.CACreated || !strings.Contains(res.CAReplaced, "no name constraints") || !res.CA.PermittedDNSDomainsCritical {
		t.Fatalf("created %v, replaced %q, constrained %v; want a new, constrained CA", res.CACreated, res.CAReplaced, res.CA.PermittedDNSDomainsCritical)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, admintls.CAKeyFile)); string(b) == string(oldKey) {
		t.Error("the old, unconstrained CA key is still there")
	}
	verify(t, res.CA, res.Certificate.Leaf)
	if again := create(t, dir, []string{"capf.example.net"}, t0); again.CACreated || again.CAReplaced != "" || again.Issued {
		t.Errorf("next start: created %v, replaced %q, issued %v; want the new CA and certificate kept", again.CACreated, again.CAReplaced, again.Issued)
	}
}
