package caset

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/fault"
)

// AuditIssuer is the audit action of an issuing CA put in place (ADR
// 0017, "A separate issuing CA"); target is the issuing CA's key id.
const AuditIssuer = "ca.issuer"

// SetIssuing makes iss (nil: none) the issuing CA: while a CA of the set
// that is not retired signed its certificate, it signs new LSCs (TLS
// still presents the active CA) and is an LSC trust anchor, so the LSCs
// it issued authenticate. Once the CA that signed it is retired, the
// active CA signs again. It returns Signer's certificate then in force.
func (s *Set) SetIssuing(iss *ca.Authority) *x509.Certificate {
	s.issuing.Store(iss)
	for {
		old := s.cur.Load()
		snap := *old
		snap.roots = x509.NewCertPool()
		for _, c := range snap.trusted {
			snap.roots.AddCert(c)
		}
		for _, c := range s.extra {
			snap.roots.AddCert(c)
		}
		snap.signer = snap.active
		if iss != nil && issuedByTrusted(iss.Certificate(), snap.trusted) {
			snap.signer = iss
			snap.roots.AddCert(iss.Certificate())
		}
		if s.cur.CompareAndSwap(old, &snap) {
			return snap.signer.Certificate()
		}
	}
}

// Signer returns the CA that signs new LSCs now: the issuing CA in force,
// else the active CA.
func (s *Set) Signer() *ca.Authority { return s.cur.Load().signer }

// issuedByTrusted reports whether one of trusted signed c.
func issuedByTrusted(c *x509.Certificate, trusted []*x509.Certificate) bool {
	for _, p := range trusted {
		if bytes.Equal(c.RawIssuer, p.RawSubject) && c.CheckSignatureFrom(p) == nil {
			return true
		}
	}
	return false
}

// CheckIssuing checks an issuing CA certificate before it is put in
// place: it is for the key pub (keyName names that key), a CA certificate
// allowed to sign certificates, valid at now, with a key phones accept
// and a subject key identifier, not a CAPF certificate of the set, and
// it verifies (path length, key usage and validity included) under one of
// capfs, the CAPF certificates of the set that are not retired. It
// returns that CAPF certificate. Every refusal is Invalid and names its
// reason.
func CheckIssuing(cert *x509.Certificate, pub crypto.PublicKey, keyName string, capfs []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if _, err := CheckImport(cert, nil, pub, keyName, now); err != nil {
		return nil, err
	}
	for _, c := range capfs {
		if c.Equal(cert) {
			return nil, fault.Invalidf("the certificate %s is a CAPF certificate of the set, not an issuing CA below one", cert.Subject)
		}
	}
	var why error
	for _, c := range capfs {
		if !bytes.Equal(cert.RawIssuer, c.RawSubject) || cert.CheckSignatureFrom(c) != nil {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			why = err
			if err := ca.CanSignCA(c); err != nil {
				why = err
			}
			continue
		}
		return c, nil
	}
	if why != nil {
		return nil, fault.Invalidf("the issuing CA %s does not verify under the CAPF certificate that signed it: %v", cert.Subject, why)
	}
	return nil, fault.Invalidf("the issuing CA %s (issued by %s) was not signed by a CAPF certificate of the set that is not retired (capf ca status lists them)", cert.Subject, cert.Issuer)
}

// WithIssuing tells s of the issuing CA in place (nil: none), so that
// retiring the CAPF certificate that signed it counts the phones holding
// its LSCs too: they authenticate through that CAPF certificate. It
// returns s.
func (s *Service) WithIssuing(c *x509.Certificate) *Service {
	s.issuing = c
	return s
}

// issuingHolders counts the devices holding a valid LSC of the issuing CA
// when parent signed it; 0 otherwise.
func (s *Service) issuingHolders(ctx context.Context, parent *x509.Certificate, now time.Time) (int, error) {
	if s.issuing == nil || !issuedByTrusted(s.issuing, []*x509.Certificate{parent}) {
		return 0, nil
	}
	id, err := KeyID(s.issuing)
	if err != nil {
		return 0, err
	}
	n, err := s.st.CountLSCHolders(ctx, id, s.issuing.Subject.String(), now)
	if err != nil {
		return 0, fmt.Errorf("count the LSCs of the issuing CA %s: %w", id, err)
	}
	return n, nil
}
