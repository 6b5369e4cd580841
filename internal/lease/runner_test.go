package lease_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lease"
)

// memStore is lease.Store in memory, for the runner's tests (the backends
// pass the same contract in store/storetest). down makes every call of a
// holder fail, as when its node lost the database.
type memStore struct {
	mu     sync.Mutex
	leases map[string]lease.Lease
	down   map[string]bool
}

func newMemStore() *memStore {
	return &memStore{leases: map[string]lease.Lease{}, down: map[string]bool{}}
}

var errDown = fault.New(fault.Unavailable, "database unreachable")

func (m *memStore) setDown(holder string, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[holder] = down
}

func (m *memStore) AcquireLease(_ context.Context, name, holder string, at time.Time, ttl time.Duration) (lease.Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down[holder] {
		return lease.Lease{}, false, errDown
	}
	l := m.leases[name]
	if l.HeldAt(at) && l.Holder != holder {
		return l, false, nil
	}
	l = lease.Lease{Name: name, Holder: holder, Term: l.Term + 1, Acquired: at, Expires: at.Add(ttl)}
	m.leases[name] = l
	return l, true, nil
}

func (m *memStore) RenewLease(_ context.Context, name, holder string, term int64, at time.Time, ttl time.Duration) (lease.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down[holder] {
		return lease.Lease{}, errDown
	}
	l := m.leases[name]
	if l.Holder != holder || l.Term != term || !at.Before(l.Expires) {
		return lease.Lease{}, fault.Conflictf("lease %s lost", name)
	}
	l.Expires = at.Add(ttl)
	m.leases[name] = l
	return l, nil
}

func (m *memStore) ReleaseLease(_ context.Context, name, holder string, term int64, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down[holder] {
		return errDown
	}
	if l := m.leases[name]; l.Holder == holder && l.Term == term {
		l.Holder, l.Expires = "", at
		m.leases[name] = l
	}
	return nil
}

func (m *memStore) ListLeases(context.Context) ([]lease.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []lease.Lease
	for _, l := range m.leases {
		out = append(out, l)
	}
	return out, nil
}

// steal gives lease name to holder in a new term, as another node does
// once it sees the lease expired (its clock ahead of the holder's).
func (m *memStore) steal(name, holder string, at time.Time, ttl time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.leases[name]
	m.leases[name] = lease.Lease{Name: name, Holder: holder, Term: l.Term + 1, Acquired: at, Expires: at.Add(ttl)}
}

func (m *memStore) holder(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leases[name].Holder
}

// tracker records which node runs the job and fails the test when two
// run it at once.
type tracker struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]bool
	started map[string][]time.Time
	stopped map[string][]time.Time
}

func newTracker(t *testing.T) *tracker {
	return &tracker{t: t, running: map[string]bool{}, started: map[string][]time.Time{}, stopped: map[string][]time.Time{}}
}

// job returns a job for node that runs until its ctx ends: a job that
// lives as long as the lease is held.
func (tr *tracker) job(node string) lease.Job {
	return lease.Job{Name: "sweeper", Every: time.Second, Run: func(ctx context.Context) error {
		tr.mu.Lock()
		for other, on := range tr.running {
			if on {
				tr.t.Errorf("%s starts the job at %v while %s runs it", node, time.Now(), other)
			}
		}
		tr.running[node] = true
		tr.started[node] = append(tr.started[node], time.Now())
		tr.mu.Unlock()
		<-ctx.Done()
		tr.mu.Lock()
		tr.running[node] = false
		tr.stopped[node] = append(tr.stopped[node], time.Now())
		tr.mu.Unlock()
		return ctx.Err()
	}}
}

func (tr *tracker) runs(node string) (started, stopped []time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]time.Time(nil), tr.started[node]...), append([]time.Time(nil), tr.stopped[node]...)
}

const term = 30 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startRunner runs job under its lease for holder until the returned
// function is called, which waits for the runner to return.
func startRunner(st lease.Store, holder string, job lease.Job) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	r := lease.NewRunner(lease.Options{Store: st, Holder: holder, Term: term, Now: time.Now, Logger: quiet()})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, job)
	}()
	return func() {
		cancel()
		<-done
	}
}

// TestJobRunsOnOneNodeAndMovesOnStop: of two nodes one runs the job and
// keeps it for many terms by renewing; when it stops (a SIGTERM), it
// releases the lease and the other node runs the job within a third of a
// term.
func TestJobRunsOnOneNodeAndMovesOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, tr := newMemStore(), newTracker(t)
		stopA := startRunner(st, "node-a", tr.job("node-a"))
		synctest.Wait()
		stopB := startRunner(st, "node-b", tr.job("node-b"))
		defer stopB()
		time.Sleep(10 * term) // fake time: the bubble's clock
		if started, _ := tr.runs("node-a"); len(started) != 1 {
			t.Fatalf("node-a started the job %d times in 10 terms, want once (renewed)", len(started))
		}
		if started, _ := tr.runs("node-b"); len(started) != 0 {
			t.Fatalf("node-b ran the job while node-a held the lease")
		}
		stoppedAt := time.Now()
		stopA()
		if _, stopped := tr.runs("node-a"); len(stopped) != 1 {
			t.Fatal("node-a's job did not stop when node-a stopped")
		}
		time.Sleep(term / 3)
		synctest.Wait()
		started, _ := tr.runs("node-b")
		if len(started) != 1 || started[0].Sub(stoppedAt) > term/3 {
			t.Fatalf("node-b started the job at %v after node-a stopped, want within %v", started, term/3)
		}
		if h := st.holder("sweeper"); h != "node-b" {
			t.Errorf("lease held by %q, want node-b", h)
		}
	})
}

// TestJobStopsWhenLeaseLost: another node took the lease (its clock saw
// it expire): the holder's next renewal is refused, and its job's context
// ends at once.
func TestJobStopsWhenLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, tr := newMemStore(), newTracker(t)
		stop := startRunner(st, "node-a", tr.job("node-a"))
		defer stop()
		time.Sleep(term)
		stolenAt := time.Now()
		st.steal("sweeper", "node-b", stolenAt, term)
		time.Sleep(term / 3)
		synctest.Wait()
		_, stopped := tr.runs("node-a")
		if len(stopped) != 1 || stopped[0].Sub(stolenAt) > term/3 {
			t.Fatalf("node-a's job stopped at %v, want within a third of a term of %v", stopped, stolenAt)
		}
		// node-a tries again, and runs the job once node-b's lease has
		// expired unrenewed.
		time.Sleep(term + term/3)
		synctest.Wait()
		if started, _ := tr.runs("node-a"); len(started) != 2 {
			t.Fatalf("node-a started the job %d times, want again after node-b's lease expired", len(started))
		}
	})
}

// TestJobMovesWhenNodeDies: node-a loses the database (or dies: it stops
// renewing). It stops its job before the lease can expire, and node-b runs
// the job within a term and a third; the two never run it at once.
func TestJobMovesWhenNodeDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, tr := newMemStore(), newTracker(t)
		stopA := startRunner(st, "node-a", tr.job("node-a"))
		defer stopA()
		synctest.Wait()
		stopB := startRunner(st, "node-b", tr.job("node-b"))
		defer stopB()
		time.Sleep(2 * term)
		diedAt := time.Now()
		st.setDown("node-a", true)
		time.Sleep(term + term/3)
		synctest.Wait()
		_, stopped := tr.runs("node-a")
		if len(stopped) != 1 {
			t.Fatal("node-a's job still runs without its lease renewed")
		}
		started, _ := tr.runs("node-b")
		if len(started) != 1 {
			t.Fatalf("node-b did not take the job over within %v of node-a's death", term+term/3)
		}
		if !stopped[0].Before(started[0]) {
			t.Errorf("node-b started at %v, before node-a stopped at %v", started[0], stopped[0])
		}
		if d := started[0].Sub(diedAt); d > term+term/3 {
			t.Errorf("the job moved %v after node-a died, want within %v", d, term+term/3)
		}
	})
}

// TestJobRunsPeriodically: a job that returns runs again every Every
// while held, and a failing or panicking run does not stop it.
func TestJobRunsPeriodically(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		var runs atomic.Int32
		job := lease.Job{Name: "trust-file", Every: time.Minute, Run: func(context.Context) error {
			switch runs.Add(1) {
			case 2:
				return errors.New("disk full")
			case 3:
				panic("bug")
			}
			return nil
		}}
		stop := startRunner(st, "node-a", job)
		time.Sleep(5*time.Minute + time.Second)
		stop()
		if n := runs.Load(); n != 6 {
			t.Errorf("the job ran %d times in 5 minutes at 1 a minute, want 6 (at once, then every minute)", n)
		}
		if h := st.holder("trust-file"); h != "" {
			t.Errorf("lease held by %q after the runner stopped, want released", h)
		}
	})
}
