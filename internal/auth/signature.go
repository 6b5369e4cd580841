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
