package trust

import (
	"fmt"
	"strings"

	"github.com/capf-server/capf/internal/fault"
)

// Role is the function of a certificate in a trust file (the ROLE element
// of a record).
type Role uint16

// The roles phones know.
const (
	RoleSAST      Role = 0  // System Administrator Security Token: may sign the next file
	RoleCCM       Role = 1  // call control (SIP-TLS peer)
	RoleCCMTFTP   Role = 2  // call control and TFTP
	RoleTFTP      Role = 3  // TFTP server: signs configuration files (.sgn)
	RoleCAPF      Role = 4  // the CAPF the phone may talk to
	RoleAppServer Role = 7  // application server
	RoleTVS       Role = 21 // Trust Verification Service
)

var roleNames = map[Role]string{
	RoleSAST:      "sast",
	RoleCCM:       "ccm",
	RoleCCMTFTP:   "ccm+tftp",
	RoleTFTP:      "tftp",
	RoleCAPF:      "capf",
	RoleAppServer: "app-server",
	RoleTVS:       "tvs",
}

// String returns the role's name as the CLI spells it ("capf",
// "ccm+tftp"), or Role(N) for a value phones do not define.
func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Role(%d)", uint16(r))
}

// Known reports whether r is one of the defined roles.
func (r Role) Known() bool {
	_, ok := roleNames[r]
	return ok
}

// ParseRole returns the role named s (case-insensitive): sast, ccm,
// ccm+tftp, tftp, capf, app-server or tvs.
func ParseRole(s string) (Role, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	for r, name := range roleNames {
		if name == want {
			return r, nil
		}
	}
	return 0, fault.Invalidf("unknown role %q: want ccm, tftp, ccm+tftp, capf, app-server, tvs or sast", s)
}

// HashAlgorithm is the digest named in the header's HASH_ALGORITHM element.
type HashAlgorithm uint8

// The digests phones accept.
const (
	SHA1   HashAlgorithm = 1
	SHA512 HashAlgorithm = 3
)

// String returns "sha1", "sha512" or HashAlgorithm(N).
func (h HashAlgorithm) String() string {
	switch h {
	case SHA1:
		return "sha1"
	case SHA512:
		return "sha512"
	}
	return fmt.Sprintf("HashAlgorithm(%d)", uint8(h))
}

// ParseHashAlgorithm returns the digest named s: sha1 or sha512.
func ParseHashAlgorithm(s string) (HashAlgorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sha1", "sha-1":
		return SHA1, nil
	case "sha512", "sha-512":
		return SHA512, nil
	}
	return 0, fault.Invalidf("unknown digest %q: want sha1 or sha512", s)
}

// SignerVersion is the SIGNER_VERSION element: 1.0, or 1.1 to let phones
// use EC certificates.
type SignerVersion [2]byte

// The signer versions.
var (
	SignerV10 = SignerVersion{1, 0}
	SignerV11 = SignerVersion{1, 1}
)

// String returns "1.0" or "1.1".
func (v SignerVersion) String() string { return fmt.Sprintf("%d.%d", v[0], v[1]) }

// ParseSignerVersion returns the signer version named s: 1.0 or 1.1.
func ParseSignerVersion(s string) (SignerVersion, error) {
	switch strings.TrimSpace(s) {
	case "1.0":
		return SignerV10, nil
	case "1.1":
		return SignerV11, nil
	}
	return SignerVersion{}, fault.Invalidf("unknown signer version %q: want 1.0 or 1.1", s)
}
