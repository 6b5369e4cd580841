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
	cmd.AddCommand(show, set, validate)
	return cmd
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
	ps, from, err := configParameters(ctx, g)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(g.stdout, ps)
	}
	w := g.stdout
	fmt.Fprintf(w, "Node settings (%s; a restart of capf serve on this node applies a change)\n\n", g.dir().Config())
	printParams(w, ps, true)
	fmt.Fprintf(w, "\nFleet parameters (%s; capf config set KEY VALUE changes one, and every node applies it to new sessions within seconds)\n\n", from)
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
	if err := g.hasConfigOrData(); err != nil {
		return err
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := system.NewService(system.Options{DataDir: g.dataDir, Store: st})
	before, err := svc.Parameters(ctx)
	if err != nil {
		return err
	}
	typ := ""
	for _, p := range before {
		if p.Name == key {
			typ = p.Type
		}
	}
	after, err := svc.UpdateParameters(ctx, g.actor(), map[string]any{key: parseConfigValue(typ, text)})
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
		fmt.Fprintf(g.stdout, "stored in the %s; every node applies it to new sessions within seconds\n", "database "+store.Describe(g.storeOptions(store.ReadWrite)))
	} else {
		fmt.Fprintf(g.stdout, "a node setting, written to %s: restart capf serve on this node to apply it\n", g.dir().Config())
	}
	return nil
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
