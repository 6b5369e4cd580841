package cli

import (
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newClusterCmd) }

// clusterCommands are the subcommands of `capf cluster`, each added by its
// own file.
var clusterCommands []func(g *globals) *cobra.Command

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The nodes serving one fleet from one database (--db postgres://…)",
	}
	for _, c := range clusterCommands {
		cmd.AddCommand(c(g))
	}
	return cmd
}
