package lsc

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/capf-server/capf/internal/fault"
)

// maxSerialDigits bounds a serial: RFC 5280 allows 20 octets.
const maxSerialDigits = 40

// ParseSerial turns a serial as an administrator gives it, in hex as
// `openssl x509 -serial` prints it ("serial=" prefix optional, case and
// colons ignored, "0x" allowed), into the form the inventory keys it by:
// upper-case hex of its bytes, even length, no separators. It refuses an
// empty, malformed, non-hex, zero or over-long serial with the reason.
func ParseSerial(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) > 3*maxSerialDigits+16 {
		return "", fault.InvalidField("serial", "serial: longer than 20 octets")
	}
	if p, ok := strings.CutPrefix(strings.ToLower(t), "serial="); ok {
		t = p
	}
	t = strings.ReplaceAll(t, ":", "")
	if p, ok := strings.CutPrefix(strings.ToLower(t), "0x"); ok {
		t = p
	}
	if t == "" {
		return "", fault.InvalidField("serial", "serial %q: empty; give it in hex as openssl x509 -serial prints it", s)
	}
	for i, c := range t {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return "", fault.InvalidField("serial", "serial %q: %q at position %d is not a hex digit", s, c, i+1)
		}
	}
	if len(strings.TrimLeft(t, "0")) > maxSerialDigits {
		return "", fault.InvalidField("serial", "serial %q: longer than 20 octets", s)
	}
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || n.Sign() == 0 {
		return "", fault.InvalidField("serial", "serial %q: zero is no certificate's serial", s)
	}
	return fmt.Sprintf("%X", n.Bytes()), nil
}
