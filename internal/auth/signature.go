package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// checkSignatures verifies SIGNED_DATA and SHA2_SIGNED_DATA, whichever are
// present (at least one must be), over the device name, a NUL and the
// certificate DER, with the certificate's key.
func checkSignatures(cert *x509.Certificate, p Presented) error {
	if len(p.SHA1Sig) == 0 && len(p.SHA2Sig) == 0 {
		return errors.New("no signature presented (neither SIGNED_DATA nor SHA2_SIGNED_DATA)")
	}
	payload := wire.SignedPayload(p.DeviceName, p.CertDER)
	if len(p.SHA1Sig) > 0 {
		d := sha1.Sum(payload)
		if err := verifyDigest(cert.PublicKey, d[:], p.SHA1Sig); err != nil {
			return fmt.Errorf("SIGNED_DATA (SHA-1): signature does not verify: %w", err)
		}
	}
	if len(p.SHA2Sig) > 0 {
		var d []byte
		switch p.SHA2Hash {
		case crypto.SHA256:
			s := sha256.Sum256(payload)
			d = s[:]
		case crypto.SHA512:
			s := sha512.Sum512(payload)
			d = s[:]
		default:
			return fmt.Errorf("SHA2_SIGNED_DATA: unsupported hash %v", p.SHA2Hash)
		}
		if err := verifyDigest(cert.PublicKey, d, p.SHA2Sig); err != nil {
			return fmt.Errorf("SHA2_SIGNED_DATA (%v): signature does not verify: %w", p.SHA2Hash, err)
		}
	}
	return nil
}

// verifyDigest verifies a phone's signature over a digest: "raw" PKCS#1 v1.5
// (type-1 padding around the bare digest, no DigestInfo) for RSA keys,
// ASN.1 ECDSA for EC keys.
func verifyDigest(pub any, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.Hash(0), digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ECDSA verification failure")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// checkSUDI verifies SUDI data: the SUDI certificate chains to the SUDI
// roots, and its signatures (at least one; SHA-1 and SHA-512) verify over
// the session id, little-endian, followed by the certificate DER.
func (v *Verifier) checkSUDI(sessionID uint32, s *SUDI) *Error {
	bad := func(format string, args ...any) *Error {
		return fail(device.ReasonInvalidCredentials, "SUDI: "+format, args...)
	}
	if v.o.SUDIRoots == nil {
		return bad("no SUDI or manufacturer CA bundle configured")
	}
	if len(s.CertDER) == 0 {
		return bad("no certificate")
	}
	cert, err := x509.ParseCertificate(s.CertDER)
	if err != nil {
		return bad("certificate does not parse: %v", err)
	}
	now := v.o.Now()
	if msg := validityProblem(cert, now); msg != "" {
		return bad("%s", msg)
	}
	if err := verifyChain(cert, v.o.SUDIRoots, now); err != nil {
		return bad("does not chain to the SUDI CA bundle: %v", err)
	}
	if len(s.SHA1Sig) == 0 && len(s.SHA512Sig) == 0 {
		return bad("no signature")
	}
	payload := wire.SUDISignedPayload(sessionID, s.CertDER)
	if len(s.SHA1Sig) > 0 {
		d := sha1.Sum(payload)
		if err := verifyDigest(cert.PublicKey, d[:], s.SHA1Sig); err != nil {
			return bad("SHA-1 signature does not verify: %v", err)
		}
	}
	if len(s.SHA512Sig) > 0 {
		d := sha512.Sum512(payload)
		if err := verifyDigest(cert.PublicKey, d[:], s.SHA512Sig); err != nil {
			return bad("SHA-512 signature does not verify: %v", err)
		}
	}
	return nil
}
