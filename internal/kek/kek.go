// Package kek is the key-encryption key (KEK) of a cluster: 32 random
// bytes in a file every node reads, under which the private keys kept in
// the database (the CAPF key, the SAST signers, the admin CA) are sealed
// with AES-256-GCM.
//
// The file holds the 32 bytes as 64 hexadecimal digits, optionally
// followed by one newline (`openssl rand -hex 32 > kek; chmod 600 kek`
// makes one, as does [Generate]). [Load] refuses a file that group or
// others may access, that is not a regular file, or whose content is not
// exactly that, and says which.
//
// [KEK.Seal] encrypts a private key with a fresh random 96-bit nonce and
// the key's id as associated data, so that a sealed key copied to another
// row does not open. Every sealed key is stored with the [KEK.ID] of the
// KEK that sealed it: a fingerprint derived from the KEK by a
// domain-separated SHA-256, which tells a wrong KEK file apart from a
// tampered record without revealing anything of the key.
//
// The package imports only the standard library and internal/fault.
package kek

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/capf-server/capf/internal/fault"
)

// EnvFile is the environment variable that gives --kek-file its default.
const EnvFile = "CAPF_KEK_FILE"

// Size is the length of a KEK in bytes.
const Size = 32

// The sealed form: a version byte, the nonce, then the AES-GCM ciphertext
// with its 16-byte tag.
const (
	version   = 1
	nonceSize = 12
	overhead  = 1 + nonceSize + 16
)

// idDomain separates the KEK's fingerprint from any other use of a hash of
// the key.
const idDomain = "capf key-encryption key id v1\x00"

// ErrWrongKEK is matched (errors.Is) by the error of [KEK.Open] when a
// sealed key was sealed under another KEK.
var ErrWrongKEK = errors.New("wrong key-encryption key")

// KEK is a loaded key-encryption key. It is safe for concurrent use.
type KEK struct {
	path string
	id   string
	aead cipher.AEAD
	rand io.Reader
}

// Load reads the KEK file at path. It refuses (an Invalid or NotFound
// error that names the file and what is wrong) a missing file, anything
// but a regular file, a file group or others may read or write, and a
// content other than 64 hex digits and an optional newline.
func Load(path string) (*KEK, error) {
	if path == "" {
		return nil, fault.Invalidf("no KEK file given: pass --kek-file FILE or set %s", EnvFile)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fault.NotFoundf("KEK file %s: no such file (capf cluster init --new-kek writes one)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fault.Invalidf("KEK file %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if m := st.Mode().Perm(); runtime.GOOS != "windows" && m&0o077 != 0 {
		return nil, fault.Invalidf("KEK file %s has mode %04o: group or others may access it; refusing it: run `chmod 600 %s` (and rotate the KEK with capf kek rotate if others may have read it)", path, m, path)
	}
	// Read a little more than a valid file holds, so that a longer file is
	// told apart without reading all of it.
	b, err := io.ReadAll(io.LimitReader(f, 2*Size+16))
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: %w", path, err)
	}
	k, err := parse(b)
	if err != nil {
		return nil, fault.Invalidf("KEK file %s: %v", path, err)
	}
	return newKEK(path, k)
}

// parse decodes the content of a KEK file.
func parse(b []byte) ([]byte, error) {
	const want = "want 64 hex digits (32 random bytes), optionally followed by a newline"
	text := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(text) != 2*Size {
		return nil, fmt.Errorf("it holds %d characters: %s", len(text), want)
	}
	for i, c := range text {
		if !isHex(c) {
			return nil, fmt.Errorf("character %d is not a hex digit: %s", i+1, want)
		}
	}
	k := make([]byte, Size)
	if _, err := hex.Decode(k, text); err != nil {
		return nil, fmt.Errorf("%v: %s", err, want)
	}
	if bytes.Count(k, k[:1]) == Size {
		return nil, fmt.Errorf("all 32 bytes are %#02x: that is not a random key", k[0])
	}
	return k, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Generate writes a new KEK of 32 bytes from r (crypto/rand.Reader when
// nil) to path, mode 0600, and returns it. An existing file is never
// replaced (a Conflict error): it may be the KEK of a cluster.
func Generate(path string, r io.Reader) (*KEK, error) {
	if path == "" {
		return nil, fault.Invalidf("no KEK file given: pass --kek-file FILE or set %s", EnvFile)
	}
	if r == nil {
		r = rand.Reader
	}
	k := make([]byte, Size)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, fmt.Errorf("generate KEK: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fault.Conflictf("KEK file %s exists already; refusing to replace it (it may be the KEK of a cluster): give another path, or drop --new-kek to use it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("write KEK file: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(k) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("write KEK file %s: %w", path, err)
	}
	return newKEK(path, k)
}

func newKEK(path string, k []byte) (*KEK, error) {
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	sum := sha256.Sum256(append([]byte(idDomain), k...))
	return &KEK{path: path, id: "kek-" + hex.EncodeToString(sum[:8]), aead: aead, rand: rand.Reader}, nil
}

// ID returns the KEK's fingerprint, stored beside every key it seals.
func (k *KEK) ID() string { return k.id }

// Path returns the file the KEK was read from.
func (k *KEK) Path() string { return k.path }

// Seal encrypts plaintext (a private key) for the key keyID under a fresh
// random nonce, with keyID as associated data.
func (k *KEK) Seal(keyID string, plaintext []byte) ([]byte, error) {
	if keyID == "" {
		return nil, fault.Invalidf("seal: empty key id")
	}
	out := make([]byte, 1+nonceSize, overhead+len(plaintext))
	out[0] = version
	if _, err := io.ReadFull(k.rand, out[1:]); err != nil {
		return nil, fmt.Errorf("seal %s: nonce: %w", keyID, err)
	}
	return k.aead.Seal(out, out[1:], plaintext, []byte(keyID)), nil
}

// Open decrypts the sealed key keyID, recorded as sealed under the KEK
// kekID. A kekID other than this KEK's is an error matching ErrWrongKEK
// that names the file; a sealed key that does not authenticate (changed,
// or moved to another key's id) is an Invalid error.
func (k *KEK) Open(keyID, kekID string, sealed []byte) ([]byte, error) {
	if kekID != k.id {
		return nil, &wrongKEK{path: k.path, have: k.id, want: kekID, key: keyID}
	}
	if len(sealed) < overhead || sealed[0] != version {
		return nil, fault.Invalidf("sealed key %s is damaged: not a sealed key of this version (%d bytes)", keyID, len(sealed))
	}
	pt, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], []byte(keyID))
	if err != nil {
		return nil, fault.Invalidf("sealed key %s does not authenticate under the KEK %s (%s): it was changed, or belongs to another key", keyID, k.path, k.id)
	}
	return pt, nil
}

// wrongKEK is the error of opening a key sealed under another KEK.
type wrongKEK struct{ path, have, want, key string }

func (e *wrongKEK) Error() string {
	return fmt.Sprintf("the KEK file %s (%s) is not the one this cluster's keys were sealed with (%s, key %s): give the cluster's KEK file; nothing was changed",
		e.path, e.have, e.want, e.key)
}

// Unwrap makes the error match ErrWrongKEK and be of kind fault.Invalid.
func (e *wrongKEK) Unwrap() []error {
	return []error{ErrWrongKEK, fault.New(fault.Invalid, "%s", e.Error())}
}
