package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/system"
)

func init() { subcommands = append(subcommands, newConfigCmd) }

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show, change and check the service parameters: fleet parameters in the database, node settings in capf.json"}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Show every service parameter with its value, where it lives and its help text",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigShow(cmd.Context(), g, asJSON)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change one service parameter: a fleet parameter in the database (every node applies it within seconds), a node setting in this node's capf.json (at its next start)",
		Long: `Change one service parameter. VALUE is its JSON value (30, true,
["Mon-Fri 22:00-06:00"], "30s") or, when it is not JSON, a bare string (30s,
ec256, Europe/Berlin). The value is checked as capf serve checks it; a bad key
or value is refused with the reason, and nothing changes. Every change is
audited.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigSet(cmd.Context(), g, args[0], args[1])
		},
	}
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check capf.json as capf serve would (values, listen addresses, files it names, the CAPF certificate), listing every problem; binds and writes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.hasConfigOrData(); err != nil {
				return err
			}
			if _, err := planServe(cmd.Context(), g, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: ok\n", g.dir().Config())
			if err := probeLock(g); err != nil {
				// A running node: its file is checked before its restart.
				fmt.Fprintf(g.stdout, "note: %v; the node settings apply at its next start\n", err)
			}
			return nil
		},
	}
	cmd.AddCommand(canRunRemote(show), canRunRemote(set), validate)
	return canRunRemote(cmd)
}

// paramsPlace says where the parameters a config command reads or writes
// live, in its messages: this node's capf.json and its database, or those
// of the server --server names.
type paramsPlace struct {
	nodeFile, thisNode, fleet string
}

// localPlace is this node's: capf.json of the data directory, and the
// database described by db.
func (g *globals) localPlace(db string) paramsPlace {
	return paramsPlace{nodeFile: g.dir().Config(), thisNode: "this node", fleet: db}
}

// remotePlace is the server's that --server names.
func (g *globals) remotePlace() paramsPlace {
	return paramsPlace{nodeFile: "capf.json of the node serving " + g.remote.server, thisNode: "that node", fleet: "database of " + g.remote.server}
}

// configParameters returns every parameter as in force: the node's
// capf.json and the database's fleet parameters, or, where there is no
// database yet, capf.json alone (its fleet parameters are imported when
// serve first starts). It says which it read.
func configParameters(ctx context.Context, g *globals) ([]system.Parameter, string, error) {
	if err := g.hasConfigOrData(); err != nil {
		return nil, "", err
	}
	opts := g.storeOptions(store.ReadOnly)
	if store.Initialised(opts) != nil {
		cfg, err := config.Load(g.dataDir)
		if err != nil {
			return nil, "", err
		}
		ps, err := system.ParametersOf(cfg)
		return ps, "no database yet: " + g.dir().Config() + " (its fleet parameters move into the database when capf serve first starts)", err
	}
	st, err := g.openStore(ctx, readOnly)
	if err != nil {
		return nil, "", err
	}
	defer st.Close()
	ps, err := system.NewService(system.Options{DataDir: g.dataDir, Store: st}).Parameters(ctx)
	return ps, "database " + store.Describe(opts), err
}

// runConfigShow prints the parameters, node settings first.
func runConfigShow(ctx context.Context, g *globals, asJSON bool) error {
	var ps []system.Parameter
	var place paramsPlace
	if g.remote.server != "" {
		c, err := g.apiClient()
		if err != nil {
			return err
		}
		defer c.Close()
		if ps, err = c.Parameters(ctx); err != nil {
			return err
		}
		place = g.remotePlace()
	} else {
		local, from, err := configParameters(ctx, g)
		if err != nil {
			return err
		}
		ps, place = local, g.localPlace(from)
	}
	if asJSON {
		return printJSON(g.stdout, ps)
	}
	w := g.stdout
	fmt.Fprintf(w, "Node settings (%s; a restart of capf serve on %s applies a change)\n\n", place.nodeFile, place.thisNode)
	printParams(w, ps, true)
	fmt.Fprintf(w, "\nFleet parameters (%s; capf config set KEY VALUE changes one, and every node applies it to new sessions within seconds)\n\n", place.fleet)
	printParams(w, ps, false)
	return nil
}

// printParams prints the node settings (restart) or the fleet parameters
// of ps, one a line: key, value as JSON, help.
func printParams(w io.Writer, ps []system.Parameter, restart bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range ps {
		if p.Restart == restart {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, jsonText(p.Value), p.Help)
		}
	}
	_ = tw.Flush()
}

// jsonText returns v as compact JSON.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// parseConfigValue reads VALUE of `config set` for a parameter of type
// typ: JSON, or else a bare string. For a string or duration parameter a
// VALUE that is JSON but not a JSON string (8443, true) is the bare
// string too.
func parseConfigValue(typ, text string) any {
	var v any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return text
	}
	if _, err := dec.Token(); err == nil {
		return text // more than one JSON value: a string such as `1 2`
	}
	if _, isString := v.(string); !isString && (typ == system.TypeString || typ == system.TypeDuration) {
		return text
	}
	return v
}

// runConfigSet changes one parameter and says where it went and when it
// applies.
func runConfigSet(ctx context.Context, g *globals, key, text string) error {
	if !config.IsKey(key) {
		return fault.InvalidField(key, "unknown service parameter %q: capf config show lists them", key)
	}
	params, done, place, err := g.paramsService(ctx)
	if err != nil {
		return err
	}
	defer done()
	before, err := params.Parameters(ctx)
	if err != nil {
		return err
	}
	typ := ""
	for _, p := range before {
		if p.Name == key {
			typ = p.Type
		}
	}
	after, err := params.UpdateParameters(ctx, map[string]any{key: parseConfigValue(typ, text)})
	if err != nil {
		return err
	}
	old, now := paramValue(before, key), paramValue(after, key)
	if old == now {
		fmt.Fprintf(g.stdout, "%s is %s already: nothing changed\n", key, now)
		return nil
	}
	fmt.Fprintf(g.stdout, "%s: %s → %s\n", key, old, now)
	if config.IsFleet(key) {
		fmt.Fprintf(g.stdout, "stored in the %s; every node applies it to new sessions within seconds\n", place.fleet)
	} else {
		fmt.Fprintf(g.stdout, "a node setting, written to %s: restart capf serve on %s to apply it\n", place.nodeFile, place.thisNode)
	}
	return nil
}

// paramsService is what config set reads and changes the parameters
// through: the data directory's store, or the API of the server --server
// names (which records the token as the actor).
type paramsService interface {
	Parameters(ctx context.Context) ([]system.Parameter, error)
	UpdateParameters(ctx context.Context, values map[string]any) ([]system.Parameter, error)
}

// paramsService opens the paramsService of this command, the place it
// names in messages, and a function that releases it.
func (g *globals) paramsService(ctx context.Context) (paramsService, func(), paramsPlace, error) {
	if g.remote.server != "" {
		c, err := g.apiClient()
		if err != nil {
			return nil, nil, paramsPlace{}, err
		}
		return c, c.Close, g.remotePlace(), nil
	}
	if err := g.hasConfigOrData(); err != nil {
		return nil, nil, paramsPlace{}, err
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return nil, nil, paramsPlace{}, err
	}
	svc := system.NewService(system.Options{DataDir: g.dataDir, Store: st})
	return localParams{svc: svc, actor: g.actor()}, func() { st.Close() }, g.localPlace("database " + store.Describe(g.storeOptions(store.ReadWrite))), nil
}

// localParams is the system service of the data directory, acting as the
// command's actor.
type localParams struct {
	svc   *system.Service
	actor device.Actor
}

func (l localParams) Parameters(ctx context.Context) ([]system.Parameter, error) {
	return l.svc.Parameters(ctx)
}

func (l localParams) UpdateParameters(ctx context.Context, values map[string]any) ([]system.Parameter, error) {
	return l.svc.UpdateParameters(ctx, l.actor, values)
}

// paramValue returns the value of key in ps as JSON text.
func paramValue(ps []system.Parameter, key string) string {
	for _, p := range ps {
		if p.Name == key {
			return jsonText(p.Value)
		}
	}
	return ""
}
