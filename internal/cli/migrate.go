package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/store"
)

func init() { subcommands = append(subcommands, newMigrateCmd) }

func newMigrateCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date (serve does it on start); --dry-run lists what it would apply and changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := g.storeOptions(store.ReadWrite)
			sc, err := store.Migrate(cmd.Context(), o, dryRun)
			if err != nil {
				return err
			}
			w := g.stdout
			fmt.Fprintf(w, "database:       %s\n", store.Describe(o))
			fmt.Fprintf(w, "schema version: %d (this binary: %d)\n", sc.Current, sc.Known)
			switch {
			case len(sc.Pending) == 0:
				fmt.Fprintln(w, "up to date")
			case dryRun:
				fmt.Fprintln(w, "would apply:")
			default:
				fmt.Fprintln(w, "applied:")
			}
			for _, m := range sc.Pending {
				fmt.Fprintf(w, "  %s\n", m)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the migrations the database lacks; change nothing")
	return cmd
}
