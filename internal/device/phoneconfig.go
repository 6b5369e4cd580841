package device

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/capf-server/capf/internal/fault"
)

// capfAuthModes are the <capfAuthMode> values of a phone's configuration.
var capfAuthModes = map[AuthMode]int{AuthString: 1, AuthNull: 2, AuthLSC: 3, AuthMIC: 4}

// deviceSecurityModes are the <deviceSecurityMode> values.
var deviceSecurityModes = map[SecurityProfile]int{NonSecure: 1, Authenticated: 2, Encrypted: 3}

// PhoneConfig returns the CAPF part of the phone's SEP<MAC>.cnf.xml, to
// paste inside <device>: capfAuthMode, the capfList naming host and port
// (where the service listens for phones), and deviceSecurityMode. The
// host is XML-escaped; a port that is not 1–65535 is Invalid.
func PhoneConfig(d Device, host, port string) (string, error) {
	mode, ok := capfAuthModes[d.AuthMode]
	if !ok {
		return "", fault.Invalidf("%s: authentication mode %q has no capfAuthMode", d.Name, d.AuthMode)
	}
	sec, ok := deviceSecurityModes[d.SecurityProfile]
	if !ok {
		return "", fault.Invalidf("%s: security profile %q has no deviceSecurityMode", d.Name, d.SecurityProfile)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fault.InvalidField("port", "phone port %q: want a port number from 1 to 65535 (the service listens on an ephemeral port?)", port)
	}
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(host))
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- CAPF settings of %s: paste into its SEP<MAC>.cnf.xml, inside <device> -->\n", d.Name)
	fmt.Fprintf(&b, "<capfAuthMode>%d</capfAuthMode>\n", mode)
	fmt.Fprintf(&b, "<capfList>\n  <capf>\n    <phonePort>%s</phonePort>\n    <processNodeName>%s</processNodeName>\n  </capf>\n</capfList>\n", port, esc.String())
	fmt.Fprintf(&b, "<deviceSecurityMode>%d</deviceSecurityMode>\n", sec)
	return b.String(), nil
}
