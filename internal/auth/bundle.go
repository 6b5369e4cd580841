package auth

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/capf-server/capf/internal/fault"
)

// LoadBundle reads a CA bundle (one or more PEM certificates, e.g. the
// manufacturer CAs) from path and returns a pool trusting every certificate
// in it as a root, and how many there are.
func LoadBundle(path string) (*x509.CertPool, int, error) {
	certs, err := LoadBundleCertificates(path)
	if err != nil {
		return nil, 0, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, len(certs), nil
}

// LoadBundleCertificates reads the certificates of a CA bundle: a PEM file
// of one or more CERTIFICATE blocks (a file without any PEM block is read as
// concatenated DER certificates). Errors name the path.
func LoadBundleCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, fault.Invalidf("CA bundle %s: no certificates found", path)
		}
		certs, err := x509.ParseCertificates(data)
		if err != nil {
			return nil, fault.Invalidf("CA bundle %s: neither PEM nor DER certificates: %v", path, err)
		}
		return certs, nil
	}
	var certs []*x509.Certificate
	begin := []byte("-----BEGIN")
	for rest, n := data, 1; ; n++ {
		b, after := pem.Decode(rest)
		// pem.Decode silently skips a block it cannot decode and returns
		// the next one; a skipped BEGIN line gives it away.
		skipped := b == nil && bytes.Contains(rest, begin) ||
			b != nil && bytes.Count(rest[:len(rest)-len(after)], begin) > 1
		if skipped {
			return nil, fault.Invalidf("CA bundle %s: bad PEM block %d", path, n)
		}
		if b == nil {
			break
		}
		rest = after
		if b.Type != "CERTIFICATE" {
			return nil, fault.Invalidf("CA bundle %s: PEM block %d is %q, not CERTIFICATE", path, n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fault.Invalidf("CA bundle %s: certificate %d: %v", path, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fault.Invalidf("CA bundle %s: no certificates found", path)
	}
	return certs, nil
}
