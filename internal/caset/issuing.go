package caset

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

// The audit actions of the issuing CA (ADR 0017, "A separate issuing
// CA"); target is the issuing CA's key id.
const (
	AuditIssuer       = "ca.issuer"        // an issuing CA put in place
	AuditIssuerRemove = "ca.issuer.remove" // the issuing CA removed: the active CAPF certificate signs
)

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

// Issuing returns the issuing CA put in place by SetIssuing or Update
// (nil: none), whether or not it signs now (see Signer).
func (s *Set) Issuing() *ca.Authority { return s.issuing.Load() }

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

// Issuing returns the issuing CA the set's store has in place and its
// certificate; false when there is none.
func (s *Service) Issuing(ctx context.Context) (IssuingRecord, *x509.Certificate, bool, error) {
	r, ok, err := s.st.IssuingCA(ctx)
	if err != nil {
		return IssuingRecord{}, nil, false, fmt.Errorf("read the issuing CA: %w", err)
	}
	if !ok {
		return IssuingRecord{}, nil, false, nil
	}
	c, err := r.Certificate()
	if err != nil {
		return IssuingRecord{}, nil, false, err
	}
	return r, c, true, nil
}

// PutIssuing stores cert (checked by CheckIssuing; parent the CAPF
// certificate that signed it, its key at keyRef and stored as key when
// not nil) as the issuing CA, audited as AuditIssuer with detail in the
// same transaction: every node signs new LSCs with it within seconds.
// Conflict when one is in place already.
func (s *Service) PutIssuing(ctx context.Context, cert, parent *x509.Certificate, keyRef string, key *keys.Record, actor device.Actor, detail string) (IssuingRecord, error) {
	id, err := KeyID(cert)
	if err != nil {
		return IssuingRecord{}, err
	}
	pid, err := KeyID(parent)
	if err != nil {
		return IssuingRecord{}, err
	}
	r := IssuingRecord{ID: id, ParentID: pid, Chain: cert.Raw, KeyRef: keyRef, CreatedAt: s.now().UTC()}
	ev := s.event(actor, AuditIssuer, cert, detail+"; every node signs new LSCs with it within seconds")
	if err := s.st.PutIssuingCA(ctx, r, key, ev); err != nil {
		return IssuingRecord{}, fmt.Errorf("put the issuing CA %s in place: %w", id, err)
	}
	return r, nil
}

// issuingHolders counts the devices holding a valid LSC of the issuing CA
// when parent signed it; 0 otherwise.
func (s *Service) issuingHolders(ctx context.Context, parent *x509.Certificate, now time.Time) (int, error) {
	r, c, ok, err := s.Issuing(ctx)
	if err != nil || !ok || !issuedByTrusted(c, []*x509.Certificate{parent}) {
		return 0, err
	}
	id := r.ID
	n, err := s.st.CountLSCHolders(ctx, id, c.Subject.String(), now)
	if err != nil {
		return 0, fmt.Errorf("count the LSCs of the issuing CA %s: %w", id, err)
	}
	return n, nil
}

// IssuingRow is the issuing CA as `capf ca status`, GET /api/v1/ca-set
// and Security > CAPF Certificate show it.
type IssuingRow struct {
	ID        string    `json:"id" doc:"the hex of the issuing CA's subject key identifier"`
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial" doc:"hex, upper case"`
	SHA256    string    `json:"sha256" doc:"of the DER, hex, lower case"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// ParentID is the id of the CAPF certificate that signed it.
	ParentID string `json:"parent_id" doc:"the id of the CAPF certificate of the set that signed it"`
	// Phones is how many devices hold a valid LSC it issued.
	Phones int `json:"phones" doc:"devices holding a valid LSC the issuing CA issued"`
	// Signing reports whether it signs new LSCs: its CAPF certificate is
	// not retired and it is valid now. Otherwise the active CAPF
	// certificate signs, and its LSCs no longer authenticate once its
	// CAPF certificate is retired.
	Signing   bool      `json:"signing" doc:"whether it signs new LSCs: valid now, below a CAPF certificate that is not retired"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// IssuingStatus returns the issuing CA in place with the devices that
// hold its LSCs; nil when there is none.
func (s *Service) IssuingStatus(ctx context.Context) (*IssuingRow, error) {
	r, c, ok, err := s.Issuing(ctx)
	if err != nil || !ok {
		return nil, err
	}
	now := s.now().UTC()
	n, err := s.st.CountLSCHolders(ctx, r.ID, c.Subject.String(), now)
	if err != nil {
		return nil, fmt.Errorf("count the LSCs of the issuing CA %s: %w", r.ID, err)
	}
	recs, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	var trusted []*x509.Certificate
	for _, rec := range recs {
		if !rec.State.Trusted() {
			continue
		}
		if pc, err := rec.Certificate(); err == nil {
			trusted = append(trusted, pc)
		}
	}
	sum := sha256.Sum256(c.Raw)
	return &IssuingRow{ID: r.ID, Subject: c.Subject.String(), Serial: fmt.Sprintf("%X", c.SerialNumber.Bytes()), SHA256: hex.EncodeToString(sum[:]),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), ParentID: r.ParentID, Phones: n,
		Signing: issuedByTrusted(c, trusted) && !now.Before(c.NotBefore) && !now.After(c.NotAfter), CreatedAt: r.CreatedAt.UTC()}, nil
}

// RemoveIssuing removes the issuing CA in place: every node signs new LSCs
// with the active CAPF certificate within seconds, and the LSCs it issued
// no longer authenticate nor get its CRL. Unless force, it refuses
// (Conflict, naming the count) while devices hold a valid LSC of it. It
// returns the record removed and that count; NotFound when there is none.
func (s *Service) RemoveIssuing(ctx context.Context, force bool, actor device.Actor) (IssuingRecord, int, error) {
	r, c, ok, err := s.Issuing(ctx)
	if err != nil {
		return IssuingRecord{}, 0, err
	}
	if !ok {
		return IssuingRecord{}, 0, fault.NotFoundf("no issuing CA is in place: the active CAPF certificate signs LSCs")
	}
	n, err := s.st.CountLSCHolders(ctx, r.ID, c.Subject.String(), s.now().UTC())
	if err != nil {
		return IssuingRecord{}, 0, fmt.Errorf("count the LSCs of the issuing CA %s: %w", r.ID, err)
	}
	if n > 0 && !force {
		return IssuingRecord{}, n, fault.Conflictf("%d phones hold a valid LSC from the issuing CA %s: they would no longer authenticate with it; let them renew first, or remove it with --force", n, r.ID)
	}
	detail := fmt.Sprintf("removed: the active CAPF certificate signs new LSCs; %d phones held a valid LSC from it", n)
	if err := s.st.RemoveIssuingCA(ctx, r.ID, s.event(actor, AuditIssuerRemove, c, detail)); err != nil {
		return IssuingRecord{}, n, fmt.Errorf("remove the issuing CA %s: %w", r.ID, err)
	}
	return r, n, nil
}
