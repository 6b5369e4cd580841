// Package cluster is the node registry of a CAPF fleet: every `capf serve`
// node registers itself in the shared database when it starts (its id,
// addresses, version, start time) and heartbeats while it runs (last seen,
// the sessions it runs now). A node whose registration expires without a
// heartbeat is dead: the node holding the sweeper lease then fails the
// attempts it left open (device.StaleQuery.DeadAt). `capf cluster status`
// reads the registry and the leases; `capf cluster forget` removes a dead
// node from it ([Forget]).
//
// On SQLite there is one node, and the registry holds it; the code is the
// same.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lease"
)

// Node is one `capf serve` process as the registry knows it.
type Node struct {
	// ID is the node id kept in its data directory.
	ID string
	// Addresses are the node's listeners as "role address" ("phones
	// 10.0.0.5:3804", "admin https://10.0.0.5:8443").
	Addresses []string
	// Version is the build's version (`capf version`).
	Version string
	// Started is when the node (re)started.
	Started time.Time
	// LastSeen is its latest heartbeat.
	LastSeen time.Time
	// Expires is when the node counts as dead unless it heartbeats first.
	Expires time.Time
	// Sessions is how many certificate operations it ran at its latest
	// heartbeat.
	Sessions int
}

// AliveAt reports whether the node's registration is current at t.
func (n Node) AliveAt(t time.Time) bool { return t.Before(n.Expires) }

// Store keeps the node registry. Every backend implements it and passes
// the contract suite in store/storetest (RunCluster).
//
// Guarantees: every method is safe for concurrent use by any number of
// nodes, honours ctx, takes no closure (nothing of the caller's runs
// twice), and is atomic. Times are the caller's, returned in UTC at
// microsecond precision; Addresses come back in the order given.
type Store interface {
	// RegisterNode inserts n, or replaces every field of the node of that
	// id (a node that restarts registers anew).
	RegisterNode(ctx context.Context, n Node) error
	// HeartbeatNode sets LastSeen, Expires and Sessions of node id.
	// NotFound if the node is not registered.
	HeartbeatNode(ctx context.Context, id string, at, expires time.Time, sessions int) error
	// ListNodes returns every registered node, by id.
	ListNodes(ctx context.Context) ([]Node, error)
	// ForgetNode removes the registration of node id if it has expired
	// at at (Expires <= at), and appends ev to the audit log in the same
	// transaction. NotFound if no node has that id; Conflict, naming
	// when it expires, if the node is alive at at (nothing changes).
	// The node's attempts are left as they are: fail them first
	// (device.Service.FailDeadNodeAttempts), since once the registration
	// is gone the sweeper no longer counts them as a dead node's. A node
	// that was only cut off registers again at its next heartbeat.
	ForgetNode(ctx context.Context, id string, at time.Time, ev device.AuditEvent) error
}

// Member keeps one node's registration current.
type Member struct {
	// Store is the registry.
	Store Store
	// Node is what the node registers; Started, LastSeen and Expires are
	// set by Register.
	Node Node
	// Term is how long a registration or heartbeat keeps the node alive;
	// the node heartbeats every third of it.
	Term time.Duration
	// Sessions returns the operations the node runs now; nil: 0.
	Sessions func() int
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
}

func (m *Member) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Member) sessions() int {
	if m.Sessions == nil {
		return 0
	}
	return m.Sessions()
}

// Register records the node as started now.
func (m *Member) Register(ctx context.Context) error {
	now := m.now()
	n := m.Node
	n.Started, n.LastSeen, n.Expires, n.Sessions = now, now, now.Add(m.Term), m.sessions()
	if err := m.Store.RegisterNode(ctx, n); err != nil {
		return fmt.Errorf("register node %s: %w", n.ID, err)
	}
	m.Node = n
	return nil
}

// Heartbeat records the node as seen now; a node whose registration is
// gone registers again (keeping its start time).
func (m *Member) Heartbeat(ctx context.Context) error {
	now := m.now()
	err := m.Store.HeartbeatNode(ctx, m.Node.ID, now, now.Add(m.Term), m.sessions())
	if fault.KindOf(err) == fault.NotFound {
		n := m.Node
		n.LastSeen, n.Expires, n.Sessions = now, now.Add(m.Term), m.sessions()
		err = m.Store.RegisterNode(ctx, n)
	}
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", m.Node.ID, err)
	}
	return nil
}

// Run heartbeats every third of the term until ctx ends. A heartbeat that
// fails is logged and tried again at the next; a node that cannot reach
// the database for a whole term is counted dead by the others.
func (m *Member) Run(ctx context.Context) {
	log := m.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(m.Term / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				log.Warn("node heartbeat", "err", err)
			}
		}
	}
}

// NodeStatus is a node with the leases it holds.
type NodeStatus struct {
	Node
	Alive  bool
	Leases []string // names of the leases it holds, sorted
}

// Status is the cluster as `capf cluster status` shows it.
type Status struct {
	At     time.Time
	Nodes  []NodeStatus
	Leases []lease.Lease
}

// ReadStatus composes the status at now from the registry and the leases.
func ReadStatus(ctx context.Context, nodes Store, leases lease.Store, now time.Time) (Status, error) {
	ns, err := nodes.ListNodes(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("list nodes: %w", err)
	}
	ls, err := leases.ListLeases(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("list leases: %w", err)
	}
	held := map[string][]string{}
	for _, l := range ls {
		if l.HeldAt(now) {
			held[l.Holder] = append(held[l.Holder], l.Name)
		}
	}
	st := Status{At: now, Leases: ls}
	for _, n := range ns {
		names := held[n.ID]
		sort.Strings(names)
		st.Nodes = append(st.Nodes, NodeStatus{Node: n, Alive: n.AliveAt(now), Leases: names})
	}
	return st, nil
}

const (
	// ActionForget is the audit action of [Forget].
	ActionForget = "node.forget"
	// MaxNodeID bounds the id [Forget] accepts.
	MaxNodeID = 256
)

// AttemptFailer fails the open attempts of a dead node, as the sweeper
// does (device.Service.FailDeadNodeAttempts).
type AttemptFailer interface {
	FailDeadNodeAttempts(ctx context.Context, node string) (int, error)
}

// Forget removes the dead node id from the registry for actor, as of now:
// first its attempts still open are failed as the sweeper fails a dead
// node's, then its registration is removed with an audit event in the
// same transaction. It returns how many attempts it failed. A node that
// is unknown (NotFound) or whose registration has not expired (Conflict,
// naming when it expires) is refused, and nothing changes.
func Forget(ctx context.Context, nodes Store, attempts AttemptFailer, id string, actor device.Actor, now time.Time) (int, error) {
	if id == "" || len(id) > MaxNodeID {
		return 0, fault.Invalidf("forget node: a node id has 1 to %d characters (capf cluster status lists them)", MaxNodeID)
	}
	failed, err := attempts.FailDeadNodeAttempts(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("forget node %s: %w", id, err)
	}
	ev := device.AuditEvent{At: now, Actor: actor, Action: ActionForget, Target: "node " + id,
		Detail: fmt.Sprintf("registration expired; %d open attempts failed", failed)}
	if err := nodes.ForgetNode(ctx, id, now, ev); err != nil {
		return failed, err
	}
	return failed, nil
}
