package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/device"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterForgetCmd) }

func newClusterForgetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "forget NODE-ID",
		Short: "Remove a dead node from the registry (refused while its registration has not expired); audited",
		Long: `Remove a node that will not come back (decommissioned, re-installed with a
new id) from the node registry, so that cluster status no longer lists it.
Only a dead node can be forgotten: one whose registration has expired (no
heartbeat for a whole lease term, 30 s); a live node is refused with the
time its registration expires (exit 4), an unknown id with exit 3. The
node's attempts still open are failed first, as the sweeper fails a dead
node's. The removal is audited (node.forget). A node that was only cut off
from the database registers again at its next heartbeat.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterForget(cmd.Context(), g, args[0], time.Now())
		},
	}
}

func runClusterForget(ctx context.Context, g *globals, id string, now time.Time) error {
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return now }})
	failed, err := cluster.Forget(ctx, st, svc, id, g.actor(), now)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "forgot node %s (%d open attempts failed)\n", id, failed)
	return nil
}
