package phonesim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"fmt"

	"github.com/capf-server/capf/internal/wire"
)

// authResponse builds AUTH_RESPONSE with exactly what a hardware phone
// sends: REASON (1), VERSION, DEVICE_NAME, then PASSWORD (the string, or
// empty for the null string) or the certificate with its signatures
// (CERTIFICATE, SIGNED_DATA, SHA2_SIGNED_DATA), and SUDI_DATA when the phone
// has a SUDI. Phones do not send AUTH_TYPE: the server learns the phone's
// choice from the credentials present and the CERTIFICATE wrapper's type
// byte. at is that choice; it is sent as AUTH_TYPE only with SendAuthType.
func (s *session) authResponse(cred *Credential, at wire.AuthType) (*wire.Message, error) {
	c := s.r.c
	m := s.reply(wire.CmdAuthResponse).
		AddUint8(wire.TagReason, uint8(wire.ReasonSuccess)).
		AddUint8(wire.TagVersion, c.Version).
		AddString(wire.TagDeviceName, c.DeviceName)
	if c.SendAuthType {
		m.AddUint8(wire.TagAuthType, uint8(at))
	}
	switch at {
	case wire.AuthPassword:
		m.AddString(wire.TagPassword, c.AuthString)
	case wire.AuthNoPassword:
		m.AddString(wire.TagPassword, "")
	default:
		typ := wire.CertLSC
		if at == wire.AuthMIC {
			typ = wire.CertMIC
		}
		payload := wire.SignedPayload(c.DeviceName, cred.Certificate.Raw)
		sig1, sig512, err := signBoth(cred.Key, payload)
		if err != nil {
			return nil, fmt.Errorf("sign with the %s: %w", typ, err)
		}
		m.Add(wire.TagCertificate, wire.WrapCertificate(typ, cred.Certificate.Raw)).
			Add(wire.TagSignedData, sig1).
			Add(wire.TagSHA2SignedData, wire.AppendSHA2SignedData(nil, wire.HashSHA512, sig512))
	}
	if sudi := s.r.st.sudi; sudi != nil {
		payload := wire.SUDISignedPayload(s.id, sudi.Certificate.Raw)
		sig1, sig512, err := signBoth(sudi.Key, payload)
		if err != nil {
			return nil, fmt.Errorf("sign with the SUDI: %w", err)
		}
		m.Add(wire.TagSUDIData, wire.AppendSUDIData(nil, wire.SUDIData{
			Certificate: sudi.Certificate.Raw,
			SHA1Sig:     sig1,
			SHA512Sig:   sig512,
		}))
	}
	return m, nil
}

// signBoth signs the SHA-1 and the SHA-512 digest of payload.
func signBoth(k crypto.Signer, payload []byte) (sha1Sig, sha512Sig []byte, err error) {
	d1 := sha1.Sum(payload)
	if sha1Sig, err = signDigest(k, crypto.SHA1, d1[:]); err != nil {
		return nil, nil, err
	}
	d512 := sha512.Sum512(payload)
	if sha512Sig, err = signDigest(k, crypto.SHA512, d512[:]); err != nil {
		return nil, nil, err
	}
	return sha1Sig, sha512Sig, nil
}

// signDigest signs a digest as the phones do: RSA "raw" PKCS#1 v1.5 (type-1
// padding of the bare digest, without the DigestInfo prefix, what OpenSSL
// calls private-encrypt), or ASN.1 ECDSA.
func signDigest(k crypto.Signer, h crypto.Hash, digest []byte) ([]byte, error) {
	switch k.Public().(type) {
	case *rsa.PublicKey:
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rsa.SignPKCS1v15(rand.Reader, rk, crypto.Hash(0), digest)
		}
		// An opaque RSA signer signs PKCS#1 v1.5 of the bare input for
		// hash 0, as *rsa.PrivateKey does.
		return k.Sign(rand.Reader, digest, crypto.Hash(0))
	case *ecdsa.PublicKey:
		return k.Sign(rand.Reader, digest, h)
	}
	return nil, fmt.Errorf("unsupported key type %T", k.Public())
}
