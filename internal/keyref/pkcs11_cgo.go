//go:build cgo

package keyref

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/capf-server/capf/internal/fault"
)

// logins are the tokens this process is logged in to, through the keys it
// holds open. PKCS #11 login belongs to the application, not to a session:
// while one key of a token is open, logging in again for another key of
// it succeeds whatever the PIN (crypto11 takes CKR_USER_ALREADY_LOGGED_IN
// as success). So the PIN of the first login is remembered (its SHA-256)
// and a later load of the same token with another PIN is refused as the
// token would refuse it: a token has one user PIN.
var logins = struct {
	mu sync.Mutex // held across a login, so that two loads cannot both pass the check
	m  map[tokenLogin]*login
}{m: map[tokenLogin]*login{}}

// tokenLogin names a token of a module.
type tokenLogin struct{ module, token string }

// login is one token's login: its PIN's SHA-256 and how many keys hold it.
type login struct {
	pin  [sha256.Size]byte
	keys int
}

// loadPKCS11 logs into the token ref names and finds its key pair.
func loadPKCS11(ctx context.Context, ref Ref, opts Options, pin string) (*Key, error) {
	at := tokenLogin{module: opts.Module, token: ref.Token}
	sum := sha256.Sum256([]byte(pin))
	logins.mu.Lock()
	defer logins.mu.Unlock()
	if l := logins.m[at]; l != nil && subtle.ConstantTimeCompare(l.pin[:], sum[:]) != 1 {
		return nil, fail(ErrWrongPIN, fault.Unauthorized,
			"token %q refused the PIN in %s: this process is logged in to it with another PIN, and a token has one", ref.Token, opts.PINFile)
	}
	k, err := openPKCS11(ctx, ref, opts, pin)
	if err != nil {
		return nil, err
	}
	l := logins.m[at]
	if l == nil {
		l = &login{pin: sum}
		logins.m[at] = l
	}
	l.keys++
	closeToken := k.close
	k.close = func() error {
		err := closeToken()
		logins.mu.Lock()
		defer logins.mu.Unlock()
		if l.keys--; l.keys == 0 && logins.m[at] == l {
			delete(logins.m, at)
		}
		return err
	}
	return k, nil
}

// openPKCS11 logs into the token ref names and finds its key pair.
func openPKCS11(ctx context.Context, ref Ref, opts Options, pin string) (*Key, error) {
	c, found, err := findPKCS11(ctx, ref, opts, pin)
	if err != nil {
		return nil, err
	}
	h := &tokenHandle{ref: ref, opts: opts, pin: pin, pub: found.Public(), ctx: c, key: found}
	var s crypto.Signer
	switch found.Public().(type) {
	case *rsa.PublicKey:
		if _, ok := found.(crypto11.SignerDecrypter); !ok {
			_ = c.Close()
			return nil, fail(ErrToken, fault.Internal, "token %q: RSA key %s cannot decrypt", ref.Token, ref)
		}
		s = &tokenRSA{ref: ref, h: h}
	case *ecdsa.PublicKey:
		s = &tokenECDSA{ref: ref, h: h}
	default:
		_ = c.Close()
		return nil, fail(ErrUnsupportedKey, fault.Invalid, "key %s in token %q is a %T: want RSA or ECDSA", ref, ref.Token, found.Public())
	}
	return &Key{ref: ref, signer: s, close: h.close}, nil
}

// findPKCS11 opens a context on the token ref names, logged in with pin,
// and finds its one key pair.
func findPKCS11(ctx context.Context, ref Ref, opts Options, pin string) (*crypto11.Context, crypto11.Signer, error) {
	c, err := crypto11.Configure(&crypto11.Config{
		Path:            opts.Module,
		TokenLabel:      ref.Token,
		Pin:             pin,
		PoolWaitTimeout: opts.SessionWait,
	})
	if err != nil {
		return nil, nil, configureErr(ref, opts, err)
	}
	if err := ctx.Err(); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("load key %s: %w", ref, err)
	}
	var label []byte
	if ref.Object != "" {
		label = []byte(ref.Object)
	}
	found, err := c.FindKeyPairs(ref.ID, label)
	if err != nil {
		_ = c.Close()
		return nil, nil, failCause(err, ErrToken, fault.Internal, "token %q: find key %s: %v", ref.Token, ref, err)
	}
	switch {
	case len(found) == 0:
		_ = c.Close()
		return nil, nil, fail(ErrNoObject, fault.NotFound, "token %q holds no key pair %s (a private key needs its public key object with the same CKA_ID)", ref.Token, ref)
	case len(found) > 1:
		_ = c.Close()
		return nil, nil, fail(ErrBadReference, fault.Conflict, "%s matches %d key pairs in token %q: add id=… to choose one", ref, len(found), ref.Token)
	}
	return c, found[0], nil
}

// tokenHandle is a key pair found in a token, and what finds it again.
// When the token forgets this process (the HSM or its daemon restarted,
// a network HSM dropped the connection), the sessions and the login are
// gone and every operation fails: an operation that fails so opens the key
// again (a new context: sessions and login, with the PIN it was loaded
// with) and is tried once more. A key found again must have the public
// key first loaded.
type tokenHandle struct {
	ref  Ref
	opts Options
	pin  string
	pub  crypto.PublicKey

	mu     sync.Mutex
	gen    uint64 // counts the re-openings
	ctx    *crypto11.Context
	key    crypto11.Signer
	closed bool
}

// current returns the key in use and its generation.
func (h *tokenHandle) current() (crypto11.Signer, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.key, h.gen
}

// do runs op with the key. When op fails because the token forgot this
// process, or because another operation opened the key again meanwhile,
// it opens the key again (once per forgetting, whoever comes first) and
// runs op once more.
func (h *tokenHandle) do(op func(crypto11.Signer) error) error {
	key, gen := h.current()
	err := op(key)
	if err == nil {
		return nil
	}
	if _, now := h.current(); now == gen && !tokenForgot(err) {
		return err
	}
	if rerr := h.reopen(gen); rerr != nil {
		return fmt.Errorf("%w; logging in to token %q again failed: %v", err, h.ref.Token, fault.Message(rerr))
	}
	key, _ = h.current()
	return op(key)
}

// reopen opens the key again unless it was opened again since generation
// gen, and closes the context it replaces.
func (h *tokenHandle) reopen(gen uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fail(ErrToken, fault.Unavailable, "key %s is closed", h.ref)
	}
	if h.gen != gen {
		return nil
	}
	c, key, err := findPKCS11(context.Background(), h.ref, h.opts, h.pin)
	if err != nil {
		return err
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(h.pub) {
		_ = c.Close()
		return fail(ErrToken, fault.Conflict, "token %q: %s is another key pair than the one loaded at start", h.ref.Token, h.ref)
	}
	if _, rsaKey := h.pub.(*rsa.PublicKey); rsaKey {
		if _, ok := key.(crypto11.SignerDecrypter); !ok {
			_ = c.Close()
			return fail(ErrToken, fault.Internal, "token %q: RSA key %s cannot decrypt", h.ref.Token, h.ref)
		}
	}
	old := h.ctx
	h.ctx, h.key, h.gen = c, key, h.gen+1
	_ = old.Close()
	return nil
}

// close releases the context.
func (h *tokenHandle) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return h.ctx.Close()
}

// tokenForgot reports whether err says that the token no longer knows
// this process's session or login, or is gone: opening the key again may
// help.
func tokenForgot(err error) bool {
	var p11 pkcs11.Error
	if !errors.As(err, &p11) {
		return false
	}
	switch p11 {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return true
	}
	return false
}

// configureErr maps a failure to open the module, find the token or log
// in to a specific error.
func configureErr(ref Ref, opts Options, err error) error {
	var p11 pkcs11.Error
	msg := err.Error()
	switch {
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_INVALID || p11 == pkcs11.CKR_PIN_LEN_RANGE):
		return failCause(err, ErrWrongPIN, fault.Unauthorized, "token %q refused the PIN in %s", ref.Token, opts.PINFile)
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_LOCKED:
		return failCause(err, ErrWrongPIN, fault.Unauthorized, "token %q: the PIN is locked (too many wrong PINs): the token's security officer must unlock it", ref.Token)
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return failCause(err, ErrNoToken, fault.NotFound, "no PKCS #11 token labelled %q in module %s", ref.Token, opts.Module)
	case strings.Contains(msg, "failed to open module"):
		return failCause(err, ErrNoModule, fault.Invalid, "%s is not a PKCS #11 module (it does not load as a shared library with C_GetFunctionList)", opts.Module)
	case strings.Contains(msg, "failed to initialize module"):
		return failCause(err, ErrToken, fault.Unavailable, "PKCS #11 module %s failed to initialize (check its configuration): %v", opts.Module, err)
	}
	return failCause(err, ErrToken, fault.Unavailable, "token %q in module %s: %v", ref.Token, opts.Module, err)
}

// tokenRSA is an RSA key in a token: a crypto.Signer and crypto.Decrypter
// whose private half never leaves the token.
type tokenRSA struct {
	ref Ref
	h   *tokenHandle
}

// Public implements crypto.Signer.
func (t *tokenRSA) Public() crypto.PublicKey { return t.h.pub }

// Sign implements crypto.Signer: PKCS #1 v1.5, or PSS with
// rsa.PSSOptions. PSSSaltLengthAuto (which PKCS #11 cannot express) signs
// with a salt as long as the hash, which every PSS verifier accepts.
func (t *tokenRSA) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*rsa.PSSOptions); ok && o.SaltLength == rsa.PSSSaltLengthAuto {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: o.Hash}
	}
	var sig []byte
	err := t.h.do(func(k crypto11.Signer) (err error) {
		sig, err = k.Sign(r, digest, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("PKCS #11 sign with %s: %w", t.ref, err)
	}
	return sig, nil
}

// decrypt decrypts msg in the token.
func (t *tokenRSA) decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	var pt []byte
	err := t.h.do(func(k crypto11.Signer) (err error) {
		pt, err = k.(crypto11.SignerDecrypter).Decrypt(r, msg, opts)
		return err
	})
	return pt, err
}

// Decrypt implements crypto.Decrypter: PKCS #1 v1.5 or OAEP. With
// rsa.PKCS1v15DecryptOptions{SessionKeyLen: n} (how crypto/tls decrypts a
// pre-master secret) it behaves as rsa.DecryptPKCS1v15SessionKey: a
// ciphertext that does not decrypt to n bytes gives n random bytes, not an
// error, so that a TLS client cannot tell a padding failure from a wrong
// key (Bleichenbacher). The token's own timing is the vendor's concern.
func (t *tokenRSA) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	//lint:ignore SA1019 crypto/tls's RSA key exchange (the legacy profile, for 79xx phones) decrypts with exactly this option
	if o, ok := opts.(*rsa.PKCS1v15DecryptOptions); ok && o.SessionKeyLen > 0 {
		if r == nil {
			r = rand.Reader
		}
		key := make([]byte, o.SessionKeyLen)
		if _, err := io.ReadFull(r, key); err != nil {
			return nil, err
		}
		//lint:ignore SA1019 see above: the token undoes the padding, this function hides its failure
		pt, err := t.decrypt(r, msg, &rsa.PKCS1v15DecryptOptions{})
		if err == nil && len(pt) == len(key) {
			subtle.ConstantTimeCopy(1, key, pt)
		}
		return key, nil
	}
	pt, err := t.decrypt(r, msg, opts)
	if err != nil {
		return nil, fmt.Errorf("PKCS #11 decrypt with %s: %w", t.ref, err)
	}
	return pt, nil
}

// tokenECDSA is an ECDSA key in a token.
type tokenECDSA struct {
	ref Ref
	h   *tokenHandle
}

// Public implements crypto.Signer.
func (t *tokenECDSA) Public() crypto.PublicKey { return t.h.pub }

// Sign implements crypto.Signer with an ASN.1 DER signature, as
// ecdsa.PrivateKey.Sign gives.
func (t *tokenECDSA) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var sig []byte
	err := t.h.do(func(k crypto11.Signer) (err error) {
		sig, err = k.Sign(r, digest, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("PKCS #11 sign with %s: %w", t.ref, err)
	}
	return sig, nil
}
