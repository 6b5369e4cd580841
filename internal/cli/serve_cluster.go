package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lease"
	"github.com/capf-server/capf/internal/store"
)

// envLeaseTerm overrides the lease term of `capf serve` (a Go duration,
// e.g. "3s"), as the hidden --lease-term flag does: for tests that kill a
// node and wait for another to take its jobs over.
const envLeaseTerm = "CAPF_LEASE_TERM"

// The lease term's bounds: a term shorter than a second leaves no margin
// for a database round trip and the nodes' clock difference; a longer one
// than ten minutes leaves a dead node's jobs undone too long.
const (
	minLeaseTerm = time.Second
	maxLeaseTerm = 10 * time.Minute
)

// The leases of the once-per-fleet jobs.
const (
	leaseSweeper   = "sweeper"
	leaseTrustFile = "trust-file"
)

// leaseTerm returns the lease and registration term: the flag when set,
// else $CAPF_LEASE_TERM, else lease.DefaultTerm.
func leaseTerm(flag time.Duration, getenv func(string) string) (time.Duration, error) {
	d, from := flag, "--lease-term"
	if d == 0 {
		v := getenv(envLeaseTerm)
		if v == "" {
			return lease.DefaultTerm, nil
		}
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%s=%q: not a duration (e.g. 30s)", envLeaseTerm, v)
		}
		from = envLeaseTerm
	}
	if d < minLeaseTerm || d > maxLeaseTerm {
		return 0, fmt.Errorf("%s %s: want between %s and %s", from, d, minLeaseTerm, maxLeaseTerm)
	}
	return d, nil
}

// buildVersion is the build's version as the node registry records it:
// the module version and, when the build recorded it, the revision.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "unknown"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// clusterNode is this node's part in the fleet: its registration with a
// heartbeat, and the once-per-fleet jobs it runs while it holds their
// leases.
type clusterNode struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// joinCluster registers the node (before it accepts phones: a node whose
// registration expired while it was down must be alive again before it
// starts attempts, or a sweeping node could fail them), heartbeats every
// third of term, and runs jobs under their leases until stop.
func joinCluster(ctx context.Context, st store.Store, n cluster.Node, term time.Duration, sessions func() int, jobs []lease.Job, log *slog.Logger) (*clusterNode, error) {
	m := &cluster.Member{Store: st, Node: n, Term: term, Sessions: sessions, Logger: log}
	if err := m.Register(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &clusterNode{cancel: cancel}
	c.wg.Go(func() { m.Run(ctx) })
	r := lease.NewRunner(lease.Options{Store: st, Holder: n.ID, Term: term, Logger: log})
	for _, j := range jobs {
		c.wg.Go(func() { r.Run(ctx, j) })
	}
	return c, nil
}

// stop ends the jobs, releases their leases and stops the heartbeat.
func (c *clusterNode) stop() {
	c.cancel()
	c.wg.Wait()
}

// addressGuessWindow is how long a string guess counts against its source
// address (auth_failures_per_address is per this window).
const addressGuessWindow = 10 * time.Minute

// sweepJob fails, under the sweeper lease, the attempts open longer than
// any session can last and the attempts of nodes whose registration
// expired (they died, or lost the database for a whole term), so that no
// device stays in progress after a node's death; and it forgets the
// address guesses that left their window. longest is asked at every run:
// the fleet parameters it derives from change while the node runs (see
// liveParams.LongestSession).
func sweepJob(svc *device.Service, longest func() time.Duration, term time.Duration, guesses device.AddressGuesses, now func() time.Time, log *slog.Logger) lease.Job {
	return lease.Job{Name: leaseSweeper, Every: min(time.Minute, term), Run: func(ctx context.Context) error {
		n, err := svc.SweepStale(ctx, longest())
		if err != nil {
			return err
		}
		if n > 0 {
			log.Warn("failed sessions open longer than any session can last", "count", n)
		}
		if n, err = svc.SweepDeadNodes(ctx); err != nil {
			return err
		}
		if n > 0 {
			log.Warn("failed the sessions of nodes whose registration expired", "count", n)
		}
		if _, err := guesses.PruneAddressGuesses(ctx, now().Add(-addressGuessWindow)); err != nil {
			return err
		}
		return nil
	}}
}

// nodeHostname is the host name recorded beside the node's addresses.
func nodeHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
