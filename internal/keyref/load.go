package keyref

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// maxPIN bounds the PIN read from a PIN file; PKCS #11 tokens take far
// shorter ones.
const maxPIN = 256

// Options says how to open a PKCS #11 reference; a file reference needs
// none of it.
type Options struct {
	// Module is the path of the vendor's PKCS #11 module (a shared
	// library, e.g. /usr/lib/softhsm/libsofthsm2.so).
	Module string
	// PINFile holds the token's user PIN (one line; a trailing newline is
	// ignored). It must not be accessible by group or others.
	PINFile string
	// SessionWait bounds how long a signature waits for a free session
	// with the token; zero means 30 seconds.
	SessionWait time.Duration
}

// Key is a loaded private key. Close releases the token session of a
// PKCS #11 key; a file key needs no Close, but it does no harm.
type Key struct {
	ref    Ref
	signer crypto.Signer
	close  func() error
}

// Ref returns the reference the key was loaded from.
func (k *Key) Ref() Ref { return k.ref }

// Signer returns the key as a crypto.Signer. For a file key it is the
// *rsa.PrivateKey or *ecdsa.PrivateKey itself; for an RSA key in a token
// it is also a crypto.Decrypter (see Decrypter).
func (k *Key) Signer() crypto.Signer { return k.signer }

// Public returns the key's public key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Decrypter returns the key as a crypto.Decrypter: RSA keys only (the
// legacy TLS profile's RSA key exchange). A token key decrypts with
// rsa.PKCS1v15DecryptOptions{SessionKeyLen: n} as crypto/tls asks: on any
// failure it returns n random bytes instead of an error.
func (k *Key) Decrypter() (crypto.Decrypter, error) {
	if _, ok := k.signer.Public().(*rsa.PublicKey); !ok {
		return nil, fail(ErrNotDecrypter, fault.Invalid, "key %s is not an RSA key: it cannot decrypt (the legacy TLS profile's RSA key exchange needs an RSA key)", k.ref)
	}
	d, ok := k.signer.(crypto.Decrypter)
	if !ok {
		return nil, fail(ErrNotDecrypter, fault.Invalid, "key %s cannot decrypt", k.ref)
	}
	return d, nil
}

// Close releases what the key holds open. It is safe to call more than
// once.
func (k *Key) Close() error {
	if k.close == nil {
		return nil
	}
	c := k.close
	k.close = nil
	return c()
}

// Load opens the key ref names: a PEM file (see ReadKeyFile) or a key in a
// PKCS #11 token (opts.Module and opts.PINFile are required then). Every
// error wraps one of this package's sentinels.
func Load(ctx context.Context, ref Ref, opts Options) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load key %s: %w", ref, err)
	}
	if !ref.IsPKCS11() {
		if ref.Path == "" {
			return nil, bad("empty key reference")
		}
		s, err := ReadKeyFile(ref.Path)
		if err != nil {
			return nil, err
		}
		return &Key{ref: ref, signer: s}, nil
	}
	if opts.Module == "" {
		return nil, fail(ErrNoModule, fault.Invalid, "key %s is in a PKCS #11 token: give the vendor's module with --pkcs11-module PATH (capf serve: or pkcs11_module in capf.json)", ref)
	}
	if st, err := os.Stat(opts.Module); err != nil {
		return nil, failCause(err, ErrNoModule, fault.NotFound, "PKCS #11 module %s: %v", opts.Module, err)
	} else if st.IsDir() {
		return nil, fail(ErrNoModule, fault.Invalid, "PKCS #11 module %s is a directory, not a shared library", opts.Module)
	}
	pin, err := ReadPINFile(opts.PINFile)
	if err != nil {
		return nil, err
	}
	if opts.SessionWait <= 0 {
		opts.SessionWait = 30 * time.Second
	}
	return loadPKCS11(ctx, ref, opts, pin)
}

// LoadString is Parse followed by Load.
func LoadString(ctx context.Context, s string, opts Options) (*Key, error) {
	ref, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return Load(ctx, ref, opts)
}

// ReadPINFile reads a token PIN from path: the file must exist, be
// accessible only by its owner (0600 or stricter), and hold one non-empty
// line of at most 256 bytes; a trailing newline (LF or CRLF) is dropped.
func ReadPINFile(path string) (string, error) {
	if path == "" {
		return "", fail(ErrPINFile, fault.Invalid, "a PKCS #11 key needs the token's PIN: give --pin-file FILE (mode 0600; capf serve: or pkcs11_pin_file in capf.json)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fileErr(ErrPINFile, path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fail(ErrPINFile, fault.Invalid, "PIN file %s is not a regular file", path)
	}
	if m := st.Mode().Perm(); runtime.GOOS != "windows" && m&0o077 != 0 {
		return "", fail(ErrPINFile, fault.Invalid, "PIN file %s is accessible by group or others (mode %04o); refusing to use it: run `chmod 600 %s` (and change the PIN if others may have read it)", path, m, path)
	}
	b, err := readBounded(path, maxPIN+2)
	if err != nil {
		return "", fileErr(ErrPINFile, path, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return "", fail(ErrPINFile, fault.Invalid, "PIN file %s is empty", path)
	case len(b) > maxPIN:
		return "", fail(ErrPINFile, fault.Invalid, "PIN file %s: PIN longer than %d bytes", path, maxPIN)
	case bytes.ContainsAny(b, "\n\x00"):
		return "", fail(ErrPINFile, fault.Invalid, "PIN file %s: want the PIN alone on one line", path)
	}
	return string(b), nil
}
