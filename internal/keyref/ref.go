package keyref

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/capf-server/capf/internal/fault"
)

// Scheme is the URI scheme of a reference to a key in a PKCS #11 token.
const Scheme = "pkcs11"

// Bounds on a PKCS #11 URI. A token label is 32 bytes in CK_TOKEN_INFO;
// object labels and ids have no limit in the standard, these are generous.
const (
	maxRefLen    = 4096
	maxTokenLen  = 32
	maxObjectLen = 256
	maxIDLen     = 128
)

// Ref is a parsed key reference: a file path, or a key in a PKCS #11
// token chosen by the token's label and the key's label (object) and/or
// id. It never holds a PIN.
type Ref struct {
	// Path is the PEM file of a file reference; empty for PKCS #11.
	Path string
	// Token is the label of the PKCS #11 token.
	Token string
	// Object is the label (CKA_LABEL) of the key pair; may be empty when
	// ID is given.
	Object string
	// ID is the CKA_ID of the key pair; may be empty when Object is given.
	ID []byte
}

// IsPKCS11 reports whether r names a key in a PKCS #11 token.
func (r Ref) IsPKCS11() bool { return r.Path == "" && r.Token != "" }

// String returns the reference in its canonical form: the path, or a
// pkcs11: URI with its attributes percent-encoded as RFC 7512 asks.
func (r Ref) String() string {
	if !r.IsPKCS11() {
		return r.Path
	}
	var b strings.Builder
	b.WriteString(Scheme + ":token=" + pctEncode([]byte(r.Token), false))
	if r.Object != "" {
		b.WriteString(";object=" + pctEncode([]byte(r.Object), false))
	}
	if len(r.ID) > 0 {
		b.WriteString(";id=" + pctEncode(r.ID, true))
	}
	return b.String()
}

// Parse parses a key reference. Text starting with "pkcs11:" (in any case)
// is an RFC 7512 URI, of which only the path attributes token (required),
// object and id (at least one of them) and type=private are understood;
// anything else there, a query part (module and PIN come from Options,
// never from the URI) or a repeated attribute is refused. Other text with
// a URI scheme ("file:", "https:", "engine:") is refused; the rest is a
// file path. Errors wrap ErrBadReference.
func Parse(s string) (Ref, error) {
	switch {
	case s == "":
		return Ref{}, bad("empty key reference")
	case len(s) > maxRefLen:
		return Ref{}, bad("key reference longer than %d bytes", maxRefLen)
	case strings.ContainsRune(s, 0):
		return Ref{}, bad("key reference contains a NUL byte")
	}
	scheme, rest, hasScheme := strings.Cut(s, ":")
	if hasScheme && strings.EqualFold(scheme, Scheme) {
		return parseURI(rest)
	}
	if hasScheme && isScheme(scheme) {
		return Ref{}, bad("key reference %q: unknown scheme %q (want a file path or pkcs11:token=LABEL;object=NAME)", truncate(s), scheme)
	}
	return Ref{Path: s}, nil
}

// isScheme reports whether s looks like a URI scheme (RFC 3986: a letter,
// then letters, digits, "+", "-" or "."), and is longer than one letter
// so that a Windows drive ("C:\keys\ca.pem") stays a path.
func isScheme(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func parseURI(rest string) (Ref, error) {
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		q := rest[i+1:]
		if strings.Contains(strings.ToLower(q), "pin-value") {
			return Ref{}, bad("pkcs11 URI: pin-value is refused: a PIN in a key reference ends up in logs and process lists; give --pin-file")
		}
		return Ref{}, bad("pkcs11 URI: query attributes (%q) are not supported: give the module with --pkcs11-module and the PIN with --pin-file", truncate(q))
	}
	var r Ref
	seen := map[string]bool{}
	for _, attr := range strings.Split(rest, ";") {
		if attr == "" {
			continue
		}
		name, raw, ok := strings.Cut(attr, "=")
		if !ok {
			return Ref{}, bad("pkcs11 URI: attribute %q has no value", truncate(attr))
		}
		name = strings.ToLower(name)
		if seen[name] {
			return Ref{}, bad("pkcs11 URI: attribute %q given twice", name)
		}
		seen[name] = true
		val, err := url.PathUnescape(raw)
		if err != nil {
			return Ref{}, bad("pkcs11 URI: attribute %s: bad percent-encoding", name)
		}
		if val == "" {
			return Ref{}, bad("pkcs11 URI: attribute %s is empty", name)
		}
		switch name {
		case "token":
			if len(val) > maxTokenLen {
				return Ref{}, bad("pkcs11 URI: token label longer than %d bytes", maxTokenLen)
			}
			r.Token = val
		case "object":
			if len(val) > maxObjectLen {
				return Ref{}, bad("pkcs11 URI: object label longer than %d bytes", maxObjectLen)
			}
			r.Object = val
		case "id":
			if len(val) > maxIDLen {
				return Ref{}, bad("pkcs11 URI: id longer than %d bytes", maxIDLen)
			}
			r.ID = []byte(val)
		case "type":
			if val != "private" {
				return Ref{}, bad("pkcs11 URI: type=%s: a key reference names a private key (type=private)", truncate(val))
			}
		case "pin-value", "pin-source":
			return Ref{}, bad("pkcs11 URI: %s is refused: give the PIN with --pin-file", name)
		default:
			return Ref{}, bad("pkcs11 URI: attribute %q is not supported (want token, object, id)", truncate(name))
		}
	}
	if r.Token == "" {
		return Ref{}, bad("pkcs11 URI: token=LABEL is required")
	}
	if r.Object == "" && len(r.ID) == 0 {
		return Ref{}, bad("pkcs11 URI: object=NAME or id=%%XX… is required")
	}
	return r, nil
}

// pctEncode percent-encodes b as RFC 7512 section 2.3 allows: unreserved
// characters stay as they are, everything else is %XX; all is true
// encodes every byte (for ids, which are binary).
func pctEncode(b []byte, all bool) string {
	var s strings.Builder
	for _, c := range b {
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:[]@!$'()*+,&", c) >= 0) {
			s.WriteByte(c)
			continue
		}
		fmt.Fprintf(&s, "%%%02x", c)
	}
	return s.String()
}

// truncate bounds text taken from the input in a message.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func bad(format string, args ...any) error {
	return fail(ErrBadReference, fault.Invalid, format, args...)
}
