package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

func init() { subcommands = append(subcommands, newPhoneConfigCmd) }

func newPhoneConfigCmd(g *globals) *cobra.Command {
	var host, port string
	cmd := &cobra.Command{
		Use:   "phone-config NAME",
		Short: "Print the CAPF part of the phone's SEP<MAC>.cnf.xml (capfAuthMode, capfList, deviceSecurityMode) to paste",
		Long: `Print the CAPF part of the phone's SEP<MAC>.cnf.xml: capfAuthMode, the capfList
with the host and port phones reach this CAPF at, and deviceSecurityMode.

The port is the one the running capf serve listens on for phones (a --listen
flag of serve included); with no serve running, the listen parameter of
capf.json; --port overrides both.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if port == "" {
				if port, err = phonePort(g, cfg); err != nil {
					return err
				}
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
			snippet, err := device.PhoneConfig(d, host, port)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(g.stdout, snippet)
			return err
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "host name or address phones reach this CAPF at (default: this machine's host name)")
	cmd.Flags().StringVar(&port, "port", "", "port phones reach this CAPF at (default: where the running serve listens, else capf.json's listen)")
	return cmd
}

// phonePort is the port phones reach the service at: the running serve's
// (it records its phone address while it holds the data directory), else
// the listen parameter's.
func phonePort(g *globals, cfg config.Config) (string, error) {
	if fault.KindOf(probeLock(g)) == fault.Conflict { // a serve holds the directory
		b, err := os.ReadFile(g.dir().PhoneListen())
		switch {
		case err == nil:
			if _, p, err := net.SplitHostPort(strings.TrimSpace(string(b))); err == nil {
				return p, nil
			}
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("read the running serve's phone address: %w", err)
		}
	}
	_, p, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fault.Invalidf("listen %q: %v", cfg.Listen, err)
	}
	return p, nil
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
