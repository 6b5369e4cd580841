package cli

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
)

// A CA whose key stays in a PKCS #11 token (ADR 0017, "CA keys in a
// token") has the key's pkcs11: reference as its record's KeyRef, in its
// canonical form: the reference, never key material, on either backend.
// A node opens it through keyref with its own --pkcs11-module and
// --pin-file, so every node of a cluster needs the module and the PIN of
// a token holding that key (a network HSM, or tokens cloned by the HSM's
// own tools).

// isTokenKeyRef reports whether the CA key reference ref names a key in a
// PKCS #11 token, rather than a key file or a row of the keys table.
func isTokenKeyRef(ref string) bool {
	scheme, _, ok := strings.Cut(ref, ":")
	return ok && strings.EqualFold(scheme, keyref.Scheme)
}

// tokenKeys are the token keys a process opened for its CAs: each holds a
// session with the token until Close.
type tokenKeys struct {
	mu   sync.Mutex
	keys []*keyref.Key
}

// add keeps k until closeAll; on a nil t (a globals made by a test) k
// stays open until the process ends.
func (t *tokenKeys) add(k *keyref.Key) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys = append(t.keys, k)
}

// closeAll closes every key kept; the authorities over them sign no more.
func (t *tokenKeys) closeAll() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.keys {
		_ = k.Close()
	}
	t.keys = nil
}

// tokenAuthority opens the token key of rec (with g.p11) and returns the
// authority of rec's certificate over it. Every error names the CA and
// the reference.
func (g *globals) tokenAuthority(ctx context.Context, rec caset.Record, cert *x509.Certificate, opts ca.Options) (*ca.Authority, error) {
	k, err := keyref.LoadString(ctx, rec.KeyRef, g.p11)
	if err != nil {
		return nil, nameTokenKey(rec, err)
	}
	a, err := ca.New(cert, k.Signer(), opts)
	if err != nil {
		_ = k.Close()
		return nil, nameTokenKey(rec, err)
	}
	g.tokenKeys.add(k)
	return a, nil
}

// caImportToken stages cert (and the chain of chainFiles) as a CA whose
// key is ref's key in a PKCS #11 token: the key is opened to check that
// the certificate is its own, and the set stores only the reference.
func (g *globals) caImportToken(ctx context.Context, ref keyref.Ref, certFiles []string) error {
	leaf, more, err := readCertFiles(certFiles...)
	if err != nil {
		return err
	}
	k, err := keyref.Load(ctx, ref, g.p11)
	if err != nil {
		return fmt.Errorf("the CA key: %w", err)
	}
	defer k.Close()
	chain, err := caset.CheckImport(leaf, more, k.Public(), "the key "+ref.String(), time.Now())
	if err != nil {
		return err
	}
	st, _, err := g.caMadeElsewhereStore(ctx, k.Public())
	if err != nil {
		return err
	}
	defer st.Close()
	rec, err := caset.NewService(st, nil).StageMadeElsewhere(ctx, chain, ref.String(), nil, caset.AuditImport, g.actor())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "its key stays in the token: %s (serve needs --pkcs11-module and --pin-file for it)\n", ref)
	g.printStaged(rec, chain)
	return nil
}

// tokenKeyError is the refusal of a CA's token key with the CA and the
// reference in its message, which is what the CLI prints and the log
// says: keyref's own message names the token, not the CA.
type tokenKeyError struct {
	fe    *fault.Error
	cause error
}

func (e *tokenKeyError) Error() string { return e.fe.Msg }

// Unwrap gives errors.As the named fault first, and errors.Is keyref's
// sentinels.
func (e *tokenKeyError) Unwrap() []error { return []error{e.fe, e.cause} }

// nameTokenKey returns err (of the kind it has) with a message naming
// rec's CA and its key reference.
func nameTokenKey(rec caset.Record, err error) error {
	msg := fault.Message(err)
	if !strings.Contains(msg, rec.KeyRef) {
		msg = "its key " + rec.KeyRef + ": " + msg
	}
	name := "CA " + rec.ID
	if rec.State != "" { // the issuing CA's record has no state
		name += " (" + string(rec.State) + ")"
	}
	return &tokenKeyError{cause: err, fe: &fault.Error{Kind: fault.KindOf(err),
		Msg: fmt.Sprintf("%s: %s", name, msg)}}
}

// caRegenerateToken stages a new CA for the key pair ref names in a PKCS
// #11 token: the key signs its own CAPF certificate in the token, and
// the set stores only the reference.
func (g *globals) caRegenerateToken(ctx context.Context, keyArg string) error {
	ref, err := keyref.Parse(keyArg)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	if !ref.IsPKCS11() {
		return usagef("--key %s: want a key in a PKCS #11 token, pkcs11:token=LABEL;object=NAME (capf ca import takes a key file with its certificate)", ref)
	}
	k, err := keyref.Load(ctx, ref, g.p11)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	defer k.Close()
	if err := caset.CheckPhoneKey(k.Public()); err != nil {
		return fmt.Errorf("--key %s is %w", ref, err)
	}
	st, cfg, err := g.caMadeElsewhereStore(ctx, k.Public())
	if err != nil {
		return err
	}
	defer st.Close()
	cert, err := ca.SelfSign(k.Signer(), g.caOptions(cfg))
	if err != nil {
		return fmt.Errorf("--key %s: %w", ref, err)
	}
	rec, err := caset.NewService(st, nil).Stage(ctx, []*x509.Certificate{cert}, ref.String(), nil, g.actor())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "its key stays in the token: %s (serve needs --pkcs11-module and --pin-file for it)\n", ref)
	g.printStaged(rec, []*x509.Certificate{cert})
	return nil
}

// tokenOnly stands for a token CA's key in a command that has no token
// (no --pkcs11-module): it has the public key, and refuses to sign.
type tokenOnly struct {
	ref string
	pub crypto.PublicKey
}

// Public returns the key's public key.
func (t tokenOnly) Public() crypto.PublicKey { return t.pub }

// Sign refuses: only serve, with the token's module and PIN, signs.
func (t tokenOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, fault.Invalidf("the CA key %s is in a PKCS #11 token: only capf serve, given --pkcs11-module and --pin-file, signs with it", t.ref)
}

// tokenCertAuthority returns the authority of rec's certificate over a
// key that refuses to sign (tokenOnly), with legacy's further LSC
// issuers: for the commands that show, export or compare the active
// certificate without opening the token.
func (g *globals) tokenCertAuthority(rec caset.Record, legacy *ca.Authority) (*ca.Authority, error) {
	chain, err := x509.ParseCertificates(rec.Chain)
	if err != nil || len(chain) == 0 {
		return nil, fault.Invalidf("CA %s: the certificate chain does not parse: %v", rec.ID, err)
	}
	a, err := ca.New(chain[0], tokenOnly{ref: rec.KeyRef, pub: chain[0].PublicKey}, ca.Options{})
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", rec.ID, err)
	}
	if err := a.SetChain(chain[1:]); err != nil {
		return nil, fmt.Errorf("CA %s: %w", rec.ID, err)
	}
	a.TrustLSCIssuers(legacy.LSCIssuers()...)
	return a, nil
}
