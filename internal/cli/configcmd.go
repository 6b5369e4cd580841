package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/config"
)

func init() { subcommands = append(subcommands, newConfigCmd) }

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and check the service parameters (capf.json)"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show every service parameter with its value and help text",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			values, err := paramValues(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Service parameters (%s; a restart of capf serve applies a change)\n\n", g.dir().Config())
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			for _, p := range config.Params {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Key, values[p.Key], p.Help)
			}
			return tw.Flush()
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
			return nil
		},
	}
	cmd.AddCommand(show, validate)
	return cmd
}

// paramValues returns each parameter's value as JSON text.
func paramValues(cfg config.Config) (map[string]string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = string(v)
	}
	return out, nil
}
