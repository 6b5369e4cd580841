package device

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/fault"
)

// capfAuthModes are the <capfAuthMode> values of a phone's configuration.
var capfAuthModes = map[AuthMode]int{AuthString: 1, AuthNull: 2, AuthLSC: 3, AuthMIC: 4}

// deviceSecurityModes are the <deviceSecurityMode> values.
var deviceSecurityModes = map[SecurityProfile]int{NonSecure: 1, Authenticated: 2, Encrypted: 3}

// PhoneConfig returns the CAPF part of the phone's SEP<MAC>.cnf.xml, to
// paste inside <device>: capfAuthMode, the capfList with one <capf> per
// server in the order phones try them (host and port where the service
// listens for phones; capflist.Resolve gives them), and
// deviceSecurityMode. Hosts are XML-escaped. A list that capflist.Check
// refuses (none, more than five, a bad host, a port that is not 1–65535,
// a server twice) is Invalid.
func PhoneConfig(d Device, servers []capflist.Server) (string, error) {
	mode, ok := capfAuthModes[d.AuthMode]
	if !ok {
		return "", fault.Invalidf("%s: authentication mode %q has no capfAuthMode", d.Name, d.AuthMode)
	}
	sec, ok := deviceSecurityModes[d.SecurityProfile]
	if !ok {
		return "", fault.Invalidf("%s: security profile %q has no deviceSecurityMode", d.Name, d.SecurityProfile)
	}
	if err := capflist.Check(servers); err != nil {
		return "", fault.Invalidf("capfList: %s", fault.Message(err))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- CAPF settings of %s: paste into its SEP<MAC>.cnf.xml, inside <device> -->\n", d.Name)
	fmt.Fprintf(&b, "<capfAuthMode>%d</capfAuthMode>\n", mode)
	b.WriteString("<capfList>\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "  <capf>\n    <phonePort>%s</phonePort>\n    <processNodeName>%s</processNodeName>\n  </capf>\n", escape(s.Port), escape(s.Host))
	}
	b.WriteString("</capfList>\n")
	fmt.Fprintf(&b, "<deviceSecurityMode>%d</deviceSecurityMode>\n", sec)
	return b.String(), nil
}

// escape returns s as XML character data.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
