package account

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/capf-server/capf/internal/fault"
)

// Password length bounds, in bytes. The upper bound keeps a hostile login
// form from making the hash work on megabytes.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// A stored hash carries its own parameters, so changing them affects only
// passwords set afterwards.
type PasswordParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32
	Threads   uint8
}

// DefaultPasswordParams follow the OWASP minimum for argon2id (19 MiB, two
// passes, one lane): about 30-50 ms on a server core.
var DefaultPasswordParams = PasswordParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// maxMemoryKiB and maxTime bound what a stored hash may ask for, so a
	// corrupt or planted row cannot make a login allocate gigabytes.
	maxMemoryKiB = 1 << 20
	maxTime      = 16
)

// checkPassword validates a new password.
func checkPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fault.InvalidField("password", "password must be at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fault.InvalidField("password", "password must be at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// hashPassword returns pw hashed with argon2id under p and a random salt
// from r, PHC-encoded:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with unpadded standard base64, as the reference implementation writes it.
func hashPassword(r io.Reader, p PasswordParams, pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches the PHC-encoded hash. A hash it
// cannot parse is an error, never a match.
func verifyPassword(encoded, pw string) (bool, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// parseHash decodes a PHC-encoded argon2id hash.
func parseHash(encoded string) (PasswordParams, []byte, []byte, error) {
	var p PasswordParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("password hash: not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("password hash: unsupported argon2 version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("password hash: parameters %q: %w", parts[3], err)
	}
	if p.Time == 0 || p.Time > maxTime || p.Threads == 0 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB {
		return p, nil, nil, fmt.Errorf("password hash: parameters %q out of range", parts[3])
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("password hash: bad salt")
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("password hash: bad key")
	}
	return p, salt, key, nil
}
