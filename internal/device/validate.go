package device

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
)

// softphonePrefixes are the device-name prefixes of Cisco's softphone
// clients: Jabber for desktop (CSF), iPhone (TCT), Android (BOT) and tablets
// (TAB). They answer the CAPF with protocol version 2.
var softphonePrefixes = []string{"CSF", "BOT", "TCT", "TAB"}

// MaxNameLen is the longest device name accepted.
const MaxNameLen = 50

// NormalizeName upper-cases a device name and checks its form: SEP followed
// by 12 hexadecimal digits (a hardware phone's MAC address), or a softphone
// prefix (CSF, BOT, TCT, TAB) followed by 1 or more letters, digits, '.',
// '_' or '-', at most [MaxNameLen] characters in all.
func NormalizeName(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	name = safetext.Bound(name, 2*MaxNameLen) // it is quoted in errors, which may reach a log
	switch {
	case n == "":
		return "", fault.InvalidField("name", "device name is empty")
	case len(n) > MaxNameLen:
		return "", fault.InvalidField("name", "device name %q is longer than %d characters", name, MaxNameLen)
	case strings.HasPrefix(n, "SEP"):
		mac := n[3:]
		if len(mac) != 12 || strings.Trim(mac, "0123456789ABCDEF") != "" {
			return "", fault.InvalidField("name", "device name %q: a hardware phone is SEP followed by the 12 hex digits of its MAC address", name)
		}
		return n, nil
	}
	for _, p := range softphonePrefixes {
		if strings.HasPrefix(n, p) {
			rest := n[len(p):]
			if rest == "" {
				return "", fault.InvalidField("name", "device name %q: nothing after the %s prefix", name, p)
			}
			for _, c := range rest {
				if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
					return "", fault.InvalidField("name", "device name %q: character %q is not allowed (letters, digits, '.', '_', '-')", name, c)
				}
			}
			return n, nil
		}
	}
	return "", fault.InvalidField("name", "device name %q: must start with SEP (hardware phone) or CSF, BOT, TCT, TAB (softphone)", name)
}

// IsSoftphone reports whether a (normalized) device name is a softphone's.
func IsSoftphone(name string) bool {
	for _, p := range softphonePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ParseSecurityProfile accepts the profile's name or CallManager label.
func ParseSecurityProfile(s string) (SecurityProfile, error) {
	switch vocab(s) {
	case "nonsecure":
		return NonSecure, nil
	case "authenticated":
		return Authenticated, nil
	case "encrypted":
		return Encrypted, nil
	}
	return "", fault.InvalidField("security_profile", "security profile %q: want non-secure, authenticated or encrypted (or Non Secure, Authenticated, Encrypted)", s)
}

// ParseAuthMode accepts the mode's name, the label the UI shows, or
// CallManager's BAT spelling ("By Existing Certificate (precedence to
// LSC)").
func ParseAuthMode(s string) (AuthMode, error) {
	switch vocab(s) {
	case "string", "authenticationstring", "byauthenticationstring":
		return AuthString, nil
	case "null", "nullstring", "bynullstring":
		return AuthNull, nil
	case "lsc", "byexistingcertificate(precedencelsc)", "byexistingcertificate(precedencetolsc)":
		return AuthLSC, nil
	case "mic", "byexistingcertificate(precedencemic)", "byexistingcertificate(precedencetomic)":
		return AuthMIC, nil
	}
	return "", fault.InvalidField("auth_mode", "authentication mode %q: want string, null, lsc or mic (or By Authentication String, By Null String, By Existing Certificate (Precedence LSC), By Existing Certificate (Precedence MIC))", s)
}

// ParseOperation accepts the operation's name, its label or CallManager's
// BAT spelling.
func ParseOperation(s string) (Operation, error) {
	switch vocab(s) {
	case "none", "nopendingoperation":
		return OpNone, nil
	case "install", "upgrade", "install/upgrade", "installupgrade":
		return OpInstall, nil
	case "delete":
		return OpDelete, nil
	case "troubleshoot":
		return OpTroubleshoot, nil
	}
	return "", fault.InvalidField("operation", "certificate operation %q: want none, install, delete or troubleshoot (or No Pending Operation, Install/Upgrade, Delete, Troubleshoot)", s)
}

// ParseKeySpec accepts rsa512 … rsa4096, ec256, ec384, ec521, the labels
// the UI shows ("RSA 2048", "EC P-256") and CallManager's key sizes ("2048"
// for RSA; "256", "P-256" or "EC 256" for EC).
func ParseKeySpec(s string) (KeySpec, error) {
	v := strings.TrimPrefix(vocab(s), "ecdsa")
	if n := strings.TrimPrefix(v, "rsa"); n != v {
		v = "rsa" + n
	} else {
		v = strings.TrimPrefix(strings.TrimPrefix(v, "ec"), "p")
		switch v {
		case "256", "384", "521":
			v = "ec" + v
		default:
			v = "rsa" + v
		}
	}
	switch k := KeySpec(v); k {
	case RSA512, RSA1024, RSA2048, RSA3072, RSA4096, EC256, EC384, EC521:
		return k, nil
	}
	return "", fault.InvalidField("key", "key %q: want rsa512, rsa1024, rsa2048, rsa3072, rsa4096, ec256, ec384 or ec521 (or RSA 2048, EC P-256, …)", s)
}

// ValidateAuthString checks that s is 4 to 10 decimal digits.
func ValidateAuthString(s string) error {
	if len(s) < 4 || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return fault.InvalidField("auth_string", "authentication string %q: must be 4 to 10 digits", s)
	}
	return nil
}

// vocab is the key a value of a fixed vocabulary is looked up by: lower
// case, without white space, '-' and '_', so that "Non Secure",
// "non-secure" and "NONSECURE", or "RSA 2048" and "rsa2048", are one.
func vocab(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), r == '-', r == '_':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// Validate checks the administrator-controlled fields of d for consistency,
// returning the first problem as an Invalid error. It expects normalized
// values (as the Parse functions return).
func (d *Device) Validate() error {
	if _, err := NormalizeName(d.Name); err != nil {
		return err
	}
	if _, err := ParseSecurityProfile(string(d.SecurityProfile)); err != nil {
		return err
	}
	if _, err := ParseAuthMode(string(d.AuthMode)); err != nil {
		return err
	}
	if _, err := ParseOperation(string(d.Operation)); err != nil {
		return err
	}
	if _, err := ParseKeySpec(string(d.Key)); err != nil {
		return err
	}
	if d.AuthString != "" {
		if err := ValidateAuthString(d.AuthString); err != nil {
			return err
		}
	}
	if d.AuthMode == AuthString && d.SecurityProfile != NonSecure {
		return fault.InvalidField("auth_mode", "device %s: a phone in %s security mode never contacts CAPF before it registers, so it cannot use By Authentication String; use null, lsc or mic, or the non-secure profile", d.Name, d.SecurityProfile)
	}
	if utf8.RuneCountInString(d.Description) > 128 {
		return fault.InvalidField("description", "device %s: description is longer than 128 characters", d.Name)
	}
	return nil
}
