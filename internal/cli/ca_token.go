package cli

import (
	"context"
	"crypto/x509"
	"fmt"
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
	return &tokenKeyError{cause: err, fe: &fault.Error{Kind: fault.KindOf(err),
		Msg: fmt.Sprintf("CA %s (%s): its key %s: %s", rec.ID, rec.State, rec.KeyRef, fault.Message(err))}}
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
