package cli

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

func init() { subcommands = append(subcommands, newPhoneConfigCmd) }

// capfAuthModes are the <capfAuthMode> values of the phone configuration.
var capfAuthModes = map[device.AuthMode]int{
	device.AuthString: 1,
	device.AuthNull:   2,
	device.AuthLSC:    3,
	device.AuthMIC:    4,
}

// deviceSecurityModes are the <deviceSecurityMode> values.
var deviceSecurityModes = map[device.SecurityProfile]int{
	device.NonSecure:     1,
	device.Authenticated: 2,
	device.Encrypted:     3,
}

func newPhoneConfigCmd(g *globals) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "phone-config NAME",
		Short: "Print the CAPF part of the phone's SEP<MAC>.cnf.xml (capfAuthMode, capfList, deviceSecurityMode) to paste",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			_, port, err := net.SplitHostPort(cfg.Listen)
			if err != nil {
				return fault.Invalidf("listen %q: %v", cfg.Listen, err)
			}
			if host == "" {
				if host, err = os.Hostname(); err != nil {
					return fmt.Errorf("host name: %w (give --host)", err)
				}
			}
			if err := validHost(host); err != nil {
				return err
			}
			svc, done, err := g.openService(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			d, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			mode, ok := capfAuthModes[d.AuthMode]
			if !ok {
				return fmt.Errorf("%s: authentication mode %q has no capfAuthMode", d.Name, d.AuthMode)
			}
			sec, ok := deviceSecurityModes[d.SecurityProfile]
			if !ok {
				return fmt.Errorf("%s: security profile %q has no deviceSecurityMode", d.Name, d.SecurityProfile)
			}
			var esc strings.Builder
			_ = xml.EscapeText(&esc, []byte(host))
			w := g.stdout
			fmt.Fprintf(w, "<!-- CAPF settings of %s: paste into its SEP<MAC>.cnf.xml, inside <device> -->\n", d.Name)
			fmt.Fprintf(w, "<capfAuthMode>%d</capfAuthMode>\n", mode)
			fmt.Fprintf(w, "<capfList>\n  <capf>\n    <phonePort>%s</phonePort>\n    <processNodeName>%s</processNodeName>\n  </capf>\n</capfList>\n", port, esc.String())
			fmt.Fprintf(w, "<deviceSecurityMode>%d</deviceSecurityMode>\n", sec)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "host name or address phones reach this CAPF at (default: this machine's host name)")
	return cmd
}

// validHost accepts a DNS name or an IP address, as phones resolve
// processNodeName.
func validHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) == 0 || len(h) > 253 {
		return usagef("--host %q: want a host name or IP address", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return usagef("--host %q: want a host name or IP address", h)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return usagef("--host %q: want a host name or IP address", h)
			}
		}
	}
	return nil
}
