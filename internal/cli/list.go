package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
	"github.com/capf-server/capf/internal/view"
)

// listFlags are the Find Phone criteria as flags.
type listFlags struct {
	c      device.Criteria
	asJSON bool
}

func (f *listFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.c.Name, "name", "", "device name begins with")
	fl.StringVar(&f.c.Description, "description", "", "description contains")
	fl.StringVar(&f.c.AuthString, "auth-string", "", "authentication string is exactly")
	fl.StringVar(&f.c.SecurityProfile, "security-profile", "", "security profile is (non-secure, authenticated, encrypted)")
	fl.StringVar(&f.c.LSCStatus, "lsc-status", "", "LSC status is (none, valid, expired, revoked)")
	fl.StringVar(&f.c.Operation, "operation", "", "pending operation is (none, install, delete, troubleshoot)")
	fl.StringVar(&f.c.Status, "status", "", "operation status contains (e.g. Failed)")
	fl.StringVar(&f.c.ExpiresBefore, "expires-before", "", "LSC expires before (RFC 3339 time, or a duration from now such as 720h)")
	fl.StringArrayVar(&f.c.Where, "where", nil, "FIELD:MATCH:VALUE, repeatable (search within results); fields: name, description, security-profile, auth-mode, auth-string, operation, status, lsc-status, lsc-expires; matches: begins-with, contains, ends-with, equals, is-empty, is-not-empty, before, after")
	fl.StringVar(&f.c.Sort, "sort", "name", "sort field: "+device.FieldList(device.SortFields))
	fl.BoolVar(&f.c.Desc, "desc", false, "sort descending")
	fl.IntVar(&f.c.Limit, "limit", 0, "at most this many (0: all)")
	fl.IntVar(&f.c.Offset, "offset", 0, "skip this many")
}

// query turns the flags into a device query; every criterion must hold.
// The criteria are the domain's; only the flag names are the CLI's.
func (f *listFlags) query(now time.Time) (device.Query, error) {
	q, err := f.c.Query(now)
	if err != nil {
		msg := err.Error()
		for _, flag := range []string{"where ", "sort ", "expires-before "} {
			if strings.HasPrefix(msg, flag) {
				msg = "--" + msg // the criterion's name is the flag's
			}
		}
		return q, usagef("%s", msg)
	}
	return q, nil
}

// find runs the Find Phone search the flags describe, locally or on the
// remote server; the criteria are checked here first, so that a mistake is
// reported in the flags' words either way.
func (g *globals) find(ctx context.Context, f *listFlags) (view.DeviceList, error) {
	if _, err := f.query(time.Now()); err != nil {
		return view.DeviceList{}, err
	}
	a, done, err := g.deviceAdmin(readOnly)
	if err != nil {
		return view.DeviceList{}, err
	}
	defer done()
	return a.FindDevices(ctx, f.c)
}

func newDeviceListCmd(g *globals) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Find and list phones (all criteria must hold)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			page, err := g.find(cmd.Context(), &f)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(g.stdout, page)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tDESCRIPTION\tPROFILE\tAUTH MODE\tAUTH STRING\tOPERATION\tSTATUS\tLSC\tLSC VALID UNTIL")
			for _, d := range page.Devices {
				until := report.NA
				if d.LSCValidUntil != nil {
					until = d.LSCValidUntil.UTC().Format("2006-01-02")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Description, d.SecurityProfile, d.AuthMode,
					report.OrNA(d.AuthString), d.Operation, d.Status, d.LSCStatus, until)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d of %d devices\n", len(page.Devices), page.Total)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print as JSON")
	return cmd
}
