package lsc

import (
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestParseSerial(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"ok/openssl-x509-serial", "serial=5B3E9A01FF", "5B3E9A01FF"},
		{"ok/lower-case", "5b3e9a01ff", "5B3E9A01FF"},
		{"ok/colons", "5b:3e:9a:01:ff", "5B3E9A01FF"},
		{"ok/0x", "0x7E57", "7E57"},
		{"ok/odd-length-padded", "A", "0A"},
		{"ok/leading-zeros-dropped", "00007E57", "7E57"},
		{"ok/space-trimmed", "  7E57\n", "7E57"},
		{"ok/20-octets", "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSerial(c.in)
			if err != nil || got != c.want {
				t.Errorf("ParseSerial(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
	for _, c := range []struct{ name, in string }{
		{"fail/empty", ""},
		{"fail/only-prefix", "serial="},
		{"fail/not-hex", "5G3E"},
		{"fail/decimal-minus", "-12"},
		{"fail/zero", "00"},
		{"fail/21-octets", "01" + "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"},
		{"fail/huge", string(make([]byte, 10000))},
		{"fail/unicode", "7E５7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSerial(c.in)
			if err == nil || fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "serial" {
				t.Errorf("ParseSerial(%q) = %q, %v; want an Invalid serial error", c.in, got, err)
			}
		})
	}
}

func TestParseReason(t *testing.T) {
	for _, ok := range []string{"keyCompromise", "KEYCOMPROMISE", "superseded", "cessationOfOperation", "unspecified", "affiliationChanged", "privilegeWithdrawn"} {
		if _, err := ParseReason(ok); err != nil {
			t.Errorf("ParseReason(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "certificateHold", "removeFromCRL", "cACompromise", "1", "nope"} {
		if _, err := ParseReason(bad); fault.KindOf(err) != fault.Invalid {
			t.Errorf("ParseReason(%q) = %v, want Invalid", bad, err)
		}
	}
}
