package trustfile

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/trust"
)

// RecordView is one record of a trust file as the edges show it. The
// text fields come from the file: an edge escapes them for its medium.
type RecordView struct {
	Offset   int    `json:"offset"`
	Role     string `json:"role"`
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer"`
	Serial   string `json:"serial"`
	KeyType  string `json:"key_type"`
	SHA1     string `json:"sha1"`
	SHA256   string `json:"sha256"`
	NotAfter string `json:"not_after,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// FileView is a trust file as the edges show it (and `capf trust show
// --json` prints it).
type FileView struct {
	Version       string       `json:"version"`
	HeaderLength  int          `json:"header_length"`
	FileName      string       `json:"filename"`
	Timestamp     time.Time    `json:"timestamp"`
	Signer        string       `json:"signer"`
	SignerIssuer  string       `json:"signer_issuer"`
	SignerSerial  string       `json:"signer_serial"`
	Digest        string       `json:"digest"`
	SignatureLen  int          `json:"signature_length"`
	SignerVersion string       `json:"signer_version,omitempty"`
	Records       []RecordView `json:"records"`
	Verified      bool         `json:"signature_verified"`
	VerifyError   string       `json:"signature_error,omitempty"`
}

// KeyType names a certificate's public key: "RSA 2048", "EC P-256".
func KeyType(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	}
	return c.PublicKeyAlgorithm.String()
}

// ViewOf describes f: its header, every record and whether the signature
// verifies.
func ViewOf(f *trust.File) FileView {
	h := f.Header
	v := FileView{
		Version: fmt.Sprintf("%d.%d", h.Version[0], h.Version[1]), HeaderLength: h.Length,
		FileName: h.FileName, Timestamp: h.Timestamp, Signer: h.SignerName, SignerIssuer: h.IssuerName,
		SignerSerial: fmt.Sprintf("%X", h.SerialNumber), Digest: h.Hash.String(), SignatureLen: len(h.Signature),
	}
	if h.SignerVersion != (trust.SignerVersion{}) {
		v.SignerVersion = h.SignerVersion.String()
	}
	for _, r := range f.Records {
		s1, s256 := sha1.Sum(r.Certificate), sha256.Sum256(r.Certificate)
		rv := RecordView{
			Offset: r.Offset, Role: r.Role.String(), Subject: r.SubjectName, Issuer: r.IssuerName,
			Serial: fmt.Sprintf("%X", r.SerialNumber), SHA1: fmt.Sprintf("%X", s1), SHA256: fmt.Sprintf("%X", s256),
		}
		if c, err := x509.ParseCertificate(r.Certificate); err != nil {
			rv.KeyType, rv.Problem = "unknown", "certificate does not parse: "+err.Error()
		} else {
			rv.KeyType, rv.NotAfter = KeyType(c), c.NotAfter.UTC().Format(time.RFC3339)
		}
		v.Records = append(v.Records, rv)
	}
	if err := f.Verify(); err != nil {
		v.VerifyError = err.Error()
	} else {
		v.Verified = true
	}
	return v
}

// ExpiryWarning is how long before a SAST certificate expires it is
// flagged: phones must get a file listing its replacement, signed while
// it is still valid, and a fleet takes time to reach.
const ExpiryWarning = 365 * 24 * time.Hour

// Signer is one SAST signing identity as the edges show it.
type Signer struct {
	Name        string // trust.Primary or trust.Backup
	Subject     string
	Serial      string
	NotBefore   time.Time
	NotAfter    time.Time
	SHA1        string
	SHA256      string
	CertPath    string
	KeyPath     string
	Online      bool // the key is here (not exported and removed)
	Expired     bool // at the time asked
	ExpiresSoon bool // within ExpiryWarning, not yet expired
}

// Signers describes the identities of ks at now.
func Signers(ks *trust.Keystore, now time.Time) []Signer {
	var out []Signer
	for _, id := range ks.Identities() {
		c := id.Cert
		s1, s256 := sha1.Sum(c.Raw), sha256.Sum256(c.Raw)
		s := Signer{
			Name: id.Name, Subject: NameOf(c), Serial: fmt.Sprintf("%X", c.SerialNumber.Bytes()),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, SHA1: fmt.Sprintf("%X", s1), SHA256: fmt.Sprintf("%X", s256),
			CertPath: id.CertPath, KeyPath: id.KeyPath, Online: id.Key != nil,
		}
		switch {
		case now.After(c.NotAfter):
			s.Expired = true
		case now.Add(ExpiryWarning).After(c.NotAfter):
			s.ExpiresSoon = true
		}
		out = append(out, s)
	}
	return out
}
