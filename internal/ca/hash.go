package ca

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// ASN.1 universal tags of the string types OpenSSL canonicalises.
const (
	tagUTF8String      = 12
	tagPrintableString = 19
	tagT61String       = 20
	tagIA5String       = 22
	tagUniversalString = 28
	tagVisibleString   = 26
	tagBMPString       = 30
	tagSet             = 17
	tagSequence        = 16
)

// SubjectHash returns OpenSSL's hash of the certificate's subject name
// (X509_NAME_hash, the value `openssl x509 -hash` prints and c_rehash uses
// for "hash.0" file names).
//
// OpenSSL hashes a canonical form of the name: every attribute value of a
// string type (UTF8String, PrintableString, T61String, IA5String,
// VisibleString, BMPString, UniversalString) is converted to a UTF8String,
// leading and trailing white space is removed, inner runs of white space
// become one space and ASCII letters are lower-cased; values of other types
// are kept as they are. Each RDN is re-encoded as a DER SET and the SETs are
// concatenated without the outer SEQUENCE header. The hash is the first four
// bytes of the SHA-1 of that encoding, read as a little-endian number.
func SubjectHash(cert *x509.Certificate) (uint32, error) {
	canon, err := canonicalName(cert.RawSubject)
	if err != nil {
		return 0, fmt.Errorf("ca: subject hash: %w", err)
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// HashFileName returns the name OpenSSL looks the certificate up by in a
// certificate directory: the subject hash as 8 hex digits followed by ".0".
func HashFileName(cert *x509.Certificate) (string, error) {
	h, err := SubjectHash(cert)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08x.0", h), nil
}

// canonicalName computes OpenSSL's canonical encoding (x509_name_canon) of
// a DER Name.
func canonicalName(raw []byte) ([]byte, error) {
	var name asn1.RawValue
	if rest, err := asn1.Unmarshal(raw, &name); err != nil {
		return nil, err
	} else if len(rest) > 0 {
		return nil, fmt.Errorf("%d bytes after the name", len(rest))
	}
	if name.Class != asn1.ClassUniversal || name.Tag != tagSequence {
		return nil, fmt.Errorf("name is not a SEQUENCE")
	}
	var out []byte
	for rdns := name.Bytes; len(rdns) > 0; {
		var set asn1.RawValue
		var err error
		if rdns, err = asn1.Unmarshal(rdns, &set); err != nil {
			return nil, err
		}
		if set.Class != asn1.ClassUniversal || set.Tag != tagSet {
			return nil, fmt.Errorf("RDN is not a SET")
		}
		var atvs [][]byte
		for rest := set.Bytes; len(rest) > 0; {
			var atv struct {
				Type  asn1.RawValue
				Value asn1.RawValue
			}
			if rest, err = asn1.Unmarshal(rest, &atv); err != nil {
				return nil, err
			}
			if atv.Type.Class != asn1.ClassUniversal || atv.Type.Tag != asn1.TagOID {
				return nil, fmt.Errorf("attribute type is not an OID")
			}
			value, err := canonicalValue(atv.Value)
			if err != nil {
				return nil, err
			}
			atvs = append(atvs, appendTLV(nil, 0x30, append(slices.Clone(atv.Type.FullBytes), value...)))
		}
		// DER orders the members of a SET OF by their encodings.
		slices.SortFunc(atvs, bytes.Compare)
		out = appendTLV(out, 0x20|tagSet, bytes.Join(atvs, nil))
	}
	return out, nil
}

// canonicalValue returns the DER of an attribute value in OpenSSL's
// canonical form (asn1_string_canon).
func canonicalValue(v asn1.RawValue) ([]byte, error) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return v.FullBytes, nil
	}
	var s []byte // UTF-8
	switch v.Tag {
	case tagUTF8String:
		if !utf8.Valid(v.Bytes) {
			return nil, fmt.Errorf("invalid UTF-8 in a UTF8String")
		}
		s = v.Bytes
	case tagPrintableString, tagT61String, tagIA5String, tagVisibleString:
		// OpenSSL reads these one byte per character (T61String as
		// Latin-1).
		for _, b := range v.Bytes {
			s = utf8.AppendRune(s, rune(b))
		}
	case tagBMPString:
		if len(v.Bytes)%2 != 0 {
			return nil, fmt.Errorf("odd length BMPString")
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(v.Bytes[2*i:])
		}
		for _, r := range utf16.Decode(u) {
			s = utf8.AppendRune(s, r)
		}
	case tagUniversalString:
		if len(v.Bytes)%4 != 0 {
			return nil, fmt.Errorf("bad UniversalString length")
		}
		for i := 0; i < len(v.Bytes); i += 4 {
			r := rune(binary.BigEndian.Uint32(v.Bytes[i:]))
			if !utf8.ValidRune(r) {
				return nil, fmt.Errorf("bad character in a UniversalString")
			}
			s = utf8.AppendRune(s, r)
		}
	default:
		return v.FullBytes, nil
	}
	return appendTLV(nil, tagUTF8String, canonicalString(s)), nil
}

// canonicalString trims and collapses ASCII white space and lower-cases
// ASCII letters; other bytes are copied.
func canonicalString(s []byte) []byte {
	s = bytes.TrimFunc(s, func(r rune) bool { return r < utf8.RuneSelf && isSpace(byte(r)) })
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			out = append(out, ' ')
			for i < len(s) && isSpace(s[i]) {
				i++
			}
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		out = append(out, c)
		i++
	}
	return out
}

// isSpace is OpenSSL's ossl_isspace: space, \t, \n, \v, \f and \r.
func isSpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

// appendTLV appends a DER element with the given identifier octet.
func appendTLV(dst []byte, tag byte, content []byte) []byte {
	dst = append(dst, tag)
	switch n := len(content); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xff:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, content...)
}
