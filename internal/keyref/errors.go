package keyref

import (
	"errors"
	"fmt"

	"github.com/capf-server/capf/internal/fault"
)

// The sentinels every error of Parse and Load wraps, so that callers and
// tests can tell the failures apart with errors.Is.
var (
	// ErrBadReference: the text is not a key reference this package
	// understands (unknown scheme, unknown or repeated URI attribute, a
	// PIN inside the URI, missing token or object).
	ErrBadReference = errors.New("bad key reference")
	// ErrKeyFile: the key file is missing, unreadable, readable by
	// others, or holds no usable private key.
	ErrKeyFile = errors.New("bad key file")
	// ErrUnsupportedKey: the key is neither RSA nor ECDSA.
	ErrUnsupportedKey = errors.New("unsupported key type")
	// ErrPINFile: the PIN file is missing, not given, empty, too long, or
	// accessible by group or others.
	ErrPINFile = errors.New("bad PIN file")
	// ErrNoModule: the PKCS #11 module path is not given, does not exist,
	// or is not a PKCS #11 module.
	ErrNoModule = errors.New("no PKCS #11 module")
	// ErrNoToken: no token with the reference's label is present.
	ErrNoToken = errors.New("no such PKCS #11 token")
	// ErrWrongPIN: the token refused the PIN (or has locked it).
	ErrWrongPIN = errors.New("PKCS #11 PIN refused")
	// ErrNoObject: the token holds no key pair with the reference's
	// object label or id.
	ErrNoObject = errors.New("no such key in the PKCS #11 token")
	// ErrNotDecrypter: the key cannot decrypt (it is not RSA).
	ErrNotDecrypter = errors.New("key cannot decrypt")
	// ErrNoPKCS11: this binary was built without cgo, so without PKCS #11.
	ErrNoPKCS11 = errors.New("PKCS #11 not available in this build")
	// ErrToken: the PKCS #11 module failed in another way.
	ErrToken = errors.New("PKCS #11 failure")
)

// keyError is an error that is both one of the sentinels above and a
// fault.Error of a kind, with one message for people.
type keyError struct {
	sentinel error
	fe       *fault.Error
	cause    error
}

func (e *keyError) Error() string { return e.fe.Msg }

// Unwrap lets errors.Is and errors.As find the sentinel, the fault kind
// and the underlying cause.
func (e *keyError) Unwrap() []error {
	errs := []error{e.sentinel, e.fe}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// fail returns an error of kind k wrapping sentinel, with a formatted
// message.
func fail(sentinel error, k fault.Kind, format string, args ...any) error {
	return &keyError{sentinel: sentinel, fe: &fault.Error{Kind: k, Msg: fmt.Sprintf(format, args...)}}
}

// failCause is fail that also wraps the underlying error.
func failCause(cause, sentinel error, k fault.Kind, format string, args ...any) error {
	return &keyError{sentinel: sentinel, fe: &fault.Error{Kind: k, Msg: fmt.Sprintf(format, args...)}, cause: cause}
}
