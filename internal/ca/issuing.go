package ca

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/certserial"
	"github.com/capf-server/capf/internal/fault"
)

// IssuingValidity is the lifetime of an issuing CA NewIssuing makes when
// none is given: two years, cut short at the CAPF certificate's expiry.
const IssuingValidity = 2 * 365 * 24 * time.Hour

// NewIssuing makes a new key (alg) and an issuing CA certificate for it
// signed by a (the CAPF certificate): CA:TRUE with path length 0,
// keyCertSign, cRLSign and digitalSignature, the LSC extended key usages,
// its subject the CAPF's with CN "ISSUING-" and 8 random hex digits, valid
// for validity (IssuingValidity when 0) and never beyond a's certificate.
// It writes nothing. It refuses when a's certificate may not sign a CA
// (path length constraint 0, as the CAPF certificates this server made
// before path length 1 have): give the CAPF a certificate that allows one
// (capf ca regenerate makes one; ADR 0017).
func (a *Authority) NewIssuing(alg KeyAlgorithm, validity time.Duration) (*Authority, error) {
	if err := CanSignCA(a.cert); err != nil {
		return nil, err
	}
	key, err := alg.generate(a.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: generate the issuing CA key: %w", err)
	}
	return a.NewIssuingFor(key, validity)
}

// NewIssuingFor is NewIssuing for a key that exists already, such as one
// kept in a PKCS #11 token: the certificate is for key's public half, and
// the authority returned signs with key.
func (a *Authority) NewIssuingFor(key crypto.Signer, validity time.Duration) (*Authority, error) {
	if err := CanSignCA(a.cert); err != nil {
		return nil, err
	}
	if validity <= 0 {
		validity = IssuingValidity
	}
	serial, err := certserial.New(a.rand)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	subject := a.cert.Subject
	subject.Names, subject.CommonName = nil, ""
	if subject, err = caSubject(subject, a.rand); err != nil {
		return nil, err
	}
	subject.CommonName = "ISSUING-" + subject.CommonName[len("CAPF-"):]
	now := a.now()
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           lscExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
		AuthorityKeyId:        a.cert.SubjectKeyId,
		SignatureAlgorithm:    a.sigAlg,
	}
	der, err := x509.CreateCertificate(a.rand, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign the issuing CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse the new issuing CA certificate: %w", err)
	}
	return a.derived(cert, key)
}

// derived returns an authority over cert and key with a's clock, source
// of randomness and LSC validity.
func (a *Authority) derived(cert *x509.Certificate, key crypto.Signer) (*Authority, error) {
	return newAuthority(cert, key, Options{Now: a.now, Rand: a.rand, LSCValidity: a.LSCValidity()})
}

// CanSignCA refuses a CA certificate whose basic constraints forbid a CA
// below it (path length constraint 0).
func CanSignCA(c *x509.Certificate) error {
	if !c.IsCA || !c.BasicConstraintsValid {
		return fault.Invalidf("the certificate %s is not a CA certificate", c.Subject)
	}
	if c.MaxPathLenZero {
		return fault.Invalidf("the CAPF certificate %s has path length constraint 0: it may not sign an issuing CA (verifiers would refuse the LSCs below it); make a CAPF certificate that allows one (capf ca regenerate makes pathlen 1; or import one with pathlen 1 or none), activate it, then create the issuing CA", c.Subject)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fault.Invalidf("the CAPF certificate %s lacks keyCertSign", c.Subject)
	}
	return nil
}
