package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lease"
)

// LeaseStore is what RunLeases tests: lease.Store and Close.
type LeaseStore interface {
	lease.Store
	Close() error
}

// ClusterStore is what RunCluster tests: the node registry, with the
// devices and their attempts to see a dead node's attempts failed.
type ClusterStore interface {
	cluster.Store
	device.Store
}

// freshT opens a store with open for t and closes it when t ends.
func freshT[S interface{ Close() error }](t *testing.T, open func(t *testing.T) S) S {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// wantLease fails t unless got is want as the store gives it back.
func wantLease(t *testing.T, what string, got lease.Lease, want lease.Lease) {
	t.Helper()
	want.Acquired, want.Expires = stored(want.Acquired), stored(want.Expires)
	if got != want {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// RunLeases runs the contract of lease.Store against the stores open
// returns; open must return a new, empty store each time. RunLeases closes
// it when the subtest ends.
func RunLeases(t *testing.T, open func(t *testing.T) LeaseStore) {
	t.Helper()
	const ttl = 30 * time.Second
	t.Run("acquire-renew-release", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		l, ok, err := s.AcquireLease(ctx, "sweeper", "node-a", at(0), ttl)
		must(t, err)
		if !ok {
			t.Fatal("a new lease was not acquired")
		}
		first := lease.Lease{Name: "sweeper", Holder: "node-a", Term: 1, Acquired: at(0), Expires: at(ttl)}
		wantLease(t, "acquired", l, first)
		if l.Expires.Location() != time.UTC {
			t.Errorf("Expires in %v, want UTC", l.Expires.Location())
		}

		// Held: another node is refused and told who holds it.
		l, ok, err = s.AcquireLease(ctx, "sweeper", "node-b", at(ttl-time.Microsecond), ttl)
		must(t, err)
		if ok {
			t.Fatal("node-b acquired a lease node-a holds")
		}
		wantLease(t, "refused acquisition", l, first)

		// The holder renews before expiry: same term, later expiry.
		l, err = s.RenewLease(ctx, "sweeper", "node-a", 1, at(20*time.Second), ttl)
		must(t, err)
		renewed := first
		renewed.Expires = at(20*time.Second + ttl)
		wantLease(t, "renewed", l, renewed)

		// Nobody else renews it, nor the holder under another term.
		for _, c := range []struct {
			holder string
			term   int64
		}{{"node-b", 1}, {"node-a", 2}, {"node-a", 0}} {
			if _, err := s.RenewLease(ctx, "sweeper", c.holder, c.term, at(21*time.Second), ttl); fault.KindOf(err) != fault.Conflict {
				t.Errorf("RenewLease by %s term %d: %v, want Conflict", c.holder, c.term, err)
			}
		}
		// A stale release changes nothing.
		must(t, s.ReleaseLease(ctx, "sweeper", "node-b", 1, at(22*time.Second)))
		must(t, s.ReleaseLease(ctx, "sweeper", "node-a", 7, at(22*time.Second)))
		ls, err := s.ListLeases(ctx)
		must(t, err)
		if len(ls) != 1 {
			t.Fatalf("ListLeases = %+v, want one", ls)
		}
		wantLease(t, "after stale releases", ls[0], renewed)

		// Released: free at once for anyone, a new term.
		must(t, s.ReleaseLease(ctx, "sweeper", "node-a", 1, at(23*time.Second)))
		ls, err = s.ListLeases(ctx)
		must(t, err)
		wantLease(t, "released", ls[0], lease.Lease{Name: "sweeper", Term: 1, Acquired: at(0), Expires: at(23 * time.Second)})
		if ls[0].HeldAt(at(22 * time.Second)) {
			t.Error("a released lease counts as held")
		}
		if _, err := s.RenewLease(ctx, "sweeper", "node-a", 1, at(23*time.Second), ttl); fault.KindOf(err) != fault.Conflict {
			t.Errorf("RenewLease after release: %v, want Conflict", err)
		}
		l, ok, err = s.AcquireLease(ctx, "sweeper", "node-b", at(24*time.Second), ttl)
		must(t, err)
		if !ok {
			t.Fatal("a released lease was not acquired")
		}
		wantLease(t, "acquired after release", l, lease.Lease{Name: "sweeper", Holder: "node-b", Term: 2, Acquired: at(24 * time.Second), Expires: at(24*time.Second + ttl)})
	})
	t.Run("expired-lease-moves", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		_, ok, err := s.AcquireLease(ctx, "trust-file", "node-a", at(0), ttl)
		must(t, err)
		if !ok {
			t.Fatal("not acquired")
		}
		// The holder renews too late: the lease expired, even though
		// nobody took it yet.
		if _, err := s.RenewLease(ctx, "trust-file", "node-a", 1, at(ttl), ttl); fault.KindOf(err) != fault.Conflict {
			t.Errorf("RenewLease at expiry: %v, want Conflict", err)
		}
		// At its expiry another node takes it, with a new term.
		l, ok, err := s.AcquireLease(ctx, "trust-file", "node-b", at(ttl), ttl)
		must(t, err)
		if !ok {
			t.Fatal("an expired lease did not move")
		}
		wantLease(t, "moved", l, lease.Lease{Name: "trust-file", Holder: "node-b", Term: 2, Acquired: at(ttl), Expires: at(2 * ttl)})
		// The stale holder cannot renew, even with a clock that says its
		// term has not run out.
		if _, err := s.RenewLease(ctx, "trust-file", "node-a", 1, at(time.Second), ttl); fault.KindOf(err) != fault.Conflict {
			t.Errorf("stale holder's RenewLease: %v, want Conflict", err)
		}
		ls, err := s.ListLeases(ctx)
		must(t, err)
		wantLease(t, "after the stale renewal", ls[0], l)
	})
	t.Run("holder-reacquires-new-term", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		_, _, err := s.AcquireLease(ctx, "sweeper", "node-a", at(0), ttl)
		must(t, err)
		// A restarted node acquires the lease it still holds: a new term,
		// so its predecessor's term can no longer renew.
		l, ok, err := s.AcquireLease(ctx, "sweeper", "node-a", at(time.Second), ttl)
		must(t, err)
		if !ok || l.Term != 2 {
			t.Fatalf("reacquired by its holder: %+v, %v; want term 2", l, ok)
		}
		if _, err := s.RenewLease(ctx, "sweeper", "node-a", 1, at(2*time.Second), ttl); fault.KindOf(err) != fault.Conflict {
			t.Errorf("RenewLease of the old term: %v, want Conflict", err)
		}
	})
	t.Run("list-by-name", func(t *testing.T) {
		s := freshT(t, open)
		for i, name := range []string{"sweeper", "a-job", "trust-file"} {
			_, _, err := s.AcquireLease(t.Context(), name, fmt.Sprint("node-", i), at(0), ttl)
			must(t, err)
		}
		ls, err := s.ListLeases(t.Context())
		must(t, err)
		var names []string
		for _, l := range ls {
			names = append(names, l.Name)
		}
		if want := []string{"a-job", "sweeper", "trust-file"}; !reflect.DeepEqual(names, want) {
			t.Errorf("ListLeases names = %v, want %v", names, want)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		for _, c := range []struct {
			name, holder string
			ttl          time.Duration
		}{{"", "node-a", ttl}, {"sweeper", "", ttl}, {"sweeper", "node-a", 0}, {"sweeper", "node-a", -time.Second}} {
			if _, _, err := s.AcquireLease(ctx, c.name, c.holder, at(0), c.ttl); fault.KindOf(err) != fault.Invalid {
				t.Errorf("AcquireLease(%q, %q, %s): %v, want Invalid", c.name, c.holder, c.ttl, err)
			}
			if _, err := s.RenewLease(ctx, c.name, c.holder, 1, at(0), c.ttl); fault.KindOf(err) != fault.Invalid {
				t.Errorf("RenewLease(%q, %q, %s): %v, want Invalid", c.name, c.holder, c.ttl, err)
			}
		}
		if ls, err := s.ListLeases(ctx); err != nil || len(ls) != 0 {
			t.Errorf("ListLeases after invalid calls = %+v, %v; want none", ls, err)
		}
	})
	t.Run("race", func(t *testing.T) {
		s := freshT(t, open)
		const holders, rounds = 6, 10
		for round := range rounds {
			// Each round the lease of the round before has expired.
			when := at(time.Duration(round) * 2 * ttl)
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				won []string
			)
			for h := range holders {
				wg.Go(func() {
					holder := fmt.Sprint("node-", h)
					l, ok, err := s.AcquireLease(t.Context(), "sweeper", holder, when, ttl)
					if err != nil {
						t.Errorf("round %d: %s: %v", round, holder, err)
						return
					}
					if ok {
						mu.Lock()
						won = append(won, holder)
						mu.Unlock()
					} else if l.Holder == holder || !l.HeldAt(when) {
						t.Errorf("round %d: %s refused by %+v", round, holder, l)
					}
				})
			}
			wg.Wait()
			if len(won) != 1 {
				t.Fatalf("round %d: %v acquired the lease, want exactly one", round, won)
			}
			ls, err := s.ListLeases(t.Context())
			must(t, err)
			if ls[0].Holder != won[0] || ls[0].Term != int64(round+1) {
				t.Fatalf("round %d: lease %+v, want held by %s in term %d", round, ls[0], won[0], round+1)
			}
		}
	})
}

// RunCluster runs the contract of cluster.Store, and the dead-node rule of
// device.Store's FailStaleAttempts (StaleQuery.DeadAt), against the stores
// open returns; open must return a new, empty store each time. RunCluster
// closes it when the subtest ends.
func RunCluster(t *testing.T, open func(t *testing.T) ClusterStore) {
	t.Helper()
	t.Run("register-heartbeat-list", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		b := cluster.Node{ID: "node-b", Addresses: []string{"phones 127.0.0.2:3804", "admin https://127.0.0.2:8443"},
			Version: "v1.2.3", Started: at(0), LastSeen: at(0), Expires: at(30 * time.Second), Sessions: 0}
		a := cluster.Node{ID: "node-a", Version: "(devel)", Started: at(time.Second), LastSeen: at(time.Second), Expires: at(31 * time.Second), Sessions: 3}
		must(t, s.RegisterNode(ctx, b))
		must(t, s.RegisterNode(ctx, a))
		must(t, s.HeartbeatNode(ctx, "node-b", at(10*time.Second), at(40*time.Second), 7))
		if err := s.HeartbeatNode(ctx, "node-z", at(10*time.Second), at(40*time.Second), 7); fault.KindOf(err) != fault.NotFound {
			t.Errorf("HeartbeatNode of an unknown node: %v, want NotFound", err)
		}
		if err := s.RegisterNode(ctx, cluster.Node{Started: at(0)}); fault.KindOf(err) != fault.Invalid {
			t.Errorf("RegisterNode without id: %v, want Invalid", err)
		}
		b.LastSeen, b.Expires, b.Sessions = at(10*time.Second), at(40*time.Second), 7
		checkNodes(t, s, a, b)

		// A restart registers anew: every field replaced.
		a2 := cluster.Node{ID: "node-a", Addresses: []string{"phones 127.0.0.1:3804"}, Version: "v1.2.4",
			Started: at(time.Minute), LastSeen: at(time.Minute), Expires: at(time.Minute + 30*time.Second)}
		must(t, s.RegisterNode(ctx, a2))
		checkNodes(t, s, a2, b)
	})
	t.Run("dead-node-attempts", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		dead := cluster.Node{ID: "node-dead", Started: at(0), LastSeen: at(0), Expires: at(30 * time.Second)}
		alive := cluster.Node{ID: "node-alive", Started: at(0), LastSeen: at(50 * time.Second), Expires: at(80 * time.Second)}
		must(t, s.RegisterNode(ctx, dead))
		must(t, s.RegisterNode(ctx, alive))
		names := []string{"SEP00000000D001", "SEP00000000D002", "SEP00000000D003"}
		for _, n := range names {
			create(t, s, newDevice(n))
		}
		deadID := start(t, s, device.Attempt{Device: names[0], Operation: device.OpInstall, StartedAt: at(10 * time.Second), Node: dead.ID})
		start(t, s, device.Attempt{Device: names[1], Operation: device.OpInstall, StartedAt: at(10 * time.Second), Node: alive.ID})
		// A node that never registered (an older version) is left to the
		// rule of attempts older than any session.
		start(t, s, device.Attempt{Device: names[2], Operation: device.OpInstall, StartedAt: at(10 * time.Second), Node: "node-unregistered"})

		// Before its registration expires the node is not dead.
		n, err := s.FailStaleAttempts(ctx, device.StaleQuery{DeadAt: at(30*time.Second - time.Microsecond)}, device.ReasonServerRestart)
		must(t, err)
		if n != 0 {
			t.Fatalf("closed %d attempts before the node's registration expired, want 0", n)
		}
		n, err = s.FailStaleAttempts(ctx, device.StaleQuery{DeadAt: at(60 * time.Second)}, device.ReasonServerRestart)
		must(t, err)
		if n != 1 {
			t.Fatalf("closed %d attempts, want the dead node's one", n)
		}
		failed := device.FailedStatus(device.OpInstall, device.ReasonServerRestart)
		if a := attempts(t, s, names[0], 0)[0]; a.ID != deadID || a.FinishedAt.IsZero() || a.Result != failed {
			t.Errorf("dead node's attempt = %+v, want closed with %q", a, failed)
		}
		if got := get(t, s, names[0]).Status; got != failed {
			t.Errorf("dead node's device status = %q, want %q", got, failed)
		}
		for _, n := range names[1:] {
			if a := attempts(t, s, n, 0)[0]; !a.FinishedAt.IsZero() {
				t.Errorf("attempt of %s (node %s) closed: %+v", n, a.Node, a)
			}
		}
		// The dead node restarts and registers: its new attempt is live.
		dead.Started, dead.LastSeen, dead.Expires = at(70*time.Second), at(70*time.Second), at(100*time.Second)
		must(t, s.RegisterNode(ctx, dead))
		start(t, s, device.Attempt{Device: names[0], Operation: device.OpInstall, StartedAt: at(71 * time.Second), Node: dead.ID})
		n, err = s.FailStaleAttempts(ctx, device.StaleQuery{DeadAt: at(75 * time.Second)}, device.ReasonServerRestart)
		must(t, err)
		if n != 0 {
			t.Errorf("closed %d attempts of a node that registered anew, want 0", n)
		}
	})
	t.Run("forget-node", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		dead := cluster.Node{ID: "node-dead", Started: at(0), LastSeen: at(0), Expires: at(30 * time.Second)}
		alive := cluster.Node{ID: "node-alive", Started: at(0), LastSeen: at(50 * time.Second), Expires: at(80 * time.Second)}
		must(t, s.RegisterNode(ctx, dead))
		must(t, s.RegisterNode(ctx, alive))
		ev := func(id string) device.AuditEvent {
			return device.AuditEvent{At: at(60 * time.Second), Actor: device.CLIActor("alice"), Action: cluster.ActionForget, Target: "node " + id}
		}
		// Refused: unknown, and alive (naming its expiry); nothing changes.
		if err := s.ForgetNode(ctx, "node-z", at(60*time.Second), ev("node-z")); fault.KindOf(err) != fault.NotFound {
			t.Errorf("ForgetNode of an unknown node: %v, want NotFound", err)
		}
		err := s.ForgetNode(ctx, alive.ID, at(60*time.Second), ev(alive.ID))
		if fault.KindOf(err) != fault.Conflict || !strings.Contains(err.Error(), stored(alive.Expires).Format(time.RFC3339)) {
			t.Errorf("ForgetNode of a live node: %v, want Conflict naming %s", err, stored(alive.Expires).Format(time.RFC3339))
		}
		if err := s.ForgetNode(ctx, dead.ID, at(30*time.Second-time.Microsecond), ev(dead.ID)); fault.KindOf(err) != fault.Conflict {
			t.Errorf("ForgetNode a microsecond before expiry: %v, want Conflict", err)
		}
		checkNodes(t, s, alive, dead)
		if evs, err := s.ListAudit(ctx, device.AuditQuery{}); err != nil || len(evs) != 0 {
			t.Errorf("audit after refusals = %+v, %v; want none", evs, err)
		}
		// Forgotten once expired, with its audit event; a second time is NotFound.
		must(t, s.ForgetNode(ctx, dead.ID, at(30*time.Second), ev(dead.ID)))
		checkNodes(t, s, alive)
		evs, err := s.ListAudit(ctx, device.AuditQuery{Target: "node " + dead.ID})
		must(t, err)
		if len(evs) != 1 || evs[0].Action != cluster.ActionForget || evs[0].Actor.Name != "alice" {
			t.Errorf("audit = %+v, want alice's node.forget", evs)
		}
		if err := s.ForgetNode(ctx, dead.ID, at(60*time.Second), ev(dead.ID)); fault.KindOf(err) != fault.NotFound {
			t.Errorf("second ForgetNode: %v, want NotFound", err)
		}
		// A forgotten node that was only cut off comes back at its next heartbeat.
		if err := s.HeartbeatNode(ctx, dead.ID, at(70*time.Second), at(100*time.Second), 0); fault.KindOf(err) != fault.NotFound {
			t.Errorf("heartbeat of a forgotten node: %v, want NotFound (the member then registers again)", err)
		}
	})
	t.Run("forget-fails-attempts", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		dead := cluster.Node{ID: "node-dead", Started: at(0), LastSeen: at(0), Expires: at(30 * time.Second)}
		other := cluster.Node{ID: "node-other", Started: at(0), LastSeen: at(0), Expires: at(30 * time.Second)}
		must(t, s.RegisterNode(ctx, dead))
		must(t, s.RegisterNode(ctx, other))
		names := []string{"SEP00000000F001", "SEP00000000F002"}
		for _, n := range names {
			create(t, s, newDevice(n))
		}
		start(t, s, device.Attempt{Device: names[0], Operation: device.OpInstall, StartedAt: at(10 * time.Second), Node: dead.ID})
		start(t, s, device.Attempt{Device: names[1], Operation: device.OpInstall, StartedAt: at(10 * time.Second), Node: other.ID})
		svc := device.NewService(device.ServiceOptions{Store: s, Now: func() time.Time { return at(60 * time.Second) }})
		n, err := cluster.Forget(ctx, s, svc, dead.ID, device.CLIActor("alice"), at(60*time.Second))
		must(t, err)
		if n != 1 {
			t.Errorf("Forget failed %d attempts, want the node's one", n)
		}
		failed := device.FailedStatus(device.OpInstall, device.ReasonServerRestart)
		if a := attempts(t, s, names[0], 0)[0]; a.FinishedAt.IsZero() || a.Result != failed {
			t.Errorf("forgotten node's attempt = %+v, want closed with %q", a, failed)
		}
		// Only that node's: the other dead node's attempt is the sweeper's.
		if a := attempts(t, s, names[1], 0)[0]; !a.FinishedAt.IsZero() {
			t.Errorf("attempt of %s closed: %+v", other.ID, a)
		}
		checkNodes(t, s, other)
	})
}

// checkNodes fails t unless ListNodes returns want, as stored.
func checkNodes(t *testing.T, s cluster.Store, want ...cluster.Node) {
	t.Helper()
	got, err := s.ListNodes(t.Context())
	must(t, err)
	for i := range want {
		want[i].Started, want[i].LastSeen, want[i].Expires = stored(want[i].Started), stored(want[i].LastSeen), stored(want[i].Expires)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListNodes =\n%+v\nwant\n%+v", got, want)
	}
}
