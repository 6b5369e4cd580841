package cli

import "github.com/spf13/cobra"

func init() { subcommands = append(subcommands, newClusterCmd) }

// clusterSubcommands lists the constructors of the `capf cluster`
// subcommands; each file adds its own in an init function (cluster init in
// cluster_init.go).
var clusterSubcommands []func(*globals) *cobra.Command

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Set up and look at several capf serve nodes on one PostgreSQL database"}
	for _, add := range clusterSubcommands {
		cmd.AddCommand(add(g))
	}
	return cmd
}
