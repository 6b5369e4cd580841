package caset

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// CAKeyPrefix, followed by a CA's id, is the key reference of a CA of
// the set made since the set exists (Record.KeyRef): "ca-ID".
const CAKeyPrefix = "ca-"

// MaxPEM bounds each PEM text (a certificate with its chain, or a key)
// the administration takes: a chain up to a root is a few KiB, an RSA
// 4096 key about 3.3 KiB.
const MaxPEM = 64 << 10

// Pending is the offline CA's pending key (ADR 0017): made by CSR,
// waiting for the outside CA's certificate (InstallSigned) or to be
// discarded (DiscardPending). It is not a CA of the set.
type Pending struct {
	// ID is the key id of the key (PublicKeyID): the id the CA will
	// have when its certificate carries the usual key identifier.
	ID string `json:"id" doc:"the key's id: the hex SHA-1 of its public key, as CA ids are"`
	// Subject is the subject its request asks for.
	Subject string `json:"subject" doc:"the subject its request asks for"`
	// Algorithm is the key's algorithm (rsa2048, ec256, …).
	Algorithm string `json:"key_algorithm" doc:"the key's algorithm"`
	// Where says where it waits (a directory, or sealed in the database).
	Where string `json:"where" doc:"where the key waits: a directory of the node, or sealed in the database"`
}

// KeyVault keeps the keys an administrator brings into the CA set where
// the deployment keeps CA keys: files under DATA/ca on a node that keeps
// its keys as files, rows of the keys table sealed under the KEK on a
// cluster with one (ADR 0009, ADR 0017). It writes keys; the rules are
// [Admin]'s.
type KeyVault interface {
	// PutKey prepares key as the key named ref (CAKeyPrefix or
	// IssuingKeyPrefix and an id) of chain's leaf: written to its files
	// (NewKey.Undo removes them), or a sealed keys row (NewKey.Key) that
	// the store writes with the CA's row.
	PutKey(ctx context.Context, ref string, chain []*x509.Certificate, key crypto.Signer) (NewKey, error)
	// OpenKey opens the key of the CA r, checked against its certificate.
	OpenKey(ctx context.Context, r Record) (*ca.Authority, error)
	// Pending returns the pending key; nil when there is none.
	Pending(ctx context.Context) (*Pending, error)
	// OpenPending returns the pending key and its placeholder
	// certificate (its subject is the one requested); NotFound when there
	// is none.
	OpenPending(ctx context.Context) (crypto.Signer, *x509.Certificate, error)
	// AddPending stores key, with the self-signed placeholder certificate
	// that lets it be stored as every CA key is, as the pending key, with
	// ev: both or neither. Conflict when one waits already.
	AddPending(ctx context.Context, placeholder *x509.Certificate, key crypto.Signer, ev device.AuditEvent) error
	// DiscardPending removes the pending key with ev.
	DiscardPending(ctx context.Context, ev device.AuditEvent) error
	// ClearPending removes the pending key's files once its CA is staged
	// with a copy of the key (keys kept as files); nothing where the
	// store removed its row with the staged CA.
	ClearPending(ctx context.Context) error
	// RetireIssuingKey moves the key files of the issuing CA id, taken out
	// of place, to where former issuing CAs keep theirs (keys kept as
	// files); nothing where its key is a keys row or in a token.
	RetireIssuingKey(ctx context.Context, id string) error
	// ForgetIssuingKey removes the key files of the former issuing CA id
	// once its row is gone (keys kept as files); nothing where the store
	// removed its keys row with it.
	ForgetIssuingKey(ctx context.Context, id string) error
}

// errNoVault refuses what needs a KeyVault where there is none.
var errNoVault = fault.Invalidf("CA keys cannot be stored here")

// errNoPending is the refusal of what needs a pending key when none waits.
var errNoPending = fault.NotFoundf("no pending key: a certificate signing request (capf ca csr) makes one")

// inField blames field for an Invalid error that blames none.
func inField(field string, err error) error {
	if err == nil || fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "" {
		return err
	}
	return fault.InvalidField(field, "%s", fault.Message(err))
}

// ParseCertificatesField reads the PEM certificates of the input field
// (at most MaxPEM bytes); required says whether it may be empty.
func ParseCertificatesField(field string, data []byte, required bool) ([]*x509.Certificate, error) {
	if len(data) > MaxPEM {
		return nil, fault.InvalidField(field, "%s is over %d KiB: not a certificate or chain", field, MaxPEM>>10)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if required {
			return nil, fault.InvalidField(field, "no %s given: a PEM certificate is needed", field)
		}
		return nil, nil
	}
	cs, err := ca.ParseCertificatesPEM(data)
	if err != nil {
		return nil, fault.InvalidField(field, "%s: %s", field, fault.Message(err))
	}
	return cs, nil
}

// ParseChainFields reads the certificate of the input field
// "certificate" (required) and the chain of the field "chain" (optional),
// as an edge's form or body gives them: the leaf, and every other
// certificate (those after the leaf in the first field, then the chain's).
func ParseChainFields(cert, chain []byte) (*x509.Certificate, []*x509.Certificate, error) {
	cs, err := ParseCertificatesField("certificate", cert, true)
	if err != nil {
		return nil, nil, err
	}
	more, err := ParseCertificatesField("chain", chain, false)
	if err != nil {
		return nil, nil, err
	}
	return cs[0], append(cs[1:], more...), nil
}

// ParseKeyField reads the PEM private key of the input field (at most
// MaxPEM bytes). Its error never quotes the input.
func ParseKeyField(field string, data []byte) (crypto.Signer, error) {
	if len(data) > MaxPEM {
		return nil, fault.InvalidField(field, "%s is over %d KiB: not a private key", field, MaxPEM>>10)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fault.InvalidField(field, "no %s given: a PEM private key (PKCS #8, PKCS #1 or SEC 1) is needed", field)
	}
	k, err := ca.ParseKeyPEM(data)
	if err != nil {
		return nil, fault.InvalidField(field, "%s: %s", field, fault.Message(err))
	}
	return k, nil
}

// checkRSAOnly refuses pub when tls_profile legacy needs an RSA key.
func (a *Admin) checkRSAOnly(field string, pub crypto.PublicKey) error {
	if _, isRSA := pub.(*rsa.PublicKey); a.RSAOnly != nil && a.RSAOnly() && !isRSA {
		return fault.InvalidField(field, "tls_profile legacy needs an RSA CAPF key: an EC key would not serve old phones")
	}
	return nil
}

// notInSet refuses a CA that is in the set already, before its key is
// written.
func (a *Admin) notInSet(ctx context.Context, id string) error {
	recs, err := a.Service.list(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.ID == id {
			return fault.Conflictf("CA %s is in the CA set already (%s): nothing was stored", id, r.State)
		}
	}
	return nil
}

// Import stages a CAPF certificate made elsewhere (leaf, with more: the
// rest of its chain, in any order) with its key (keyName names it in
// errors), audited as AuditImport: checked by CheckImport and against
// tls_profile legacy before anything is written; the key is stored as
// every CA key is. It returns the record and the chain, leaf first.
func (a *Admin) Import(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, key crypto.Signer, keyName string, actor device.Actor) (Record, []*x509.Certificate, error) {
	chain, err := a.checkMadeElsewhere(leaf, more, key.Public(), keyName)
	if err != nil {
		return Record{}, nil, err
	}
	rec, err := a.stageWithKey(ctx, chain, key, AuditImport, actor)
	return rec, chain, err
}

// checkMadeElsewhere checks an imported CAPF certificate (leaf, with more)
// for the public key pub (keyName names it in errors), as Import does:
// CheckImport, the field key blamed for a key that is not the
// certificate's, and tls_profile legacy. It returns the chain, leaf first.
func (a *Admin) checkMadeElsewhere(leaf *x509.Certificate, more []*x509.Certificate, pub crypto.PublicKey, keyName string) ([]*x509.Certificate, error) {
	chain, err := CheckImport(leaf, more, pub, keyName, a.Service.now())
	if err != nil {
		if isKeyMismatch(err) {
			return nil, inField("key", err)
		}
		return nil, inField("certificate", err)
	}
	if err := a.checkRSAOnly("key", pub); err != nil {
		return nil, err
	}
	return chain, nil
}

// readyToStage returns the id of chain's CA once it is not in the set
// and BeforeChange ran: the last checks before a CA made elsewhere is
// stored.
func (a *Admin) readyToStage(ctx context.Context, chain []*x509.Certificate) (string, error) {
	id, err := KeyID(chain[0])
	if err != nil {
		return "", err
	}
	if err := a.notInSet(ctx, id); err != nil {
		return "", err
	}
	if err := a.beforeChange(ctx); err != nil {
		return "", err
	}
	return id, nil
}

// stageWithKey stores key as the key of chain's CA and stages chain,
// both or neither.
func (a *Admin) stageWithKey(ctx context.Context, chain []*x509.Certificate, key crypto.Signer, action string, actor device.Actor) (Record, error) {
	if a.Vault == nil {
		return Record{}, errNoVault
	}
	id, err := a.readyToStage(ctx, chain)
	if err != nil {
		return Record{}, err
	}
	nk, err := a.Vault.PutKey(ctx, CAKeyPrefix+id, chain, key)
	if err != nil {
		return Record{}, err
	}
	rec, err := a.Service.StageMadeElsewhere(ctx, chain, nk.KeyRef, nk.Key, action, actor)
	if err != nil && nk.Undo != nil {
		nk.Undo() // never stored: nothing refers to it
	}
	return rec, err
}

// CSR makes the offline CA's pending key (algorithm alg, "" for
// DefaultAlgorithm) and its certificate signing request for subject
// ("CN=…,O=…,OU=…,L=…,ST=…,C=…"; "" for a generated CN, O=CAPF,
// OU=VOICE), audited as AuditCSR with the key stored. One pending key at
// a time: Conflict, naming it, while one waits. It returns the request
// (DER) and the pending key.
func (a *Admin) CSR(ctx context.Context, subject, alg string, actor device.Actor) ([]byte, Pending, error) {
	k, err := a.algorithm(alg)
	if err != nil {
		return nil, Pending{}, err
	}
	name, err := ParseSubject(subject)
	if err != nil {
		return nil, Pending{}, err
	}
	if a.Vault == nil {
		return nil, Pending{}, errNoVault
	}
	if p, err := a.Vault.Pending(ctx); err != nil {
		return nil, Pending{}, err
	} else if p != nil {
		return nil, Pending{}, fault.Conflictf("a pending key %s is waiting for its certificate (%s; install the outside CA's answer); to start over, discard it (capf ca csr --discard)", p.ID, p.Where)
	}
	// The placeholder certificate only lets the key be stored as every CA
	// key is; the CA set never holds it.
	au, err := ca.Generate(ca.Options{KeyAlgorithm: k, Subject: name})
	if err != nil {
		return nil, Pending{}, err
	}
	name = au.Certificate().Subject // with the generated CN when none was given
	der, err := CACSR(name, au.Signer())
	if err != nil {
		return nil, Pending{}, err
	}
	id := PublicKeyID(au.Signer().Public())
	ev := device.AuditEvent{At: a.Service.now().UTC(), Actor: actor, Action: AuditCSR, Target: id,
		Detail: fmt.Sprintf("pending %s key for %s made for an outside CA to certify (capf ca install-signed)", k, name)}
	if err := a.Vault.AddPending(ctx, au.Certificate(), au.Signer(), ev); err != nil {
		return nil, Pending{}, err
	}
	p, err := a.Vault.Pending(ctx)
	if err != nil || p == nil {
		return der, Pending{ID: id, Subject: name.String(), Algorithm: string(k)}, err
	}
	return der, *p, nil
}

// algorithm parses alg (a name ca.ParseKeyAlgorithm takes; "" for
// DefaultAlgorithm) and refuses a key tls_profile legacy could not
// present.
func (a *Admin) algorithm(alg string) (ca.KeyAlgorithm, error) {
	k := ca.RSA2048
	if a.DefaultAlgorithm != nil {
		k = a.DefaultAlgorithm()
	}
	if alg != "" {
		var err error
		if k, err = ca.ParseKeyAlgorithm(alg); err != nil {
			return "", fault.InvalidField("key_algorithm", "%s", fault.Message(err))
		}
	}
	if a.RSAOnly != nil && a.RSAOnly() && k != ca.RSA2048 && k != ca.RSA3072 && k != ca.RSA4096 {
		return "", fault.InvalidField("key_algorithm", "tls_profile legacy needs an RSA CAPF key: a %s key would not serve old phones", k)
	}
	return k, nil
}

// Pending returns the offline CA's pending key; nil when none waits.
func (a *Admin) Pending(ctx context.Context) (*Pending, error) {
	if a.Vault == nil {
		return nil, nil
	}
	return a.Vault.Pending(ctx)
}

// PendingRequest makes the certificate signing request of the pending
// key again (DER), for the subject it was made for: the same request
// content CSR returned (a new signature). NotFound when none waits.
func (a *Admin) PendingRequest(ctx context.Context) ([]byte, error) {
	if a.Vault == nil {
		return nil, errNoPending
	}
	key, placeholder, err := a.Vault.OpenPending(ctx)
	if err != nil {
		return nil, err
	}
	return CACSR(placeholder.Subject, key)
}

// InstallSigned stages the outside CA's certificate for the pending key
// (leaf, with more: the rest of its chain), audited as
// AuditInstallSigned: checked by CheckImport against the pending key (a
// certificate for another key is refused naming both ids) before
// anything is written; the key becomes the staged CA's and the pending
// key is gone.
func (a *Admin) InstallSigned(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, actor device.Actor) (Record, []*x509.Certificate, error) {
	if a.Vault == nil {
		return Record{}, nil, errNoPending
	}
	key, _, err := a.Vault.OpenPending(ctx)
	if err != nil {
		return Record{}, nil, err
	}
	chain, err := CheckImport(leaf, more, key.Public(), "the pending key", a.Service.now())
	if err != nil {
		return Record{}, nil, inField("certificate", err)
	}
	if err := a.checkRSAOnly("certificate", key.Public()); err != nil {
		return Record{}, nil, err
	}
	id, err := a.readyToStage(ctx, chain)
	if err != nil {
		return Record{}, nil, err
	}
	nk, err := a.Vault.PutKey(ctx, CAKeyPrefix+id, chain, key)
	if err != nil {
		return Record{}, nil, err
	}
	var rec Record
	if nk.Key != nil { // a sealed row: staged and the pending row removed in one transaction
		rec, err = a.Service.StagePending(ctx, chain, nk.Key, PendingKeyID, actor)
	} else {
		rec, err = a.Service.StageMadeElsewhere(ctx, chain, nk.KeyRef, nil, AuditInstallSigned, actor)
	}
	if err != nil {
		if nk.Undo != nil {
			nk.Undo()
		}
		return Record{}, nil, err
	}
	if err := a.Vault.ClearPending(ctx); err != nil { // its key is the staged CA's now
		return rec, chain, fmt.Errorf("staged %s, but remove the pending key: %w", rec.ID, err)
	}
	return rec, chain, nil
}

// DiscardPending removes the pending key, audited as AuditCSRDiscard, so
// that another CSR can start over. NotFound when none waits.
func (a *Admin) DiscardPending(ctx context.Context, actor device.Actor) (Pending, error) {
	p, err := a.Pending(ctx)
	if err != nil {
		return Pending{}, err
	}
	if p == nil {
		return Pending{}, errNoPending
	}
	ev := device.AuditEvent{At: a.Service.now().UTC(), Actor: actor, Action: AuditCSRDiscard, Target: p.ID,
		Detail: fmt.Sprintf("pending key for %s discarded before it was certified (%s)", p.Subject, p.Where)}
	if err := a.Vault.DiscardPending(ctx, ev); err != nil {
		return Pending{}, err
	}
	return *p, nil
}

// beforeChange runs BeforeChange when there is one.
func (a *Admin) beforeChange(ctx context.Context) error {
	if a.BeforeChange == nil {
		return nil
	}
	return a.BeforeChange(ctx)
}

// noIssuing refuses while an issuing CA is in place.
func (a *Admin) noIssuing(ctx context.Context) error {
	r, _, ok, err := a.Service.Issuing(ctx)
	if err != nil {
		return err
	}
	if ok {
		return fault.Conflictf("an issuing CA is in place already (%s, below the CAPF certificate %s): nothing was changed; remove it first (capf ca issuer remove)", r.ID, r.ParentID)
	}
	return nil
}

// IssuerCreate makes an issuing CA key (alg; "" for DefaultAlgorithm)
// and certificate signed by the active CAPF certificate, valid for
// validity (ca.IssuingValidity when 0, never beyond the CAPF
// certificate), and puts it in place, audited as AuditIssuer. Refused
// while one is in place, and when the active CAPF certificate may not
// sign a CA (path length 0).
func (a *Admin) IssuerCreate(ctx context.Context, alg string, validity time.Duration, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	k, err := a.algorithm(alg)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	parent, active, err := a.issuerParent(ctx, validity)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	iss, err := parent.NewIssuing(k, validity)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	return a.putIssuing(ctx, iss.Certificate(), iss.Signer(), parent.Certificate(), fmt.Sprintf("issuing CA (%s) made and signed by the active CAPF certificate %s", k, active.ID), actor)
}

// IssuerCreateRef is IssuerCreate for a key that exists already outside
// the vault, such as a key pair in a PKCS #11 token: the certificate is
// for key (keyName names it in errors), signed by the active CAPF
// certificate, and the issuing CA's record stores keyRef alone, never key
// material.
func (a *Admin) IssuerCreateRef(ctx context.Context, key crypto.Signer, keyRef, keyName string, validity time.Duration, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	if err := CheckPhoneKey(key.Public()); err != nil {
		return IssuingRecord{}, nil, inField("key", fmt.Errorf("%s is %w", keyName, err))
	}
	parent, active, err := a.issuerParent(ctx, validity)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	iss, err := parent.NewIssuingFor(key, validity)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	return a.putIssuingRef(ctx, iss.Certificate(), keyRef, parent.Certificate(), fmt.Sprintf("issuing CA for %s, made and signed by the active CAPF certificate %s", keyRef, active.ID), actor)
}

// issuerParent checks that an issuing CA may be made now (validity not
// negative, a vault to open the parent's key, none in place) and opens
// the active CAPF certificate that signs it.
func (a *Admin) issuerParent(ctx context.Context, validity time.Duration) (*ca.Authority, Record, error) {
	if validity < 0 {
		return nil, Record{}, fault.InvalidField("validity_days", "the validity must be positive")
	}
	if a.Vault == nil {
		return nil, Record{}, errNoVault
	}
	if err := a.noIssuing(ctx); err != nil {
		return nil, Record{}, err
	}
	recs, err := a.Service.list(ctx)
	if err != nil {
		return nil, Record{}, err
	}
	var active Record
	for _, r := range recs {
		if r.State == Active {
			active = r
		}
	}
	if active.ID == "" {
		return nil, Record{}, fault.Invalidf("the CA set has no active CAPF certificate")
	}
	parent, err := a.Vault.OpenKey(ctx, active)
	if err != nil {
		return nil, Record{}, err
	}
	return parent, active, nil
}

// IssuerImport puts an issuing CA made elsewhere in place (certs: its
// certificate alone; key: its key, keyName naming it in errors), audited
// as AuditIssuer: checked by CheckIssuing before anything is written.
func (a *Admin) IssuerImport(ctx context.Context, certs []*x509.Certificate, key crypto.Signer, keyName string, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	parent, err := a.checkIssuerImport(ctx, certs, key.Public(), keyName)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	if a.Vault == nil {
		return IssuingRecord{}, nil, errNoVault
	}
	if err := a.noIssuing(ctx); err != nil {
		return IssuingRecord{}, nil, err
	}
	pid, _ := KeyID(parent)
	return a.putIssuing(ctx, certs[0], key, parent, "issuing CA made elsewhere, signed by the CAPF certificate "+pid, actor)
}

// IssuerImportRef is IssuerImport for a key kept outside the vault, such
// as a key pair in a PKCS #11 token: pub is its public key, and the
// issuing CA's record stores keyRef alone, never key material.
func (a *Admin) IssuerImportRef(ctx context.Context, certs []*x509.Certificate, pub crypto.PublicKey, keyRef, keyName string, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	parent, err := a.checkIssuerImport(ctx, certs, pub, keyName)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	if err := a.noIssuing(ctx); err != nil {
		return IssuingRecord{}, nil, err
	}
	pid, _ := KeyID(parent)
	return a.putIssuingRef(ctx, certs[0], keyRef, parent, "issuing CA made elsewhere for "+keyRef+", signed by the CAPF certificate "+pid, actor)
}

// checkIssuerImport checks certs (the issuing CA certificate alone) for
// the key pub with CheckIssuing against the CAPF certificates of the set
// that are not retired, and returns the one that signed it.
func (a *Admin) checkIssuerImport(ctx context.Context, certs []*x509.Certificate, pub crypto.PublicKey, keyName string) (*x509.Certificate, error) {
	if len(certs) != 1 {
		return nil, fault.InvalidField("certificate", "the certificate given holds %d certificates: give the issuing CA certificate alone (the CAPF certificate above it is in the set)", len(certs))
	}
	recs, err := a.Service.list(ctx)
	if err != nil {
		return nil, err
	}
	var capfs []*x509.Certificate
	for _, r := range recs {
		if !r.State.Trusted() {
			continue
		}
		c, err := r.Certificate()
		if err != nil {
			return nil, err
		}
		capfs = append(capfs, c)
	}
	parent, err := CheckIssuing(certs[0], pub, keyName, capfs, a.Service.now())
	if err != nil {
		if isKeyMismatch(err) {
			return nil, inField("key", err)
		}
		return nil, inField("certificate", err)
	}
	return parent, nil
}

// putIssuing stores cert and key as the issuing CA below parent, with
// its audit line: the key in the vault first (or sealed with the row),
// removed when the row is refused.
func (a *Admin) putIssuing(ctx context.Context, cert *x509.Certificate, key crypto.Signer, parent *x509.Certificate, detail string, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	id, err := KeyID(cert)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	if err := a.beforeChange(ctx); err != nil {
		return IssuingRecord{}, nil, err
	}
	nk, err := a.Vault.PutKey(ctx, IssuingKeyPrefix+id, []*x509.Certificate{cert}, key)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	r, err := a.Service.PutIssuing(ctx, cert, parent, nk.KeyRef, nk.Key, actor, detail)
	if err != nil {
		if nk.Undo != nil {
			nk.Undo() // not stored: not kept
		}
		return IssuingRecord{}, nil, err
	}
	return r, cert, nil
}

// putIssuingRef stores cert as the issuing CA below parent with its key
// named by keyRef (kept outside the vault: nothing is written there), with
// its audit line.
func (a *Admin) putIssuingRef(ctx context.Context, cert *x509.Certificate, keyRef string, parent *x509.Certificate, detail string, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	if err := a.beforeChange(ctx); err != nil {
		return IssuingRecord{}, nil, err
	}
	r, err := a.Service.PutIssuing(ctx, cert, parent, keyRef, nil, actor, detail)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	return r, cert, nil
}

// IssuerRemove takes the issuing CA in place out of place (see
// Service.RemoveIssuing), then moves its key files where keys are files.
func (a *Admin) IssuerRemove(ctx context.Context, force bool, actor device.Actor) (IssuingRecord, int, error) {
	r, n, err := a.Service.RemoveIssuing(ctx, force, actor)
	if err != nil {
		return r, n, err
	}
	if a.Vault != nil {
		if err := a.Vault.RetireIssuingKey(ctx, r.ID); err != nil {
			return r, n, fmt.Errorf("removed the issuing CA %s, but its key files stay where the one in place keeps them: move them to the former issuing CA's place before serve starts again: %w", r.ID, err)
		}
	}
	return r, n, nil
}

// IssuerForget drops the former issuing CA id (see Service.ForgetIssuing),
// then its key files where keys are files.
func (a *Admin) IssuerForget(ctx context.Context, id string, force bool, actor device.Actor) (IssuingRecord, int, error) {
	r, n, err := a.Service.ForgetIssuing(ctx, id, force, actor)
	if err != nil {
		return r, n, err
	}
	if a.Vault != nil {
		if err := a.Vault.ForgetIssuingKey(ctx, r.ID); err != nil {
			return r, n, fmt.Errorf("forgot the former issuing CA %s, but not its key files: remove them: %w", r.ID, err)
		}
	}
	return r, n, nil
}

// ParseSubject reads "CN=…,O=…,OU=…,L=…,ST=…,C=…" (no escaped commas, at
// most 1 KiB); empty is the zero name. Errors blame the field subject.
func ParseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	if strings.TrimSpace(s) == "" {
		return n, nil
	}
	if len(s) > 1024 {
		return n, fault.InvalidField("subject", "the subject is over 1 KiB")
	}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return n, fault.InvalidField("subject", "the subject %q: want attributes like CN=name,O=organisation", s)
		}
		switch k {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "C":
			n.Country = append(n.Country, v)
		default:
			return n, fault.InvalidField("subject", "unknown subject attribute %q (CN, O, OU, L, ST or C)", k)
		}
	}
	return n, nil
}

// CACSR returns a PKCS #10 request for a CA certificate for key:
// basic constraints CA:TRUE (critical) and key usage keyCertSign, cRLSign
// and digitalSignature (keyEncipherment too for RSA, which the legacy TLS
// profile's key exchange needs), as the CAPF's own certificates have.
func CACSR(name pkix.Name, key crypto.Signer) ([]byte, error) {
	bc, err := asn1.Marshal(struct{ IsCA bool }{true})
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	ku, err := keyUsageExtension(usage)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: name, ExtraExtensions: []pkix.Extension{
		{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc},
		ku,
	}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("make the certificate request: %w", err)
	}
	return der, nil
}

// CSRPEM encodes a certificate signing request as PEM.
func CSRPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// keyUsageExtension encodes usage as the key usage extension (critical).
func keyUsageExtension(usage x509.KeyUsage) (pkix.Extension, error) {
	var bits [2]byte
	n := 0
	for i := range 9 {
		if usage&(1<<i) != 0 {
			bits[i/8] |= 0x80 >> (i % 8)
			n = i + 1
		}
	}
	b := asn1.BitString{Bytes: bits[:(n+7)/8], BitLength: n}
	v, err := asn1.Marshal(b)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: v}, nil
}

// KeyAlgorithmOf names the algorithm of pub as ca.KeyAlgorithm does
// (rsa2048, ec256, …); "" for another key.
func KeyAlgorithmOf(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ec%d", k.Curve.Params().BitSize)
	}
	return ""
}
