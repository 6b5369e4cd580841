package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/fault"
)

// IssuersFile, inside Options.Dir, holds further certificates (PEM) that
// LSCs are accepted from besides the CAPF certificate: the issuing CA of
// another CAPF whose phones were carried over (capf migrate-from). They
// are trust anchors for LSC authentication only; new LSCs are signed by
// the CAPF key.
const IssuersFile = "lsc-issuers.pem"

// ParsePEMPair reads a CAPF certificate and its private key from one PEM
// file (the certificate first or last, the key PKCS #8, PKCS #1 or SEC 1),
// as other CAPF implementations keep them. The key must match the
// certificate, and the certificate must be a CA certificate (basic
// constraints CA:TRUE), since it signs LSCs. Errors are Invalid.
func ParsePEMPair(data []byte) (*x509.Certificate, crypto.Signer, error) {
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKeyPEM(data)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, nil, fault.Invalidf("the private key does not match the certificate %s", cert.Subject)
	}
	if !cert.IsCA {
		return nil, nil, fault.Invalidf("the certificate %s is not a CA certificate (no basic constraints CA:TRUE): it cannot sign LSCs", cert.Subject)
	}
	if _, err := signatureAlgorithm(key.Public()); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// ParseKeyPEM returns the first private key in data (PKCS #8, PKCS #1 or
// SEC 1; RSA or ECDSA), skipping blocks of other types. Its errors never
// quote data.
func ParseKeyPEM(data []byte) (crypto.Signer, error) { return parseKeyPEM(data) }

// ParseCertificatesPEM returns every certificate in data, in order;
// Invalid when there is none or one does not parse.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fault.Invalidf("certificate %d: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fault.Invalidf("no PEM certificate found")
	}
	return out, nil
}

// Install writes cert and key into dir as the CAPF certificate and key
// (capf.pem, and capf.key with mode 0600), creating dir with mode 0700. It
// never replaces anything: when either file exists it returns a Conflict
// error and writes nothing. The key must match the certificate.
func Install(dir string, cert *x509.Certificate, key crypto.Signer) error {
	if cert == nil || key == nil {
		return fault.Invalidf("the CAPF certificate and its key are both needed")
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return fault.Invalidf("the CAPF key does not match the certificate %s", cert.Subject)
	}
	keyOK, certOK, err := present(dir)
	if err != nil {
		return err
	}
	if keyOK || certOK {
		return fault.Conflictf("%s holds a CAPF key or certificate already: nothing was written", dir)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("ca: encode CAPF key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	// The key first, as create does: a crash between the writes leaves a
	// key without a certificate, which Load refuses.
	if err := atomicfile.Write(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, true); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, CertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644, true)
}

// WriteLSCIssuers writes certs to dir's IssuersFile, replacing it: the
// CAs whose LSCs phones may authenticate with besides the CAPF
// certificate's. Every one must be a CA certificate.
func WriteLSCIssuers(dir string, certs []*x509.Certificate) error {
	var b strings.Builder
	for _, c := range certs {
		if !c.IsCA {
			return fault.Invalidf("the LSC issuer %s is not a CA certificate", c.Subject)
		}
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, IssuersFile), []byte(b.String()), 0o644, false)
}

// readLSCIssuers returns the certificates of dir's IssuersFile; none when
// there is no such file.
func readLSCIssuers(dir string) ([]*x509.Certificate, error) {
	path := filepath.Join(dir, IssuersFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ca: read LSC issuers: %w", err)
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", path, err)
	}
	return certs, nil
}

// TrustLSCIssuers adds certs to the trust anchors of LSC authentication
// (see [Authority.Roots]): LSCs another CAPF's issuing CA signed. Call it
// before the authority is shared; new LSCs are still signed by the CAPF
// key.
func (a *Authority) TrustLSCIssuers(certs ...*x509.Certificate) {
	for _, c := range certs {
		a.roots.AddCert(c)
		a.issuers = append(a.issuers, c)
	}
}

// LSCIssuers returns the certificates trusted for LSC authentication
// besides the CAPF certificate.
func (a *Authority) LSCIssuers() []*x509.Certificate {
	return append([]*x509.Certificate(nil), a.issuers...)
}
