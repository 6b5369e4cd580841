package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/cluster"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterStatusCmd) }

func newClusterStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the serve nodes (id, addresses, version, started, last seen, sessions now, leases held) and the job leases",
		Long: `List the capf serve nodes registered in the database and the leases of the
once-per-fleet jobs. A node heartbeats every third of its term (30 s); one
whose registration expired is shown as dead, and the node holding the
sweeper lease fails the sessions it left open.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runClusterStatus(cmd.Context(), g, asJSON, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// clusterStatusJSON is the --json form of `capf cluster status`.
type clusterStatusJSON struct {
	At     time.Time   `json:"at"`
	Nodes  []nodeJSON  `json:"nodes"`
	Leases []leaseJSON `json:"leases"`
}

type nodeJSON struct {
	ID        string    `json:"id"`
	Alive     bool      `json:"alive"`
	Addresses []string  `json:"addresses"`
	Version   string    `json:"version"`
	Started   time.Time `json:"started"`
	LastSeen  time.Time `json:"last_seen"`
	Expires   time.Time `json:"expires"`
	Sessions  int       `json:"sessions"`
	Leases    []string  `json:"leases"`
}

type leaseJSON struct {
	Name     string    `json:"name"`
	Holder   string    `json:"holder"`
	Held     bool      `json:"held"`
	Term     int64     `json:"term"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

func runClusterStatus(ctx context.Context, g *globals, asJSON bool, now time.Time) error {
	st, err := g.openStore(ctx, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := cluster.ReadStatus(ctx, st, st, now)
	if err != nil {
		return err
	}
	if asJSON {
		out := clusterStatusJSON{At: s.At.UTC(), Nodes: []nodeJSON{}, Leases: []leaseJSON{}}
		for _, n := range s.Nodes {
			out.Nodes = append(out.Nodes, nodeJSON{ID: n.ID, Alive: n.Alive, Addresses: statusList(n.Addresses), Version: n.Version,
				Started: n.Started, LastSeen: n.LastSeen, Expires: n.Expires, Sessions: n.Sessions, Leases: statusList(n.Leases)})
		}
		for _, l := range s.Leases {
			out.Leases = append(out.Leases, leaseJSON{Name: l.Name, Holder: l.Holder, Held: l.HeldAt(now), Term: l.Term, Acquired: l.Acquired, Expires: l.Expires})
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tSTATE\tVERSION\tSTARTED\tLAST SEEN\tSESSIONS\tLEASES\tADDRESSES")
	for _, n := range s.Nodes {
		state := "alive"
		if !n.Alive {
			state = "dead"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.ID, state, n.Version, statusTime(n.Started),
			statusAgo(now, n.LastSeen), n.Sessions, statusDash(strings.Join(n.Leases, ",")), statusDash(strings.Join(n.Addresses, "; ")))
	}
	if len(s.Nodes) == 0 {
		fmt.Fprintln(w, "(no node registered: no capf serve has run on this database yet)")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "LEASE\tHOLDER\tTERM\tEXPIRES")
	for _, l := range s.Leases {
		holder := l.Holder
		if !l.HeldAt(now) {
			holder = "(free)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", l.Name, holder, l.Term, statusTime(l.Expires))
	}
	return w.Flush()
}

// statusTime formats t for the table: RFC 3339 in UTC, "-" for zero.
func statusTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// statusAgo says how long before now t was, to the second.
func statusAgo(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func statusDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statusList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
