package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
)

// listFlags are the Find Phone criteria.
type listFlags struct {
	name, description, authString, profile, lscStatus, operation, status string
	expiresBefore                                                        string
	filters                                                              []string
	sort                                                                 string
	desc, asJSON                                                         bool
	limit, offset                                                        int
}

func (f *listFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "device name begins with")
	fl.StringVar(&f.description, "description", "", "description contains")
	fl.StringVar(&f.authString, "auth-string", "", "authentication string is exactly")
	fl.StringVar(&f.profile, "security-profile", "", "security profile is (non-secure, authenticated, encrypted)")
	fl.StringVar(&f.lscStatus, "lsc-status", "", "LSC status is (none, valid, expired)")
	fl.StringVar(&f.operation, "operation", "", "pending operation is (none, install, delete, troubleshoot)")
	fl.StringVar(&f.status, "status", "", "operation status contains (e.g. Failed)")
	fl.StringVar(&f.expiresBefore, "expires-before", "", "LSC expires before (RFC 3339 time, or a duration from now such as 720h)")
	fl.StringArrayVar(&f.filters, "where", nil, "FIELD:MATCH:VALUE, repeatable (search within results); fields: name, description, security-profile, auth-mode, auth-string, operation, status, lsc-status, lsc-expires; matches: begins-with, contains, ends-with, equals, is-empty, is-not-empty, before, after")
	fl.StringVar(&f.sort, "sort", "name", "sort field: "+fieldList(sortFields))
	fl.BoolVar(&f.desc, "desc", false, "sort descending")
	fl.IntVar(&f.limit, "limit", 0, "at most this many (0: all)")
	fl.IntVar(&f.offset, "offset", 0, "skip this many")
}

// query turns the flags into a device query; every criterion must hold.
func (f *listFlags) query(now time.Time) (device.Query, error) {
	q := device.Query{Sort: device.Field(f.sort), Desc: f.desc, Limit: f.limit, Offset: f.offset, Now: now}
	add := func(field device.Field, m device.Match, v string) {
		q.Filters = append(q.Filters, device.Filter{Field: field, Match: m, Value: v})
	}
	if f.name != "" {
		add(device.FieldName, device.MatchBeginsWith, f.name)
	}
	if f.description != "" {
		add(device.FieldDescription, device.MatchContains, f.description)
	}
	if f.authString != "" {
		add(device.FieldAuthString, device.MatchEquals, f.authString)
	}
	if f.profile != "" {
		p, err := device.ParseSecurityProfile(f.profile)
		if err != nil {
			return q, err
		}
		add(device.FieldSecurityProfile, device.MatchEquals, string(p))
	}
	if f.lscStatus != "" {
		add(device.FieldLSCStatus, device.MatchEquals, strings.ToLower(f.lscStatus))
	}
	if f.operation != "" {
		o, err := device.ParseOperation(f.operation)
		if err != nil {
			return q, err
		}
		add(device.FieldOperation, device.MatchEquals, string(o))
	}
	if f.status != "" {
		add(device.FieldStatus, device.MatchContains, f.status)
	}
	if f.expiresBefore != "" {
		t, err := time.Parse(time.RFC3339, f.expiresBefore)
		if err != nil {
			d, derr := time.ParseDuration(f.expiresBefore)
			if derr != nil {
				return q, usagef("--expires-before %q: want an RFC 3339 time or a duration like 720h", f.expiresBefore)
			}
			t = now.Add(d)
		}
		add(device.FieldLSCExpires, device.MatchBefore, t.UTC().Format(time.RFC3339))
	}
	for _, w := range f.filters {
		parts := strings.SplitN(w, ":", 3)
		if len(parts) < 2 {
			return q, usagef("--where %q: want FIELD:MATCH:VALUE", w)
		}
		m := device.Match(parts[1])
		takesValue := m != device.MatchEmpty && m != device.MatchNotEmpty
		switch {
		case takesValue && len(parts) < 3:
			return q, usagef("--where %q: match %s needs a value: want FIELD:%s:VALUE", w, m, m)
		case !takesValue && len(parts) == 3:
			return q, usagef("--where %q: match %s takes no value: want FIELD:%s", w, m, m)
		}
		v := ""
		if len(parts) == 3 {
			v = parts[2]
		}
		add(device.Field(parts[0]), m, v)
	}
	if !slices.Contains(sortFields, q.Sort) {
		return q, usagef("--sort %q: want one of %s", f.sort, fieldList(sortFields))
	}
	return q, q.Validate()
}

// sortFields are the fields a Find Phone result can be sorted by.
var sortFields = []device.Field{
	device.FieldName, device.FieldDescription, device.FieldSecurityProfile, device.FieldAuthMode,
	device.FieldAuthString, device.FieldOperation, device.FieldStatus, device.FieldLSCExpires,
}

// fieldList lists fields as "a, b, c".
func fieldList(fs []device.Field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// find runs the Find Phone query the flags describe.
func (g *globals) find(ctx context.Context, f *listFlags, now time.Time) (device.Page, error) {
	q, err := f.query(now)
	if err != nil {
		return device.Page{}, err
	}
	svc, done, err := g.openService(ctx, readOnly)
	if err != nil {
		return device.Page{}, err
	}
	defer done()
	return svc.List(ctx, q)
}

func newDeviceListCmd(g *globals) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Find and list phones (all criteria must hold)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			page, err := g.find(cmd.Context(), &f, now)
			if err != nil {
				return err
			}
			if f.asJSON {
				views := make([]deviceView, 0, len(page.Devices))
				for _, d := range page.Devices {
					views = append(views, viewOf(d))
				}
				return printJSON(g.stdout, struct {
					Total   int          `json:"total"`
					Devices []deviceView `json:"devices"`
				}{page.Total, views})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tDESCRIPTION\tPROFILE\tAUTH MODE\tAUTH STRING\tOPERATION\tSTATUS\tLSC\tLSC VALID UNTIL")
			for _, d := range page.Devices {
				until := report.NA
				if d.LSC != nil {
					until = d.LSC.NotAfter.UTC().Format("2006-01-02")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Description, d.SecurityProfile, d.AuthMode,
					report.OrNA(d.AuthString), d.Operation, d.Status, d.LSCState(now), until)
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
