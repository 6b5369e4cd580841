package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
)

func init() { subcommands = append(subcommands, newCampaignCmd) }

// newCampaignCmd is `capf campaign`: the bulk operations scheduled from
// the web UI or the API, listed and cancelled on the server's own host or,
// with --server, through its API.
func newCampaignCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaign",
		Short: "List or cancel bulk operations (campaigns)",
	}
	for _, sub := range []*cobra.Command{newCampaignListCmd(g), newCampaignCancelCmd(g)} {
		cmd.AddCommand(canRunRemote(sub))
	}
	return canRunRemote(cmd)
}

func newCampaignListCmd(g *globals) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the campaigns, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, done, err := g.deviceAdmin(readOnly)
			if err != nil {
				return err
			}
			defer done()
			cs, err := admin.Campaigns(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				if cs == nil {
					cs = []device.Campaign{}
				}
				return printJSON(g.stdout, cs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSCHEDULED\tBY\tOPERATION\tPHONES\tSKIPPED\tSTATE\tSEARCH")
			for _, c := range cs {
				state := "scheduled"
				if c.Cancelled() {
					state = "cancelled " + c.CancelledAt.UTC().Format(time.RFC3339) + " by " + c.CancelledBy
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", c.ID, c.CreatedAt.UTC().Format(time.RFC3339), c.Actor,
					c.Operation.Label(), c.Devices, c.Skipped, state, c.Search)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (0: all; through --server at most 1000)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newCampaignCancelCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a campaign: its phones still waiting return to No Pending Operation",
		Long: "Cancel a campaign: its phones still waiting for its operation (pending, or failed and waiting to retry)\n" +
			"return to No Pending Operation. Phones running a session now, or changed since by someone else, are\n" +
			"left alone and counted. Audited as campaign.cancel.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usagef("campaign id %q: want a positive number, as capf campaign list shows it", args[0])
			}
			admin, done, err := g.deviceAdmin(readWrite)
			if err != nil {
				return err
			}
			defer done()
			r, err := admin.CancelCampaign(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"campaign": r.Campaign, "cancelled": r.Cancelled, "skipped": r.Skipped(),
					"running": r.Running, "changed": r.Changed, "finished": r.Finished})
			}
			fmt.Fprintf(g.stdout, "campaign %d cancelled: %d phones back to No Pending Operation; skipped %d (%d running a session now, %d changed since by someone else); %d finished already\n",
				id, r.Cancelled, r.Skipped(), r.Running, r.Changed, r.Finished)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
