package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"time"

	"github.com/capf-server/capf/internal/certserial"
	"github.com/capf-server/capf/internal/fault"
)

// Limits on what Issue accepts.
const (
	MaxDeviceNameLen = 64   // the upper bound of an X.520 common name
	MinRSABits       = 512  // the smallest key old phones generate
	MaxRSABits       = 4096 // the largest key a phone can be asked for
)

// lscExtKeyUsage is the extended key usage of an LSC: serverAuth, clientAuth
// and IPsec end system (1.3.6.1.5.5.7.3.5).
var lscExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageIPSECEndSystem}

// clockSkew is how far before the current time an LSC's validity starts, so
// that a phone whose clock is a little behind accepts it.
const clockSkew = 5 * time.Minute

// IssueRequest asks for an LSC.
type IssueRequest struct {
	// DeviceName is the phone's name, e.g. "SEP001122334455". It becomes
	// the subject common name and the SAN URI.
	DeviceName string
	// PublicKey is the key the phone generated: *rsa.PublicKey (512 to
	// 4096 bits) or *ecdsa.PublicKey (P-256, P-384 or P-521).
	PublicKey crypto.PublicKey
	// Validity is the lifetime of this LSC (certificate_validity_days, a
	// fleet parameter the session read); 0 or less: the authority's
	// (Options.LSCValidity, see SetLSCValidity).
	Validity time.Duration
	// CRLURL, when set, is written as the LSC's CRL distribution point
	// (the fleet parameter crl_url, checked there).
	CRLURL string
}

// Issued is a signed LSC.
type Issued struct {
	Serial      *big.Int
	SerialHex   string // upper-case hex of the serial's bytes, no separators, even length (as openssl prints it)
	DER         []byte
	Certificate *x509.Certificate
	NotBefore   time.Time
	NotAfter    time.Time
}

// Issue validates req, then signs an LSC for it exactly once and checks the
// result against the CAPF certificate before returning it. Invalid input is
// reported as a fault.Invalid error before anything is signed.
//
// The profile follows capf-protocol.md ("Issued LSC"): subject CN = device
// name with O, OU, L, ST and C copied from the CAPF subject; a random
// 128-bit serial; basic constraints CA:false and key usage, both critical;
// extended key usage serverAuth, clientAuth and IPsec end system; SAN URI =
// the device name, byte for byte; authority key id = the CAPF subject key
// id; validity from five minutes ago (clock skew) for the configured LSC
// lifetime, cut short at the CAPF certificate's own expiry. The key usage is
// digitalSignature + keyEncipherment for RSA keys; an EC key cannot
// encipher, so EC keys get digitalSignature + keyAgreement instead (what
// ECDH key exchange needs). The LSC also carries a subject key id.
func (a *Authority) Issue(ctx context.Context, req IssueRequest) (*Issued, error) {
	if err := validateDeviceName(req.DeviceName); err != nil {
		return nil, err
	}
	usage, err := validatePublicKey(req.PublicKey)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(req.PublicKey)
	if err != nil {
		return nil, fault.Invalidf("public key of %s: %v", req.DeviceName, err)
	}
	now := a.now()
	if now.After(a.cert.NotAfter) {
		return nil, fmt.Errorf("ca: the CAPF certificate expired at %s; renew it before issuing LSCs", a.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := certserial.New(a.rand)
	if err != nil {
		return nil, err
	}
	validity := req.Validity
	if validity <= 0 {
		validity = a.LSCValidity()
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	issuer := a.cert.Subject
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         req.DeviceName,
			Organization:       slices.Clone(issuer.Organization),
			OrganizationalUnit: slices.Clone(issuer.OrganizationalUnit),
			Locality:           slices.Clone(issuer.Locality),
			Province:           slices.Clone(issuer.Province),
			Country:            slices.Clone(issuer.Country),
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           slices.Clone(lscExtKeyUsage),
		BasicConstraintsValid: true,
		IsCA:                  false,
		// An opaque URL is written out verbatim, so the SAN URI is
		// exactly the device name (validateDeviceName checked that it
		// parses back).
		URIs:               []*url.URL{{Opaque: req.DeviceName}},
		SubjectKeyId:       ski,
		AuthorityKeyId:     a.cert.SubjectKeyId,
		SignatureAlgorithm: a.sigAlg,
	}
	if req.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{req.CRLURL}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: issue LSC for %s: %w", req.DeviceName, err)
	}

	der, err := x509.CreateCertificate(a.rand, tmpl, a.cert, req.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign LSC for %s: %w", req.DeviceName, err)
	}

	cert, err := a.check(der, req.DeviceName, now)
	if err != nil {
		return nil, fmt.Errorf("ca: LSC for %s signed but failed its check: %w", req.DeviceName, err)
	}
	return &Issued{
		Serial:      cert.SerialNumber,
		SerialHex:   fmt.Sprintf("%X", cert.SerialNumber.Bytes()),
		DER:         der,
		Certificate: cert,
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
	}, nil
}

// check parses a freshly signed LSC and checks what it names. The
// signature needs no second check: x509.CreateCertificate verifies it with
// the CAPF public key before returning, and the chain properties (issuer,
// validity inside the CAPF certificate's, key usages) are fixed by the
// template and covered by the tests, which also run `openssl verify`.
func (a *Authority) check(der []byte, name string, now time.Time) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("validity %s to %s does not cover now", cert.NotBefore, cert.NotAfter)
	}
	if cert.Subject.CommonName != name {
		return nil, fmt.Errorf("subject CN is %q", cert.Subject.CommonName)
	}
	uris, err := rawSANURIs(cert)
	if err != nil {
		return nil, err
	}
	if len(uris) != 1 || uris[0] != name {
		return nil, fmt.Errorf("SAN URIs are %q", uris)
	}
	return cert, nil
}

// rawSANURIs returns the URIs in the subject alternative name extension as
// the bytes that were encoded, without URL parsing.
func rawSANURIs(cert *x509.Certificate) ([]string, error) {
	oidSAN := asn1.ObjectIdentifier{2, 5, 29, 17}
	var uris []string
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidSAN) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &names); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("bad SAN extension: %v", err)
		}
		for _, n := range names {
			if n.Class == asn1.ClassContextSpecific && n.Tag == 6 {
				uris = append(uris, string(n.Bytes))
			}
		}
	}
	return uris, nil
}

// validateDeviceName accepts a non-empty name of printable ASCII without
// spaces, at most MaxDeviceNameLen long, that parses as a relative URI
// reference without an authority (so that the SAN URI parses back).
func validateDeviceName(name string) error {
	switch {
	case name == "":
		return fault.Invalidf("device name is empty")
	case len(name) > MaxDeviceNameLen:
		return fault.Invalidf("device name is %d characters long; at most %d are allowed", len(name), MaxDeviceNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return fault.Invalidf("device name %q: character %d is not printable ASCII", name, i+1)
		}
	}
	u, err := url.Parse(name)
	if err != nil || u.Host != "" || u.User != nil {
		return fault.Invalidf("device name %q cannot be written as a subject alternative name URI", name)
	}
	return nil
}

// validatePublicKey accepts the keys phones generate and returns the key
// usage their LSC gets.
func validatePublicKey(pub crypto.PublicKey) (x509.KeyUsage, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub == nil || pub.N == nil {
			return 0, fault.Invalidf("public key: empty RSA key")
		}
		if n := pub.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return 0, fault.Invalidf("public key: RSA key of %d bits; want %d to %d", n, MinRSABits, MaxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return 0, fault.Invalidf("public key: bad RSA public exponent %d", pub.E)
		}
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, nil
	case *ecdsa.PublicKey:
		if pub == nil || pub.Curve == nil {
			return 0, fault.Invalidf("public key: empty EC key")
		}
		switch pub.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return 0, fault.Invalidf("public key: EC curve %s; want P-256, P-384 or P-521", pub.Curve.Params().Name)
		}
		if _, err := pub.ECDH(); err != nil {
			return 0, fault.Invalidf("public key: %v", err)
		}
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, nil
	case nil:
		return 0, fault.Invalidf("public key: missing")
	}
	return 0, fault.Invalidf("public key: unsupported type %T; want RSA or EC", pub)
}
