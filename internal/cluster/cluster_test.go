package cluster

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lease"
)

// memRegistry is Store and lease.Store's listing in memory.
type memRegistry struct {
	mu     sync.Mutex
	nodes  map[string]Node
	leases []lease.Lease
}

func (m *memRegistry) RegisterNode(_ context.Context, n Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[n.ID] = n
	return nil
}

func (m *memRegistry) HeartbeatNode(_ context.Context, id string, at, expires time.Time, sessions int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[id]
	if !ok {
		return fault.NotFoundf("node %s", id)
	}
	n.LastSeen, n.Expires, n.Sessions = at, expires, sessions
	m.nodes[id] = n
	return nil
}

func (m *memRegistry) ListNodes(context.Context) ([]Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Node
	for _, id := range []string{"node-a", "node-b"} {
		if n, ok := m.nodes[id]; ok {
			out = append(out, n)
		}
	}
	return out, nil
}

func (m *memRegistry) ForgetNode(context.Context, string, time.Time, device.AuditEvent) error {
	panic("not used: the contract is in store/storetest")
}

func (m *memRegistry) AcquireLease(context.Context, string, string, time.Time, time.Duration) (lease.Lease, bool, error) {
	panic("not used")
}
func (m *memRegistry) RenewLease(context.Context, string, string, int64, time.Time, time.Duration) (lease.Lease, error) {
	panic("not used")
}
func (m *memRegistry) ReleaseLease(context.Context, string, string, int64, time.Time) error {
	panic("not used")
}
func (m *memRegistry) ListLeases(context.Context) ([]lease.Lease, error) { return m.leases, nil }

// TestMemberHeartbeats: a registered node stays alive while it
// heartbeats, with its sessions count, and is dead a term after it stops.
func TestMemberHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := &memRegistry{nodes: map[string]Node{}}
		sessions := 0
		m := &Member{Store: reg, Node: Node{ID: "node-a", Version: "v1"}, Term: 3 * time.Second, Sessions: func() int { sessions++; return sessions }}
		if err := m.Register(t.Context()); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); m.Run(ctx) }()
		time.Sleep(9 * time.Second)
		synctest.Wait()
		// The registration is gone (a restore, an operator): the next
		// heartbeat registers the node again.
		reg.mu.Lock()
		delete(reg.nodes, "node-a")
		reg.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		ns, _ := reg.ListNodes(t.Context())
		if len(ns) != 1 || !ns[0].AliveAt(time.Now()) || !ns[0].Started.Equal(started) || ns[0].Sessions < 10 {
			t.Fatalf("node after 10 s of heartbeats: %+v", ns)
		}
		cancel()
		<-done
		time.Sleep(3 * time.Second)
		ns, _ = reg.ListNodes(t.Context())
		if ns[0].AliveAt(time.Now()) {
			t.Errorf("node alive a term after its heartbeat stopped: %+v", ns[0])
		}
	})
}

// TestReadStatus: each node lists the leases it holds now; an expired or
// released lease counts for nobody.
func TestReadStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	reg := &memRegistry{nodes: map[string]Node{
		"node-a": {ID: "node-a", Expires: now.Add(time.Second)},
		"node-b": {ID: "node-b", Expires: now},
	}, leases: []lease.Lease{
		{Name: "trust-file", Holder: "node-a", Expires: now.Add(time.Second)},
		{Name: "sweeper", Holder: "node-a", Expires: now.Add(time.Second)},
		{Name: "crl", Holder: "node-b", Expires: now},
		{Name: "renewal", Holder: "", Expires: now.Add(time.Second)},
	}}
	st, err := ReadStatus(t.Context(), reg, reg, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	alive := map[string]bool{}
	for _, n := range st.Nodes {
		got[n.ID], alive[n.ID] = n.Leases, n.Alive
	}
	if want := map[string][]string{"node-a": {"sweeper", "trust-file"}, "node-b": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("leases by node = %v, want %v", got, want)
	}
	if !alive["node-a"] || alive["node-b"] {
		t.Errorf("alive = %v, want node-a only (node-b expired at now)", alive)
	}
	if len(st.Leases) != 4 {
		t.Errorf("leases = %v, want all 4 listed", st.Leases)
	}
}
