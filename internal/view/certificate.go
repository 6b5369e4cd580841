package view

import (
	"encoding/pem"
	"time"

	"github.com/capf-server/capf/internal/lsc"
)

// Certificate is the JSON form of an issued LSC (capf cert list/show
// --json and the API).
type Certificate struct {
	Serial      string     `json:"serial" doc:"upper-case hex, as openssl x509 -serial prints it"`
	Device      string     `json:"device"`
	Status      string     `json:"status" enum:"valid,revoked,expired,superseded"`
	Issuer      string     `json:"issuer" doc:"the issuing CA's distinguished name"`
	IssuerKeyID string     `json:"issuer_key_id" doc:"hex of the issuing CA's subject key identifier; its CRL is /crl/ID.crl"`
	IssuedAt    time.Time  `json:"issued_at"`
	NotBefore   time.Time  `json:"not_before"`
	NotAfter    time.Time  `json:"not_after"`
	AttemptID   int64      `json:"attempt_id"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	Reason      string     `json:"reason,omitempty" doc:"RFC 5280 CRLReason of the revocation"`
	RevokedBy   string     `json:"revoked_by,omitempty"`
	PEM         string     `json:"pem,omitempty" doc:"the certificate (show only)"`
}

// CertificateOf is the view of r, its status evaluated at now; withPEM
// adds the certificate itself.
func CertificateOf(r lsc.Record, now time.Time, withPEM bool) Certificate {
	c := Certificate{
		Serial: r.Serial, Device: r.Device, Status: string(r.Status(now)), Issuer: r.Issuer,
		IssuerKeyID: r.IssuerKeyID, IssuedAt: r.IssuedAt, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
		AttemptID: r.AttemptID,
	}
	if r.Revoked() {
		at := r.RevokedAt
		c.RevokedAt, c.Reason, c.RevokedBy = &at, r.Reason.String(), r.RevokedBy
	}
	if withPEM && len(r.DER) > 0 {
		c.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.DER}))
	}
	return c
}

// Certificates is the view of rs at now, without the PEMs.
func Certificates(rs []lsc.Record, now time.Time) []Certificate {
	out := make([]Certificate, 0, len(rs))
	for _, r := range rs {
		out = append(out, CertificateOf(r, now, false))
	}
	return out
}
