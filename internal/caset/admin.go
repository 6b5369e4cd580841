package caset

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
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

// KeyAlgorithms are the key algorithms a new CA may have, in the order a
// form offers them.
var KeyAlgorithms = []ca.KeyAlgorithm{ca.RSA2048, ca.RSA3072, ca.RSA4096, ca.ECP256, ca.ECP384}

// NewKey is the key of a new CA as a [KeyMaker] made it.
type NewKey struct {
	// Chain is the new CA's certificate chain, leaf first.
	Chain []*x509.Certificate
	// KeyRef names the key (see Record.KeyRef).
	KeyRef string
	// Key is stored in the keys table with the CA when not nil (a cluster
	// with a KEK); nil when the key is a file already written.
	Key *keys.Record
	// Undo removes a key written outside the database, when the CA could
	// not be stored; nil when there is nothing to remove.
	Undo func()
}

// KeyMaker creates the key and certificate of a new CA where the
// deployment keeps CA keys (files under DATA/ca, or sealed under the
// cluster's KEK).
type KeyMaker interface {
	NewCAKey(ctx context.Context, alg ca.KeyAlgorithm) (NewKey, error)
}

// Admin is what an administrator does with the CA set, the same for the
// CLI, the REST API and the web UI: the status of every CA, and
// regenerate, activate and retire with their rules. Every change is
// audited in the transaction that makes it (see [Service]).
type Admin struct {
	// Service validates and audits the changes.
	Service *Service
	// Keys makes the key of a regenerated CA; nil refuses regenerate.
	Keys KeyMaker
	// Vault stores the keys of CAs made elsewhere, the offline CA's
	// pending key and the issuing CA's; nil refuses those actions.
	Vault KeyVault
	// BeforeChange, when not nil, runs once every check of an action that
	// adds to the set or the issuing CA passed, right before its key is
	// written: the CLI adopts the CAPF certificate of before the set there
	// (serve did at start), so that a refusal leaves the store as it was.
	BeforeChange func(ctx context.Context) error
	// DefaultAlgorithm is the key algorithm of a regenerated CA when none
	// is given (the capf_key parameter); RSA 2048 when nil.
	DefaultAlgorithm func() ca.KeyAlgorithm
	// RSAOnly reports whether the active CA must have an RSA key
	// (tls_profile legacy); nil: never.
	RSAOnly func() bool
	// Listed returns the certificates the trust file serve keeps lists
	// with the CAPF role, and its path: nil (not empty) when serve keeps
	// no trust file. nil: InTrustFile is left unknown.
	Listed func() ([][]byte, string, error)
	// Tokens opens the key pair a pkcs11: reference names in the node's
	// PKCS #11 token (the module and PIN the node was given); nil refuses
	// keys in a token: the node has no module.
	Tokens func(ctx context.Context, ref string) (TokenKey, error)
	// SelfSign makes the CAPF certificate of a new CA over key, as
	// regenerate makes them; nil refuses a new CA whose key is in a token.
	SelfSign func(key crypto.Signer) (*x509.Certificate, error)
}

// TokenKey is a key pair in a PKCS #11 token that the node opened.
type TokenKey struct {
	// Ref is its canonical reference, pkcs11:token=…;object=…, which the
	// record stores instead of key material.
	Ref string
	// Signer signs in the token.
	Signer crypto.Signer
	// Close releases it.
	Close func() error
}

// TokensAvailable reports whether this node opens keys in a PKCS #11
// token (a form then offers them).
func (a *Admin) TokensAvailable() bool { return a.Tokens != nil }

// CheckKeyChoice refuses a request that asks for a new key of algorithm
// alg and names a token's key pair key at once (the field key is blamed).
func CheckKeyChoice(alg, key string) error {
	if alg != "" && key != "" {
		return fault.InvalidField("key", "key_algorithm makes a new key; key uses the token's key pair as it is: give one of them")
	}
	return nil
}

// errNoTokens refuses a key in a token where the node opens none.
var errNoTokens = fault.InvalidField("key", "this node opens no PKCS #11 token: give capf serve the vendor's module and the PIN file (pkcs11_module and pkcs11_pin_file in capf.json, or --pkcs11-module and --pin-file), or make a new key instead")

// openToken opens the key pair ref names in the node's token; errors
// blame the field key.
func (a *Admin) openToken(ctx context.Context, ref string) (TokenKey, error) {
	if a.Tokens == nil {
		return TokenKey{}, errNoTokens
	}
	k, err := a.Tokens(ctx, ref)
	if err != nil {
		return TokenKey{}, inField("key", err)
	}
	return k, nil
}

// RegenerateInToken stages a new CA whose key is the key pair ref names in
// the node's PKCS #11 token: the key signs its own CAPF certificate there,
// and the set stores the reference alone, never key material. It refuses
// a key phones do not accept, or that tls_profile legacy could not
// present.
func (a *Admin) RegenerateInToken(ctx context.Context, ref string, actor device.Actor) (Record, error) {
	if a.SelfSign == nil {
		return Record{}, errNoTokens
	}
	k, err := a.openToken(ctx, ref)
	if err != nil {
		return Record{}, err
	}
	defer func() { _ = k.Close() }()
	if err := CheckPhoneKey(k.Signer.Public()); err != nil {
		return Record{}, inField("key", fmt.Errorf("the key %s is %w", k.Ref, err))
	}
	if _, isRSA := k.Signer.Public().(*rsa.PublicKey); a.RSAOnly != nil && a.RSAOnly() && !isRSA {
		return Record{}, fault.InvalidField("key", "tls_profile legacy needs an RSA CAPF key: the key %s would not serve old phones", k.Ref)
	}
	cert, err := a.SelfSign(k.Signer)
	if err != nil {
		return Record{}, fmt.Errorf("the key %s: %w", k.Ref, err)
	}
	return a.Service.Stage(ctx, []*x509.Certificate{cert}, k.Ref, nil, actor)
}

// IsTokenRef reports whether the key field of an import names a key pair
// in the node's PKCS #11 token (a pkcs11: reference) rather than holding
// a PEM key.
func IsTokenRef(key string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(key)), "pkcs11:")
}

// ImportInToken is Import for a CAPF certificate made elsewhere whose key
// pair is the one ref names in the node's PKCS #11 token: checked against
// the token's public key, and the set stores the reference alone.
func (a *Admin) ImportInToken(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, ref string, actor device.Actor) (Record, []*x509.Certificate, error) {
	k, err := a.openToken(ctx, strings.TrimSpace(ref))
	if err != nil {
		return Record{}, nil, err
	}
	defer func() { _ = k.Close() }()
	chain, err := a.checkMadeElsewhere(leaf, more, k.Signer.Public(), "the key "+k.Ref)
	if err != nil {
		return Record{}, nil, err
	}
	if _, err := a.readyToStage(ctx, chain); err != nil {
		return Record{}, nil, err
	}
	rec, err := a.Service.StageMadeElsewhere(ctx, chain, k.Ref, nil, AuditImport, actor)
	return rec, chain, err
}

// IssuerImportInToken is IssuerImportRef for the key pair ref names in the
// node's PKCS #11 token.
func (a *Admin) IssuerImportInToken(ctx context.Context, certs []*x509.Certificate, ref string, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	k, err := a.openToken(ctx, strings.TrimSpace(ref))
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	defer func() { _ = k.Close() }()
	return a.IssuerImportRef(ctx, certs, k.Signer.Public(), k.Ref, "the key "+k.Ref, actor)
}

// IssuerCreateInToken is IssuerCreateRef for the key pair ref names in the
// node's PKCS #11 token.
func (a *Admin) IssuerCreateInToken(ctx context.Context, ref string, validity time.Duration, actor device.Actor) (IssuingRecord, *x509.Certificate, error) {
	k, err := a.openToken(ctx, ref)
	if err != nil {
		return IssuingRecord{}, nil, err
	}
	defer func() { _ = k.Close() }()
	return a.IssuerCreateRef(ctx, k.Signer, k.Ref, "the key "+k.Ref, validity, actor)
}

// Row is one CA as `capf ca status`, GET /api/v1/ca-set and Security >
// CAPF Certificate show it.
type Row struct {
	ID        string    `json:"id" doc:"the hex of the certificate's subject key identifier"`
	State     State     `json:"state" enum:"staged,active,retiring,retired"`
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial" doc:"hex, upper case"`
	SHA256    string    `json:"sha256" doc:"of the DER, hex, lower case"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Phones is how many devices hold a valid LSC the CA issued.
	Phones int `json:"phones" doc:"devices holding a valid LSC this CA issued"`
	// InTrustFile reports whether the trust file serve keeps lists it;
	// nil when serve keeps none.
	InTrustFile *bool     `json:"in_trust_file" doc:"whether the trust file serve keeps lists it; null when it keeps none"`
	ChangedAt   time.Time `json:"changed_at,omitzero"`
}

// Overview is the CA set with the trust file it was compared with.
type Overview struct {
	CAs []Row
	// TrustFile is the path of the trust file serve keeps ("" when none;
	// it may say "(missing)" or "(does not parse)").
	TrustFile string
	// Cert holds the parsed certificate of every row, by id.
	Cert map[string]*x509.Certificate
	// Issuing is the issuing CA in place; nil when there is none.
	Issuing *IssuingRow
	// FormerIssuing are the issuing CAs taken out of place that are still
	// trusted for their LSCs, oldest removal first.
	FormerIssuing []IssuingRow
}

// Active returns the row of the active CA; false when there is none.
func (o Overview) Active() (Row, bool) {
	for _, r := range o.CAs {
		if r.State == Active {
			return r, true
		}
	}
	return Row{}, false
}

// Status returns every CA, oldest first, with the phones holding its
// LSCs and whether the served trust file lists it.
func (a *Admin) Status(ctx context.Context) (Overview, error) {
	var listed [][]byte
	var path string
	if a.Listed != nil {
		var err error
		if listed, path, err = a.Listed(); err != nil {
			return Overview{}, err
		}
	}
	sts, err := a.Service.Status(ctx)
	if err != nil {
		return Overview{}, err
	}
	out := Overview{TrustFile: path, Cert: make(map[string]*x509.Certificate, len(sts))}
	for _, s := range sts {
		sum := sha256.Sum256(s.Cert.Raw)
		r := Row{ID: s.ID, State: s.State, Subject: s.Cert.Subject.String(), Serial: fmt.Sprintf("%X", s.Cert.SerialNumber.Bytes()),
			SHA256: hex.EncodeToString(sum[:]), NotBefore: s.Cert.NotBefore.UTC(), NotAfter: s.Cert.NotAfter.UTC(), Phones: s.Holders, ChangedAt: s.ChangedAt.UTC()}
		if listed != nil {
			in := false
			for _, c := range listed {
				in = in || bytes.Equal(c, s.Cert.Raw)
			}
			r.InTrustFile = &in
		}
		out.CAs = append(out.CAs, r)
		out.Cert[s.ID] = s.Cert
	}
	if out.Issuing, err = a.Service.IssuingStatus(ctx); err != nil {
		return Overview{}, err
	}
	if out.FormerIssuing, err = a.Service.FormerIssuingStatus(ctx); err != nil {
		return Overview{}, err
	}
	return out, nil
}

// Certificate returns the certificate of the CA ref names (its id, a
// unique prefix of 8 hex digits or more, or its serial), or of the active
// CA when ref is empty.
func (a *Admin) Certificate(ctx context.Context, ref string) (*x509.Certificate, error) {
	recs, err := a.Service.list(ctx)
	if err != nil {
		return nil, err
	}
	var rec Record
	if ref == "" {
		for _, r := range recs {
			if r.State == Active {
				rec = r
			}
		}
		if rec.ID == "" {
			return nil, fault.NotFoundf("the CA set has no active CA")
		}
	} else if rec, err = Find(recs, ref); err != nil {
		return nil, err
	}
	return rec.Certificate()
}

// Regenerate creates a new CA with a key of algorithm alg (a name
// ca.ParseKeyAlgorithm takes; "" for DefaultAlgorithm) and stages it:
// listed in trust files at once, presented to phones once activated. It
// refuses a key that tls_profile legacy could not present.
func (a *Admin) Regenerate(ctx context.Context, alg string, actor device.Actor) (Record, ca.KeyAlgorithm, error) {
	k := ca.RSA2048
	if a.DefaultAlgorithm != nil {
		k = a.DefaultAlgorithm()
	}
	if alg != "" {
		var err error
		if k, err = ca.ParseKeyAlgorithm(alg); err != nil {
			return Record{}, "", fault.InvalidField("key_algorithm", "%s", fault.Message(err))
		}
	}
	if a.RSAOnly != nil && a.RSAOnly() && k != ca.RSA2048 && k != ca.RSA3072 && k != ca.RSA4096 {
		return Record{}, "", fault.InvalidField("key_algorithm", "tls_profile legacy needs an RSA CAPF key: a %s key would not serve old phones", k)
	}
	if a.Keys == nil {
		return Record{}, "", fault.Invalidf("new CAPF keys cannot be made here")
	}
	nk, err := a.Keys.NewCAKey(ctx, k)
	if err != nil {
		return Record{}, "", err
	}
	rec, err := a.Service.Stage(ctx, nk.Chain, nk.KeyRef, nk.Key, actor)
	if err != nil {
		if nk.Undo != nil {
			nk.Undo() // never stored: nothing refers to it
		}
		return Record{}, "", err
	}
	return rec, k, nil
}

// Activate makes the staged CA ref names (the only staged one when ref is
// empty) the active CA (see Service.Activate).
func (a *Admin) Activate(ctx context.Context, ref string, actor device.Actor) (activated, previous Record, err error) {
	return a.Service.Activate(ctx, ref, actor)
}

// Retire retires the CA ref names (see Service.Retire).
func (a *Admin) Retire(ctx context.Context, ref string, force bool, actor device.Actor) (Record, int, error) {
	return a.Service.Retire(ctx, ref, force, actor)
}
