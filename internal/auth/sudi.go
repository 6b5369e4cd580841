package auth

import (
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/wire"
)

// SUDIPolicy is what the Verifier does with SUDI_DATA: the service
// parameter sudi_verification.
//
// SUDI-capable phones (78xx, 88xx) send SUDI_DATA in every mode, LSC
// included, and most deployments outside CallManager hold no Cisco
// manufacturing CA bundle. So by default an unverifiable SUDI chain is
// recorded, not fatal: the credential the device is configured for decides.
// Whatever the policy but SUDIOff, the SUDI signatures are checked: a SUDI
// certificate with a signature that does not verify is tampering, and the
// phone is refused.
type SUDIPolicy int

// The SUDI policies. The zero value is the default, SUDIWhenTrusted.
const (
	// SUDIWhenTrusted verifies the SUDI chain; a chain to nothing trusted is
	// recorded ("not verified: unknown issuer") and the session goes on.
	SUDIWhenTrusted SUDIPolicy = iota
	// SUDIRequired refuses a phone whose SUDI does not chain to a trusted
	// root. A phone that sends no SUDI_DATA is not refused for that: the
	// policy is about SUDI data that is present.
	SUDIRequired
	// SUDIOff ignores SUDI_DATA: neither its chain nor its signatures are
	// checked. SUDI_DATA that does not even decode is still refused by the
	// session, since it is malformed input like any other.
	SUDIOff
)

var sudiPolicyNames = [...]string{"when-trusted", "required", "off"}

// String returns the policy's name in the service parameters.
func (p SUDIPolicy) String() string {
	if p >= 0 && int(p) < len(sudiPolicyNames) {
		return sudiPolicyNames[p]
	}
	return fmt.Sprintf("SUDIPolicy(%d)", int(p))
}

// ParseSUDIPolicy returns the policy named s: "when-trusted", "required" or
// "off". An empty s is the default, SUDIWhenTrusted.
func ParseSUDIPolicy(s string) (SUDIPolicy, error) {
	if s == "" {
		return SUDIWhenTrusted, nil
	}
	for i, n := range sudiPolicyNames {
		if s == n {
			return SUDIPolicy(i), nil
		}
	}
	return 0, fault.Invalidf("sudi_verification %q: want when-trusted, required or off", s)
}

// SUDI outcomes, as Result.SUDI carries them into the attempt history.
// Result.SUDI is "" when the phone sent no SUDI_DATA.
const (
	SUDIVerified      = "verified"
	SUDIUnknownIssuer = "not verified: unknown issuer"
	SUDIExpired       = "not verified: certificate expired or not yet valid"
	SUDIBadChain      = "not verified: invalid chain"
	SUDIIgnored       = "ignored (sudi_verification off)"
	SUDIBadSignature  = "refused: signature does not verify"
	SUDIMalformed     = "refused: malformed"
)

// checkSUDI applies the SUDI policy to SUDI data and returns the outcome to
// record, with an *Error when the phone must be refused for it.
//
// The signatures (at least one; SHA-1 and SHA-512) over the session id,
// little-endian, followed by the certificate DER must verify with the SUDI
// certificate's key: otherwise the phone is refused whatever the policy
// (but off). Then the certificate must chain, now, to the manufacturer
// bundle (SUDIRoots, by default MICRoots) or to the CAPF's own LSC issuer,
// which is how a phone whose SUDI is its LSC is verified. A chain failure is
// recorded; it refuses the phone only under SUDIRequired.
func (v *Verifier) checkSUDI(pol Policy, sessionID uint32, s *SUDI) (string, *Error) {
	bad := func(outcome, format string, args ...any) (string, *Error) {
		return outcome, fail(device.ReasonInvalidCredentials, "SUDI: "+format, args...)
	}
	if pol.SUDI == SUDIOff {
		return SUDIIgnored, nil
	}
	if len(s.CertDER) == 0 {
		return bad(SUDIMalformed, "no certificate")
	}
	cert, err := x509.ParseCertificate(s.CertDER)
	if err != nil {
		return bad(SUDIMalformed, "certificate does not parse: %v", err)
	}
	if len(s.SHA1Sig) == 0 && len(s.SHA512Sig) == 0 {
		return bad(SUDIMalformed, "no signature")
	}
	payload := wire.SUDISignedPayload(sessionID, s.CertDER)
	if len(s.SHA1Sig) > 0 {
		d := sha1.Sum(payload)
		if err := verifyDigest(cert.PublicKey, d[:], s.SHA1Sig); err != nil {
			return bad(SUDIBadSignature, "SHA-1 signature does not verify: %v", err)
		}
	}
	if len(s.SHA512Sig) > 0 {
		d := sha512.Sum512(payload)
		if err := verifyDigest(cert.PublicKey, d[:], s.SHA512Sig); err != nil {
			return bad(SUDIBadSignature, "SHA-512 signature does not verify: %v", err)
		}
	}

	outcome, detail := v.sudiChain(cert)
	if outcome == SUDIVerified {
		return outcome, nil
	}
	if pol.SUDI == SUDIRequired {
		return bad(outcome, "%s (sudi_verification is required): %s", outcome, detail)
	}
	return outcome, nil
}

// sudiChain verifies the SUDI certificate against each SUDI trust root
// and returns SUDIVerified, or the outcome naming why not with a detail for
// the log.
func (v *Verifier) sudiChain(cert *x509.Certificate) (outcome, detail string) {
	now := v.o.Now()
	if msg := validityProblem(cert, now); msg != "" {
		return SUDIExpired, msg
	}
	outcome, detail = SUDIUnknownIssuer, "no manufacturer CA bundle or CAPF issuer configured"
	for _, roots := range []struct {
		name string
		pool *x509.CertPool
	}{{"the manufacturer CA bundle", v.o.SUDIRoots}, {"the CAPF certificate", v.lscRoots()}} {
		if roots.pool == nil {
			continue
		}
		err := verifyChain(cert, roots.pool, now)
		if err == nil {
			return SUDIVerified, ""
		}
		var ua x509.UnknownAuthorityError
		switch {
		case !errors.As(err, &ua):
			// It names an issuer of ours but does not verify against it:
			// that says more than an unknown issuer elsewhere.
			outcome, detail = SUDIBadChain, fmt.Sprintf("against %s: %v", roots.name, err)
		case outcome == SUDIUnknownIssuer:
			detail = "does not chain to the manufacturer CA bundle or the CAPF certificate"
		}
	}
	return outcome, detail
}
