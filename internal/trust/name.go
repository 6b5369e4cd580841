package trust

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
)

// attributeNames are the short names of the attribute types written by
// name; any other type is written as its dotted OID.
var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "SERIALNUMBER",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "T",
	"2.5.4.42":                   "GN",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// NameText returns the text form of a DER-encoded X.509 Name (a
// certificate's RawSubject or RawIssuer) in the certificate's own attribute
// order: the RDNs in the order they are encoded, joined by ",", the
// attributes of a multi-valued RDN joined by "+", each as TYPE=value with
// RFC 4514 escaping. Unknown attribute types are written as their dotted
// OID; a value that is not a string is written as # and the hex of its DER.
//
// This is the order CallManager writes in SUBJECT_NAME and ISSUER_NAME; it
// differs from pkix.Name.String, which reverses the sequence.
func NameText(der []byte) (string, error) {
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return "", fmt.Errorf("trust: decode name: %w", err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("trust: decode name: %d bytes after the name", len(rest))
	}
	var b strings.Builder
	for i, rdn := range seq {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, atv := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			name, ok := attributeNames[oid]
			if !ok {
				name = oid
			}
			b.WriteString(name)
			b.WriteByte('=')
			if s, ok := atv.Value.(string); ok {
				b.WriteString(escapeValue(s))
				continue
			}
			raw, err := asn1.Marshal(atv.Value)
			if err != nil {
				return "", fmt.Errorf("trust: encode attribute %s: %w", oid, err)
			}
			b.WriteString("#" + hex.EncodeToString(raw))
		}
	}
	return b.String(), nil
}

// escapeValue escapes an attribute value as RFC 4514 section 2.4 asks:
// the special characters, a leading space or #, a trailing space, and NUL
// (which would end the NUL-terminated text in the file early).
func escapeValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
			b.WriteString(`\00`)
			continue
		case strings.IndexByte(`,+"\<>;=`, c) >= 0,
			i == 0 && (c == ' ' || c == '#'),
			i == len(s)-1 && c == ' ':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
