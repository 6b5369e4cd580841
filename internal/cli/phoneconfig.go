package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/overview"
	"github.com/capf-server/capf/internal/system"
)

func init() { subcommands = append(subcommands, newPhoneConfigCmd) }

func newPhoneConfigCmd(g *globals) *cobra.Command {
	var host, port, servers string
	cmd := &cobra.Command{
		Use:   "phone-config NAME",
		Short: "Print the CAPF part of the phone's SEP<MAC>.cnf.xml (capfAuthMode, capfList, deviceSecurityMode) to paste",
		Long: `Print the CAPF part of the phone's SEP<MAC>.cnf.xml: capfAuthMode, the capfList
with the CAPF servers phones try in order, and deviceSecurityMode.

The capfList is --server when given (up to five HOST[:PORT] separated by
commas), else --host alone when given, else the fleet parameter capf_servers
when set, else this machine's host name alone. An entry without a port takes
the port the running capf serve listens on for phones (a --listen flag of
serve included); with no serve running, the listen parameter of capf.json;
--port overrides both.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if servers != "" && host != "" {
				return usagef("give --server (the whole capfList) or --host (one server), not both")
			}
			node, err := g.loadConfig()
			if err != nil {
				return err
			}
			if port == "" {
				if port, err = phonePort(g, node); err != nil {
					return err
				}
			}
			st, err := g.openStore(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer st.Close()
			// capf_servers is a fleet parameter: the database's is in force.
			cfg, _, err := system.NewService(system.Options{DataDir: g.dataDir, Store: st}).Effective(cmd.Context(), node)
			if err != nil {
				return err
			}
			entries, from := []string(cfg.CAPFServers), "capf_servers"
			switch {
			case servers != "":
				entries, from = strings.Split(servers, ","), "--server"
				for i := range entries {
					entries[i] = strings.TrimSpace(entries[i])
				}
			case host != "":
				entries = nil
			}
			if len(entries) == 0 && host == "" {
				if host, err = os.Hostname(); err != nil {
					return fmt.Errorf("host name: %w (give --host or --server)", err)
				}
			}
			if len(entries) == 0 {
				if err := capflist.CheckHost(host); err != nil {
					return usagef("--host: %s", fault.Message(err))
				}
			} else if _, err := capflist.Parse(entries); err != nil {
				return usagef("%s: %s", from, fault.Message(err))
			}
			d, err := device.NewService(device.ServiceOptions{Store: st}).Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, snippet, err := overview.PhoneSnippet(d, entries, host, port)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(g.stdout, snippet)
			return err
		},
	}
	cmd.Flags().StringVar(&servers, "server", "", "the capfList: up to 5 CAPF servers HOST[:PORT] separated by commas, in the order phones try them (default: capf_servers, else this machine alone)")
	cmd.Flags().StringVar(&host, "host", "", "one server: the host name or address phones reach this CAPF at (default: capf_servers, else this machine's host name)")
	cmd.Flags().StringVar(&port, "port", "", "port phones reach this CAPF at, for servers without one (default: where the running serve listens, else capf.json's listen)")
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
