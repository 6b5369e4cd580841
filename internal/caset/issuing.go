package caset

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
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
	AuditIssuerRemove = "ca.issuer.remove" // the issuing CA taken out of place: the active CAPF certificate signs; it stays trusted as a former one
	AuditIssuerForget = "ca.issuer.forget" // a former issuing CA dropped: its LSCs no longer authenticate nor get its CRL
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
		for _, f := range snap.formerT {
			snap.roots.AddCert(f.Cert)
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
// in place and of the former issuing CAs that parent signed.
func (s *Service) issuingHolders(ctx context.Context, parent *x509.Certificate, now time.Time) (int, error) {
	r, c, ok, err := s.Issuing(ctx)
	if err != nil {
		return 0, err
	}
	var below []IssuingRecord
	if ok && issuedByTrusted(c, []*x509.Certificate{parent}) {
		below = append(below, r)
	}
	formers, err := s.st.FormerIssuingCAs(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the former issuing CAs: %w", err)
	}
	for _, f := range formers {
		if fc, err := f.Certificate(); err == nil && issuedByTrusted(fc, []*x509.Certificate{parent}) {
			below = append(below, f)
		}
	}
	total := 0
	for _, b := range below {
		bc, err := b.Certificate()
		if err != nil {
			return 0, err
		}
		n, err := s.st.CountLSCHolders(ctx, b.ID, bc.Subject.String(), now)
		if err != nil {
			return 0, fmt.Errorf("count the LSCs of the issuing CA %s: %w", b.ID, err)
		}
		total += n
	}
	return total, nil
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
	// RemovedAt is when it was taken out of place: set for a former
	// issuing CA, which signs no new LSC but stays an LSC trust anchor and
	// the signer of its LSCs' CRL while its CAPF certificate is not retired.
	RemovedAt time.Time `json:"removed_at,omitzero" doc:"set for a former issuing CA: taken out of place, still trusted for its LSCs until capf ca issuer forget"`
}

// IssuingStatus returns the issuing CA in place with the devices that
// hold its LSCs; nil when there is none.
func (s *Service) IssuingStatus(ctx context.Context) (*IssuingRow, error) {
	r, _, ok, err := s.Issuing(ctx)
	if err != nil || !ok {
		return nil, err
	}
	trusted, err := s.trustedCerts(ctx)
	if err != nil {
		return nil, err
	}
	row, err := s.issuingRow(ctx, r, trusted)
	if err != nil {
		return nil, err
	}
	return &row, nil
}

// FormerIssuingStatus returns the former issuing CAs, oldest removal
// first, with the devices that hold their LSCs.
func (s *Service) FormerIssuingStatus(ctx context.Context) ([]IssuingRow, error) {
	formers, err := s.st.FormerIssuingCAs(ctx)
	if err != nil || len(formers) == 0 {
		return nil, err
	}
	trusted, err := s.trustedCerts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]IssuingRow, 0, len(formers))
	for _, f := range formers {
		row, err := s.issuingRow(ctx, f, trusted)
		if err != nil {
			return nil, err
		}
		row.Signing = false
		out = append(out, row)
	}
	return out, nil
}

// trustedCerts returns the certificates of the CAs of the set that are
// not retired.
func (s *Service) trustedCerts(ctx context.Context) ([]*x509.Certificate, error) {
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
	return trusted, nil
}

// issuingRow is r as shown, its phones counted at now and its signing
// judged against trusted.
func (s *Service) issuingRow(ctx context.Context, r IssuingRecord, trusted []*x509.Certificate) (IssuingRow, error) {
	c, err := r.Certificate()
	if err != nil {
		return IssuingRow{}, err
	}
	now := s.now().UTC()
	n, err := s.st.CountLSCHolders(ctx, r.ID, c.Subject.String(), now)
	if err != nil {
		return IssuingRow{}, fmt.Errorf("count the LSCs of the issuing CA %s: %w", r.ID, err)
	}
	sum := sha256.Sum256(c.Raw)
	return IssuingRow{ID: r.ID, Subject: c.Subject.String(), Serial: fmt.Sprintf("%X", c.SerialNumber.Bytes()), SHA256: hex.EncodeToString(sum[:]),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), ParentID: r.ParentID, Phones: n,
		Signing:   issuedByTrusted(c, trusted) && !now.Before(c.NotBefore) && !now.After(c.NotAfter),
		CreatedAt: r.CreatedAt.UTC(), RemovedAt: r.RemovedAt.UTC()}, nil
}

// RemoveIssuing takes the issuing CA in place out of place: every node
// signs new LSCs with the active CAPF certificate within seconds, and it
// becomes a former issuing CA, still an LSC trust anchor and the signer
// of its LSCs' CRL and OCSP answers (while its CAPF certificate is not
// retired), so that the phones holding its LSCs keep authenticating until
// they renew; ForgetIssuing drops it. It returns the record and how many
// phones hold a valid LSC of it; NotFound when there is none. force is
// not needed any more and is ignored.
func (s *Service) RemoveIssuing(ctx context.Context, _ bool, actor device.Actor) (IssuingRecord, int, error) {
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
	detail := fmt.Sprintf("removed: the active CAPF certificate signs new LSCs; it stays trusted for the %d phones that hold a valid LSC from it, until capf ca issuer forget", n)
	at := s.now().UTC()
	if err := s.st.RetireIssuingCA(ctx, r.ID, at, s.event(actor, AuditIssuerRemove, c, detail)); err != nil {
		return IssuingRecord{}, n, fmt.Errorf("remove the issuing CA %s: %w", r.ID, err)
	}
	r.RemovedAt = at
	return r, n, nil
}

// ForgetIssuing drops the former issuing CA id (a unique prefix of 8 hex
// digits or more will do): its LSCs no longer authenticate nor get its CRL
// or OCSP answers. Unless force, it refuses (Conflict, naming the count)
// while devices hold a valid LSC of it. It returns the record and that
// count; NotFound when there is no such former issuing CA.
func (s *Service) ForgetIssuing(ctx context.Context, id string, force bool, actor device.Actor) (IssuingRecord, int, error) {
	formers, err := s.st.FormerIssuingCAs(ctx)
	if err != nil {
		return IssuingRecord{}, 0, fmt.Errorf("read the former issuing CAs: %w", err)
	}
	var match []IssuingRecord
	for _, f := range formers {
		if f.ID == id || (len(id) >= 8 && strings.HasPrefix(f.ID, strings.ToLower(id))) {
			match = append(match, f)
		}
	}
	switch {
	case len(match) == 0:
		return IssuingRecord{}, 0, fault.NotFoundf("no former issuing CA %s (capf ca status lists them)", id)
	case len(match) > 1:
		return IssuingRecord{}, 0, fault.Invalidf("%s is the prefix of %d former issuing CAs: give more of the id", id, len(match))
	}
	r := match[0]
	c, err := r.Certificate()
	if err != nil {
		return IssuingRecord{}, 0, err
	}
	n, err := s.st.CountLSCHolders(ctx, r.ID, c.Subject.String(), s.now().UTC())
	if err != nil {
		return IssuingRecord{}, 0, fmt.Errorf("count the LSCs of the issuing CA %s: %w", r.ID, err)
	}
	if n > 0 && !force {
		return IssuingRecord{}, n, fault.Conflictf("%d phones hold a valid LSC from the former issuing CA %s: they would no longer authenticate with it, nor its CRL be published; let them renew first, or forget it with --force", n, r.ID)
	}
	detail := fmt.Sprintf("forgotten: no longer trusted for LSCs, its CRL no longer published; %d phones held a valid LSC from it", n)
	if err := s.st.ForgetIssuingCA(ctx, r.ID, s.event(actor, AuditIssuerForget, c, detail)); err != nil {
		return IssuingRecord{}, n, fmt.Errorf("forget the former issuing CA %s: %w", r.ID, err)
	}
	return r, n, nil
}
