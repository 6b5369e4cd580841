package wire

import (
	"encoding/binary"
	"fmt"
)

// certWrapperLen is the size of the prefix in front of the DER bytes of a
// CERTIFICATE element: 0x01, a 2-byte length (DER length + 2), 0x00 and the
// certificate type.
const certWrapperLen = 5

// WrapCertificate returns the value of a CERTIFICATE element carrying der.
func WrapCertificate(typ CertType, der []byte) []byte {
	v := make([]byte, 0, certWrapperLen+len(der))
	v = append(v, 0x01)
	v = binary.BigEndian.AppendUint16(v, uint16(len(der)+2))
	v = append(v, 0x00, byte(typ))
	return append(v, der...)
}

// UnwrapCertificate returns the certificate type and DER bytes of a
// CERTIFICATE element value. Following what decoders in the field do, the
// 5-byte wrapper is skipped without trusting its length field; a value that
// starts directly with a DER SEQUENCE (0x30) is accepted as bare DER with
// type 0, since some clients have been seen to send it so.
func UnwrapCertificate(v []byte) (CertType, []byte, error) {
	if len(v) > 0 && v[0] == 0x30 {
		return 0, v, nil
	}
	if len(v) <= certWrapperLen {
		return 0, nil, fmt.Errorf("%s: %w: %d bytes is too short for a wrapped certificate", TagCertificate, ErrMalformed, len(v))
	}
	return CertType(v[4]), v[certWrapperLen:], nil
}

// SUDIData is the decoded value of a SUDI_DATA element: the phone's Secure
// Unique Device Identifier certificate and two signatures by its key over the
// session id (4 bytes, little-endian) followed by the SUDI certificate DER.
type SUDIData struct {
	Certificate []byte // DER
	SHA1Sig     []byte // block type 1
	SHA512Sig   []byte // block type 3
}

// SUDI block types inside SUDI_DATA.
const (
	sudiBlockCert   = 0
	sudiBlockSHA1   = 1
	sudiBlockSHA512 = 3
)

// AppendSUDIData encodes s as a SUDI_DATA value: three blocks of
// type (1 byte) · length (2 bytes) · bytes.
func AppendSUDIData(dst []byte, s SUDIData) []byte {
	for _, b := range []struct {
		typ byte
		v   []byte
	}{{sudiBlockCert, s.Certificate}, {sudiBlockSHA1, s.SHA1Sig}, {sudiBlockSHA512, s.SHA512Sig}} {
		dst = append(dst, b.typ)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(b.v)))
		dst = append(dst, b.v...)
	}
	return dst
}

// ParseSUDIData decodes a SUDI_DATA value. Blocks of unknown type are
// skipped; the certificate block is required, and a known block that
// appears twice is malformed (which of the two would be the phone's?).
func ParseSUDIData(v []byte) (SUDIData, error) {
	var s SUDIData
	var seen [sudiBlockSHA512 + 1]bool
	for off := 0; off < len(v); {
		if len(v)-off < 3 {
			return SUDIData{}, fmt.Errorf("%s: %w: truncated block header at byte %d", TagSUDIData, ErrMalformed, off)
		}
		typ := v[off]
		n := int(binary.BigEndian.Uint16(v[off+1 : off+3]))
		if off+3+n > len(v) {
			return SUDIData{}, fmt.Errorf("%s: %w: block %d of %d bytes runs past the end", TagSUDIData, ErrMalformed, typ, n)
		}
		b := v[off+3 : off+3+n]
		if int(typ) < len(seen) {
			if seen[typ] {
				return SUDIData{}, fmt.Errorf("%s: %w: block %d repeated at byte %d", TagSUDIData, ErrMalformed, typ, off)
			}
			seen[typ] = true
		}
		switch typ {
		case sudiBlockCert:
			s.Certificate = b
		case sudiBlockSHA1:
			s.SHA1Sig = b
		case sudiBlockSHA512:
			s.SHA512Sig = b
		}
		off += 3 + n
	}
	if len(s.Certificate) == 0 {
		return SUDIData{}, fmt.Errorf("%s: %w: no certificate block", TagSUDIData, ErrMalformed)
	}
	return s, nil
}

// AppendSHA2SignedData encodes a SHA2_SIGNED_DATA value: hash id (1 byte),
// signature length (2 bytes), signature.
func AppendSHA2SignedData(dst []byte, h HashID, sig []byte) []byte {
	dst = append(dst, byte(h))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sig)))
	return append(dst, sig...)
}

// ParseSHA2SignedData decodes a SHA2_SIGNED_DATA value.
func ParseSHA2SignedData(v []byte) (HashID, []byte, error) {
	if len(v) < 3 {
		return 0, nil, fmt.Errorf("%s: %w: %d bytes is too short", TagSHA2SignedData, ErrMalformed, len(v))
	}
	n := int(binary.BigEndian.Uint16(v[1:3]))
	if 3+n > len(v) {
		return 0, nil, fmt.Errorf("%s: %w: signature length %d runs past the end", TagSHA2SignedData, ErrMalformed, n)
	}
	return HashID(v[0]), v[3 : 3+n], nil
}

// SignedPayload returns the bytes a phone signs to prove it holds the key of
// the certificate it presents: the device name, a NUL byte, then the
// certificate DER.
func SignedPayload(deviceName string, certDER []byte) []byte {
	b := make([]byte, 0, len(deviceName)+1+len(certDER))
	b = append(b, deviceName...)
	b = append(b, 0)
	return append(b, certDER...)
}

// SUDISignedPayload returns the bytes a phone signs with its SUDI key: the
// session id as 4 bytes little-endian (Cisco's server uses host byte order),
// then the SUDI certificate DER.
func SUDISignedPayload(sessionID uint32, sudiDER []byte) []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(sudiDER)), sessionID)
	return append(b, sudiDER...)
}
