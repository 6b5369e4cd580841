package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/system"
)

func init() { subcommands = append(subcommands, newServiceCmd) }

func newServiceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Service activation: whether the CAPF service accepts phones (a running serve follows within a second)",
	}
	var asJSON bool
	for _, c := range []struct {
		use, short string
		active     *bool
	}{
		{"activate", "Activate the CAPF service: serve listens for phones again", ptr(true)},
		{"deactivate", "Deactivate the CAPF service: serve closes the phone port (phones get connection refused) and lets open sessions finish; the admin listener stays", ptr(false)},
		{"status", "Show whether the CAPF service is active, since when and by whom", nil},
	} {
		sub := &cobra.Command{
			Use:   c.use,
			Short: c.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runService(cmd.Context(), g, c.active, asJSON)
			},
		}
		sub.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
		cmd.AddCommand(canRunRemote(sub))
	}
	return canRunRemote(cmd)
}

func ptr[T any](v T) *T { return &v }

// runService sets the activation (active non-nil) or shows it.
func runService(ctx context.Context, g *globals, active *bool, asJSON bool) error {
	if g.remote.server != "" {
		return runRemoteService(ctx, g, active, asJSON)
	}
	mode := readOnly
	if active != nil {
		mode = readWrite
	}
	st, err := g.openStore(ctx, mode)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := system.NewService(system.Options{DataDir: g.dataDir, Store: st})
	var a system.Activation
	if active != nil {
		a, err = svc.SetActive(ctx, g.actor(), *active)
	} else {
		a, err = svc.Activation(ctx)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(g.stdout, a)
	}
	printActivation(g.stdout, a)
	return nil
}

func printActivation(w io.Writer, a system.Activation) {
	state := "active: phones are accepted"
	if !a.Active {
		state = "inactive: the phone port is closed"
	}
	fmt.Fprintf(w, "CAPF service: %s\n", state)
	if a.ChangedAt != "" {
		fmt.Fprintf(w, "  changed:  %s by %s\n", a.ChangedAt, a.ChangedBy)
	}
}

// runRemoteService is runService through a remote server's REST API.
func runRemoteService(ctx context.Context, g *globals, active *bool, asJSON bool) error {
	c, err := g.apiClient()
	if err != nil {
		return err
	}
	var a system.Activation
	if active != nil {
		a, err = c.SetService(ctx, *active)
	} else {
		a, err = c.Service(ctx)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(g.stdout, a)
	}
	printActivation(g.stdout, a)
	return nil
}
