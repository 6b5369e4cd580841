package lsc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// AuditRevoke is the audit action of a revocation by hand.
const AuditRevoke = "certificate.revoke"

// Status is where an issued LSC stands.
type Status string

// The states of an LSC, as listed and filtered.
const (
	// StatusValid: not revoked and not expired.
	StatusValid Status = "valid"
	// StatusExpired: not revoked, past its notAfter.
	StatusExpired Status = "expired"
	// StatusSuperseded: revoked with reason superseded (a newer LSC was
	// installed on its phone, or the administrator said so).
	StatusSuperseded Status = "superseded"
	// StatusRevoked: revoked with any other reason.
	StatusRevoked Status = "revoked"
)

// Statuses lists every Status, in display order.
var Statuses = []Status{StatusValid, StatusRevoked, StatusExpired, StatusSuperseded}

// ParseStatus returns the Status called s; Invalid otherwise.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Statuses, st) {
		return "", fault.InvalidField("status", "status %q: want valid, revoked, expired or superseded", s)
	}
	return st, nil
}

// Reason is an RFC 5280 CRLReason code (section 5.3.1).
type Reason int

// The CRLReason codes of RFC 5280. 7 is not used.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonCACompromise         Reason = 2
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonCertificateHold      Reason = 6
	ReasonRemoveFromCRL        Reason = 8
	ReasonPrivilegeWithdrawn   Reason = 9
	ReasonAACompromise         Reason = 10
)

var reasonNames = map[Reason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonRemoveFromCRL:        "removeFromCRL",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
	ReasonAACompromise:         "aACompromise",
}

// AdminReasons are the reasons an administrator may give when revoking an
// LSC: revocation is final here, so certificateHold and removeFromCRL are
// not offered, and the CA and attribute-authority compromises are not an
// LSC's to claim.
var AdminReasons = []Reason{ReasonUnspecified, ReasonKeyCompromise, ReasonAffiliationChanged,
	ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn}

// String returns the RFC 5280 name of r, or Reason(N) for an unknown code.
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// ParseReason returns the reason an administrator named (RFC 5280 name,
// case ignored); Invalid for an unknown name or one of AdminReasons' leave-outs.
func ParseReason(s string) (Reason, error) {
	var names []string
	for _, r := range AdminReasons {
		if strings.EqualFold(strings.TrimSpace(s), r.String()) {
			return r, nil
		}
		names = append(names, r.String())
	}
	return 0, fault.InvalidField("reason", "reason %q: want one of %s", s, strings.Join(names, ", "))
}

// Record is one issued LSC as the inventory knows it: the issuance, the key
// id of the CA that signed it, and its revocation if any.
type Record struct {
	device.Issuance
	// RevokedAt is when it was revoked; zero when it is not.
	RevokedAt time.Time
	// Reason is the revocation's reason (meaningful when RevokedAt is set).
	Reason Reason
	// RevokedBy says who or what revoked it: the administrator, or the
	// event that superseded it.
	RevokedBy string
}

// Revoked reports whether the LSC is revoked.
func (r Record) Revoked() bool { return !r.RevokedAt.IsZero() }

// Status returns where the LSC stands at now.
func (r Record) Status(now time.Time) Status {
	switch {
	case r.Revoked() && r.Reason == ReasonSuperseded:
		return StatusSuperseded
	case r.Revoked():
		return StatusRevoked
	case now.After(r.NotAfter):
		return StatusExpired
	}
	return StatusValid
}

// Revocation is what a revocation records.
type Revocation struct {
	At     time.Time
	Reason Reason
	By     string
}

// Query selects issued LSCs, newest first.
type Query struct {
	Device string    // "": every device
	Status Status    // "": every status
	Now    time.Time // for StatusValid and StatusExpired; the store uses time.Now when zero
	Limit  int       // <= 0: all
}

// CRL is the latest certificate revocation list of one issuing CA, as the
// fleet publishes it.
type CRL struct {
	IssuerKeyID string // hex of the CA's subject key identifier
	Number      int64  // the CRL number; grows with every new CRL
	ThisUpdate  time.Time
	NextUpdate  time.Time
	DER         []byte
}

// Store is the persistence contract of the LSC inventory. Both backends
// implement it and pass storetest.RunLSC. The general guarantees of
// [device.Store] hold. The issuances themselves are written by
// device.Store.RecordIssuance, and FinishAttempt revokes automatically:
// when an outcome sets a new LSC, every other unrevoked issuance of the
// device becomes superseded (ReasonSuperseded), and when it clears the LSC
// (Delete succeeded) every unrevoked issuance of the device is revoked with
// ReasonCessationOfOperation, both in FinishAttempt's transaction, at the
// outcome's FinishedAt.
type Store interface {
	// ListCertificates returns the issued LSCs q selects, newest first
	// (by IssuedAt, then the order they were recorded in).
	ListCertificates(ctx context.Context, q Query) ([]Record, error)
	// GetCertificate returns the LSC of serial (upper-case hex, as
	// ParseSerial gives it), or NotFound.
	GetCertificate(ctx context.Context, serial string) (Record, error)
	// RevokeCertificate revokes the LSC of serial and appends ev, in one
	// transaction, and returns the record as it is now. NotFound if no
	// such LSC was issued; Conflict if it is revoked already (nothing is
	// written then).
	RevokeCertificate(ctx context.Context, serial string, r Revocation, ev device.AuditEvent) (Record, error)
	// ListRevoked returns the revoked LSCs of the CA whose key id is
	// issuerKeyID that have not expired at now (notAfter at or after it),
	// oldest revocation first: the entries of its CRL. Issuances recorded
	// before key ids were (IssuerKeyID "") are included too, with their
	// DER, for the caller to sort out by their certificate; the others
	// come without DER (a CRL needs none, and a fleet's list is long).
	ListRevoked(ctx context.Context, issuerKeyID string, now time.Time) ([]Record, error)
	// CountRevoked returns how many LSCs of the CA whose key id is
	// issuerKeyID (and of issuances without a key id) were ever revoked,
	// expired ones included. A revocation is never undone, so the count
	// changes exactly when a revocation is added: a cheap test of whether
	// a CRL is out of date.
	CountRevoked(ctx context.Context, issuerKeyID string) (int64, error)
	// SaveCRL stores c as its CA's latest CRL if its Number is greater
	// than the stored one's, and reports whether it did.
	SaveCRL(ctx context.Context, c CRL) (bool, error)
	// GetCRL returns the latest CRL of the CA whose key id is
	// issuerKeyID; NotFound if none was saved.
	GetCRL(ctx context.Context, issuerKeyID string) (CRL, error)
}

// SupersededBy is the RevokedBy of the LSCs that a new LSC (serial,
// installed by attempt) superseded.
func SupersededBy(serial string, attempt int64) string {
	return fmt.Sprintf("superseded by LSC %s (attempt %d)", serial, attempt)
}

// DeletedBy is the RevokedBy of the LSCs that a Delete (attempt) removed
// from their phone.
func DeletedBy(attempt int64) string {
	return fmt.Sprintf("deleted from the phone (attempt %d)", attempt)
}
