package lsc

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// CertificateGetter is the part of [Store] that [Revocations] reads: one
// look-up by serial, the inventory's primary key.
type CertificateGetter interface {
	GetCertificate(ctx context.Context, serial string) (Record, error)
}

// Revocations answers, for the CAPF's own authentication of a phone by its
// LSC, whether the LSC the phone presents is on the revocation records.
// Every revocation counts, whatever its reason: keyCompromise and the
// other reasons an administrator gives, superseded (written only once the
// phone confirmed that it stored the newer LSC) and cessationOfOperation
// (written only once the phone confirmed the Delete). See docs/security.md.
type Revocations struct {
	Store CertificateGetter
}

// LSCRevoked reports whether the LSC with serial (upper-case hex of its
// bytes, as the CA records it) issued by the CA whose key id is
// issuerKeyID (hex of the LSC's authority key identifier; "" if it has
// none) is revoked, and if so why, for the phone's history: the RFC 5280
// reason, when and by whom. A serial the inventory does not know, or one
// recorded for another CA's key, is not revoked by these records. A
// failure to read is returned: the caller must not take it for "valid".
func (r Revocations) LSCRevoked(ctx context.Context, serial, issuerKeyID string) (string, bool, error) {
	rec, err := r.Store.GetCertificate(ctx, serial)
	switch {
	case fault.KindOf(err) == fault.NotFound:
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up the revocation of LSC %s: %w", serial, err)
	case !rec.Revoked():
		return "", false, nil
	case rec.IssuerKeyID != "" && issuerKeyID != "" && !strings.EqualFold(rec.IssuerKeyID, issuerKeyID):
		return "", false, nil // the same serial from another CA: not this certificate
	}
	why := fmt.Sprintf("%s since %s", rec.Reason, rec.RevokedAt.UTC().Format(time.RFC3339))
	if rec.RevokedBy != "" {
		why += " (" + rec.RevokedBy + ")"
	}
	return why, true, nil
}
