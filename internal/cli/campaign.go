package cli

import (
	"fmt"
	"strconv"
	"strings"
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
		Short: "List, follow or cancel bulk operations (campaigns)",
	}
	for _, sub := range []*cobra.Command{newCampaignListCmd(g), newCampaignShowCmd(g), newCampaignCancelCmd(g)} {
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

// campaignID reads a campaign id argument.
func campaignID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("campaign id %q: want a positive number, as capf campaign list shows it", arg)
	}
	return id, nil
}

func newCampaignShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Where a campaign stands: its phones done, pending, in a session, failed (grouped by reason), and the time left",
		Long: "Where a campaign stands now, as the campaign page of the web UI shows it: its phones done, still pending,\n" +
			"in a session now, failed (grouped by the status they failed with) or changed since, and the time left at the\n" +
			"rate of the last 15 minutes. --json adds the completions per minute.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := campaignID(args[0])
			if err != nil {
				return err
			}
			admin, done, err := g.deviceAdmin(readOnly)
			if err != nil {
				return err
			}
			defer done()
			p, err := admin.Campaign(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, p)
			}
			printCampaign(g, p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// printCampaign prints p as aligned lines.
func printCampaign(g *globals, p device.CampaignProgress) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	state := "scheduled"
	if p.Cancelled() {
		state = "cancelled " + p.CancelledAt.UTC().Format(time.RFC3339) + " by " + p.CancelledBy
	}
	left := "unknown (no phone has finished yet)"
	switch {
	case p.Pending+p.InProgress == 0:
		left = "none (no phone is waiting)"
	case p.RemainingKnown:
		left = p.Remaining.Round(time.Second).String() + " at the rate of the last 15 minutes"
	}
	fmt.Fprintf(tw, "campaign:\t%d, %s\n", p.ID, p.Operation.Label())
	fmt.Fprintf(tw, "scheduled:\t%s by %s\n", p.CreatedAt.UTC().Format(time.RFC3339), p.Actor)
	fmt.Fprintf(tw, "search:\t%s\n", p.Search)
	fmt.Fprintf(tw, "state:\t%s\n", state)
	fmt.Fprintf(tw, "phones:\t%d (skipped %d)\n", p.Devices, p.Skipped)
	fmt.Fprintf(tw, "done:\t%d\n", p.Done)
	fmt.Fprintf(tw, "pending:\t%d\n", p.Pending)
	fmt.Fprintf(tw, "in a session:\t%d\n", p.InProgress)
	fmt.Fprintf(tw, "failed:\t%d\n", p.Failed)
	fmt.Fprintf(tw, "changed since:\t%d\n", p.Other)
	fmt.Fprintf(tw, "time left:\t%s\n", left)
	_ = tw.Flush()
	for _, f := range p.Failures {
		fmt.Fprintf(g.stdout, "failed with %q: %s\n", f.Reason, strings.Join(f.Devices, " "))
	}
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
			id, err := campaignID(args[0])
			if err != nil {
				return err
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
