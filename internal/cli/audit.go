package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
)

func init() { subcommands = append(subcommands, newAuditCmd) }

func newAuditCmd(g *globals) *cobra.Command {
	var target string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List the audit stream: every administrative change (who, when, what, old → new), newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, done, err := g.deviceAdmin(readOnly)
			if err != nil {
				return err
			}
			defer done()
			evs, err := a.Audit(cmd.Context(), device.AuditQuery{Target: target, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, evs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tCHANGES")
			for _, ev := range evs {
				changes := make([]string, 0, len(ev.Changes))
				for _, c := range ev.Changes {
					changes = append(changes, fmt.Sprintf("%s: %q → %q", c.Field, c.Old, c.New))
				}
				if ev.Detail != "" {
					changes = append(changes, ev.Detail)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.At.UTC().Format(time.RFC3339), ev.Actor, ev.Action, ev.Target, strings.Join(changes, "; "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&target, "device", "", "only the events of this device")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return canRunRemote(cmd)
}

// The audit actions of the trust commands: files signed with a SAST key and
// the export of the backup SAST key.
const (
	auditTrustBuild        = "trust.build"
	auditTrustSign         = "trust.sign"
	auditTrustExportBackup = "trust.export-backup"
)

// recordAudit appends an event for an administrative action that changes
// no device (a signed trust file, an exported key), by the CLI's user.
// A command that cannot record its action fails: what is not audited
// must not pass unnoticed.
func (g *globals) recordAudit(ctx context.Context, action, target, detail string) error {
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	defer st.Close()
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: action, Target: target, Detail: detail}
	if err := st.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}
