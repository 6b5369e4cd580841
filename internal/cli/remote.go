package cli

import (
	"crypto/x509"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/apiclient"
)

// remoteFlags name the server a command drives through its REST API
// instead of the local data directory.
type remoteFlags struct {
	server, token, serverCA string
}

// remoteAnnotation marks a command that also works on a remote server.
const remoteAnnotation = "capf.remote"

// maxCAFileBytes bounds the --server-ca file.
const maxCAFileBytes = 1 << 20

// remoteCommands names the commands that work with --server, for the help
// and the refusal of --server elsewhere.
const remoteCommands = "device, report csv, audit, service, cert, campaign and config show/set"

// canRunRemote marks cmd as one that works with --server.
func canRunRemote(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[remoteAnnotation] = "yes"
	return cmd
}

// registerRemoteFlags adds --server, --token and --server-ca to root, and
// a check that refuses them on a command that works only on the server's
// own host. capf phone and capf bench have a --server of their own (the
// CAPF listener's HOST:PORT), which shadows this one for them. The environment (CAPF_SERVER, CAPF_TOKEN, CAPF_SERVER_CA)
// fills in what the flags leave out, but only for the commands that can
// run remotely: with CAPF_SERVER exported, `capf serve` still serves.
// The token is read from the environment rather than shown as a flag
// default, so that --help never prints it.
func (g *globals) registerRemoteFlags(root *cobra.Command) {
	fl := root.PersistentFlags()
	fl.StringVar(&g.remote.server, "server", "", "drive the server at this https address (e.g. https://capf.example:8443) through its API instead of --data (env CAPF_SERVER); works with "+remoteCommands)
	fl.StringVar(&g.remote.token, "token", "", "API token for --server (env CAPF_TOKEN, which keeps it out of the process list)")
	fl.StringVar(&g.remote.serverCA, "server-ca", "", "PEM file of the CA that issued the server's certificate, the admin CA's ca.pem (env CAPF_SERVER_CA; default: the system roots)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Annotations[remoteAnnotation] == "" && !isHelp(cmd) {
			for _, name := range []string{"server", "token", "server-ca"} {
				if fl.Changed(name) {
					return usagef("%s does not work through a server's admin API: --%s is for the %s commands (run %s on the server's own host)", cmd.CommandPath(), name, remoteCommands, cmd.CommandPath())
				}
			}
			g.remote = remoteFlags{}
			return nil
		}
		// The environment fills what the flags left unset without marking
		// them given: CAPF_TOKEN or CAPF_SERVER_CA in a profile must not
		// turn a local command into a usage error.
		for _, e := range []struct {
			flag, env string
			v         *string
		}{{"server", "CAPF_SERVER", &g.remote.server}, {"token", "CAPF_TOKEN", &g.remote.token}, {"server-ca", "CAPF_SERVER_CA", &g.remote.serverCA}} {
			if !fl.Changed(e.flag) {
				*e.v = os.Getenv(e.env)
			}
		}
		switch {
		case g.remote.server == "" && (g.remote.token != "" && fl.Changed("token") || g.remote.serverCA != "" && fl.Changed("server-ca")):
			return usagef("--token and --server-ca need --server (or CAPF_SERVER)")
		case g.remote.server != "" && g.remote.token == "":
			return usagef("--server needs an API token: --token or CAPF_TOKEN (create one with capf admin token create NAME on the server)")
		}
		return nil
	}
}

// apiClient returns a client of the server --server names.
func (g *globals) apiClient() (*apiclient.Client, error) {
	o := apiclient.Options{Server: g.remote.server, Token: g.remote.token}
	if g.remote.serverCA != "" {
		pool, err := readCAFile(g.remote.serverCA)
		if err != nil {
			return nil, err
		}
		o.RootCAs = pool
	}
	return apiclient.New(o)
}

// readCAFile reads the --server-ca file.
func readCAFile(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--server-ca: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAFileBytes+1))
	if err != nil {
		return nil, usagef("--server-ca: %v", err)
	}
	if len(data) > maxCAFileBytes {
		return nil, usagef("--server-ca %s: larger than %d KiB; want the admin CA's ca.pem", path, maxCAFileBytes>>10)
	}
	pool, err := apiclient.CertPool(data)
	if err != nil {
		return nil, usagef("--server-ca %s: no PEM certificate in it; want the admin CA's ca.pem", path)
	}
	return pool, nil
}

// isHelp reports whether cmd is cobra's help or completion command, which
// run anywhere.
func isHelp(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		switch c.Name() {
		case "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return true
		}
	}
	return false
}
