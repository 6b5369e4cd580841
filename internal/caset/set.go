package caset

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/fault"
)

// Issuer is one CA of the set as a node uses it: its record, its
// certificate and, for every CA that is not retired, an authority over
// its key.
type Issuer struct {
	Record
	Cert      *x509.Certificate
	Authority *ca.Authority // nil when retired
}

// Former is a former issuing CA as a node uses it: its certificate, an
// LSC trust anchor while a CA of the set that is not retired signed it,
// and its key, which signs its LSCs' CRL and OCSP answers (nil when the
// node could not open it: the LSCs still authenticate).
type Former struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// snapshot is the set at one version; it is never changed once built.
type snapshot struct {
	version int64
	issuers []Issuer
	active  *ca.Authority
	signer  *ca.Authority // signs new LSCs: the issuing CA, else active
	tlsCert *tls.Certificate
	roots   *x509.CertPool
	trusted []*x509.Certificate
	former  []Former // every former issuing CA given
	formerT []Former // those a CA of the set that is not retired signed
}

// Set is the live CA set of a node: the active CA presents itself on TLS
// and signs new LSCs, every CA that is not retired (and the further LSC
// issuers given to NewSet) is an LSC trust anchor, and Replace switches
// all of that at once, without a restart. Its methods never wait.
type Set struct {
	extra   []*x509.Certificate
	issuing atomic.Pointer[ca.Authority] // SetIssuing
	cur     atomic.Pointer[snapshot]
}

// NewSet returns a set over issuers (at version), with extra as further
// LSC trust anchors (another CAPF's issuing CA carried over by
// migrate-from).
func NewSet(version int64, issuers []Issuer, extra ...*x509.Certificate) (*Set, error) {
	s := &Set{extra: extra}
	if err := s.Replace(version, issuers); err != nil {
		return nil, err
	}
	return s, nil
}

// Replace puts issuers (at version) in force. It refuses, and keeps the
// set as it was, unless exactly one issuer is active and every issuer
// that is not retired has its authority.
func (s *Set) Replace(version int64, issuers []Issuer) error {
	return s.replace(version, issuers, s.issuing.Load(), s.cur.Load().formerOrNil())
}

// formerOrNil returns the former issuing CAs of snap; nil for no snapshot.
func (snap *snapshot) formerOrNil() []Former {
	if snap == nil {
		return nil
	}
	return snap.former
}

// Former returns every former issuing CA put in force by Update, whether
// or not it is trusted now (see FormerInForce).
func (s *Set) Former() []Former { return append([]Former(nil), s.cur.Load().former...) }

// FormerInForce returns the former issuing CAs that a CA of the set that
// is not retired signed: LSC trust anchors, and (with their key) the
// signers of their LSCs' CRL and OCSP answers.
func (s *Set) FormerInForce() []Former { return append([]Former(nil), s.cur.Load().formerT...) }

// Update puts issuers (at version), the issuing CA iss (nil: none) and
// the former issuing CAs former in force at once, as a node does when the
// set changed in the database. It refuses, and keeps the set and issuing
// CA as they were, as Replace does.
func (s *Set) Update(version int64, issuers []Issuer, iss *ca.Authority, former []Former) error {
	if err := s.replace(version, issuers, iss, former); err != nil {
		return err
	}
	s.issuing.Store(iss)
	return nil
}

// replace builds the snapshot of issuers with iss and former and stores
// it.
func (s *Set) replace(version int64, issuers []Issuer, iss *ca.Authority, former []Former) error {
	snap := &snapshot{version: version, issuers: issuers, roots: x509.NewCertPool(), former: former}
	for _, iss := range issuers {
		if !iss.State.Trusted() {
			continue
		}
		if iss.Authority == nil {
			return fault.Invalidf("CA %s (%s) has no key loaded", iss.ID, iss.State)
		}
		if iss.State == Active {
			if snap.active != nil {
				first, _ := KeyID(snap.active.Certificate())
				return fault.Invalidf("the CA set has two active CAs (%s and %s)", first, iss.ID)
			}
			snap.active = iss.Authority
		}
		snap.roots.AddCert(iss.Cert)
		snap.trusted = append(snap.trusted, iss.Cert)
	}
	if snap.active == nil {
		return fault.Invalidf("the CA set has no active CA")
	}
	for _, c := range s.extra {
		snap.roots.AddCert(c)
	}
	snap.signer = snap.active
	if iss != nil && issuedByTrusted(iss.Certificate(), snap.trusted) {
		snap.signer = iss
		snap.roots.AddCert(iss.Certificate())
	}
	for _, f := range former {
		if issuedByTrusted(f.Cert, snap.trusted) {
			snap.formerT = append(snap.formerT, f)
			snap.roots.AddCert(f.Cert)
		}
	}
	c := snap.active.TLSCertificate()
	snap.tlsCert = &c
	s.cur.Store(snap)
	return nil
}

// Version returns the version of the set in force.
func (s *Set) Version() int64 { return s.cur.Load().version }

// Active returns the active CA.
func (s *Set) Active() *ca.Authority { return s.cur.Load().active }

// Issuers returns every CA of the set, oldest first.
func (s *Set) Issuers() []Issuer { return append([]Issuer(nil), s.cur.Load().issuers...) }

// Trusted returns the certificates of the CAs that are not retired, oldest
// first: those trust files list with the CAPF role.
func (s *Set) Trusted() []*x509.Certificate {
	return append([]*x509.Certificate(nil), s.cur.Load().trusted...)
}

// LSCRoots returns the LSC trust anchors: every CA that is not retired and
// the further LSC issuers. The pool must not be changed.
func (s *Set) LSCRoots() *x509.CertPool { return s.cur.Load().roots }

// GetCertificate presents the active CA on TLS (tls.Config.GetCertificate).
func (s *Set) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().tlsCert, nil
}

// Issue signs an LSC (session.Issuer) with the issuing CA when one is in
// force (SetIssuing), else with the active CA.
func (s *Set) Issue(ctx context.Context, req ca.IssueRequest) (*ca.Issued, error) {
	return s.cur.Load().signer.Issue(ctx, req)
}
