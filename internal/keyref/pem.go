package keyref

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/capf-server/capf/internal/fault"
)

// maxKeyFile bounds a PEM key file read into memory: an RSA-16384 key in
// PEM is about 13 KiB; a key file with certificates beside it stays well
// under this.
const maxKeyFile = 1 << 20

// The PEM block types of a private key.
const (
	BlockPKCS8 = "PRIVATE KEY"     // PKCS #8, any algorithm
	BlockPKCS1 = "RSA PRIVATE KEY" // PKCS #1, RSA
	BlockSEC1  = "EC PRIVATE KEY"  // SEC 1, ECDSA
)

// IsKeyBlock reports whether a PEM block type is one ParseBlock reads.
func IsKeyBlock(typ string) bool {
	return typ == BlockPKCS8 || typ == BlockPKCS1 || typ == BlockSEC1
}

// ParsePEM returns the first private key in data, skipping blocks of other
// types (a key file may carry its certificate): PKCS #8, PKCS #1 or SEC 1,
// RSA or ECDSA. The private key is *rsa.PrivateKey or *ecdsa.PrivateKey.
func ParsePEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fail(ErrKeyFile, fault.Invalid, "no PEM private key found")
		}
		if !IsKeyBlock(b.Type) {
			continue
		}
		return ParseBlock(b)
	}
}

// ParseBlock parses one PEM private key block (see IsKeyBlock).
func ParseBlock(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case BlockPKCS8:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case BlockPKCS1:
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case BlockSEC1:
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fail(ErrKeyFile, fault.Invalid, "PEM block %q is not a private key", truncate(b.Type))
	}
	if err != nil {
		return nil, failCause(err, ErrKeyFile, fault.Invalid, "bad private key: %v", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fail(ErrUnsupportedKey, fault.Invalid, "unsupported key type %T: want RSA or ECDSA", k)
}

// CheckKeyFileMode refuses a key file that group or others may read or
// write: whoever can read it holds the key. It is not fixed silently,
// since a key that was exposed may have been copied. Windows has no such
// mode bits and is not checked.
func CheckKeyFileMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fileErr(ErrKeyFile, path, err)
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return fail(ErrKeyFile, fault.Invalid, "%s is readable by others (group or world, mode %04o); refusing to use it: run `chmod 600 %s` (and replace the key if others may have copied it)", path, m, path)
	}
	return nil
}

// ReadKeyFile reads a PEM private key file after CheckKeyFileMode.
func ReadKeyFile(path string) (crypto.Signer, error) {
	if err := CheckKeyFileMode(path); err != nil {
		return nil, err
	}
	data, err := readBounded(path, maxKeyFile)
	if err != nil {
		return nil, fileErr(ErrKeyFile, path, err)
	}
	k, err := ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readBounded reads at most max bytes of path; a larger file is an error.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// fileErr maps a file system error on path to a specific error.
func fileErr(sentinel error, path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return failCause(err, sentinel, fault.NotFound, "%s: no such file", path)
	}
	return failCause(err, sentinel, fault.Invalid, "%s: %v", path, err)
}
