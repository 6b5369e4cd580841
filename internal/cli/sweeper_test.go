package cli

import (
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lease"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
)

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// sweeperEnv is what the sweeper's tests share: a SQLite store, its
// system and device services on a test clock, and one device whose
// session node B holds since t0.
type sweeperEnv struct {
	t     *testing.T
	t0    time.Time
	st    *sqlite.Store
	clock *testClock
	log   *slog.Logger
	sys   *system.Service
	d     device.Device
}

// sweeperAdmin is who changes the parameters in the sweeper's tests.
var sweeperAdmin = device.CLIActor("alice")

// newSweeperEnv opens the store and claims the device for node B at t0,
// recording deadline with the claim (zero: none, as before deadlines).
func newSweeperEnv(t *testing.T, t0, deadline time.Time) *sweeperEnv {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &sweeperEnv{t: t, t0: t0, st: st, clock: &testClock{now: t0}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.sys = system.NewService(system.Options{DataDir: dir, Store: st, Now: e.clock.Now})
	svc := device.NewService(device.ServiceOptions{Store: st, Now: e.clock.Now})
	if e.d, err = svc.Add(ctx, sweeperAdmin, device.Device{Name: "SEP001122334455", AuthMode: device.AuthNull, Operation: device.OpInstall}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartAttempt(ctx, device.Attempt{Device: e.d.Name, Operation: e.d.Operation, Remote: "192.0.2.10:5000",
		StartedAt: t0, Node: "node-b", Rev: e.d.Rev, Deadline: deadline}); err != nil {
		t.Fatal(err)
	}
	return e
}

// job returns the sweeper job of a node whose parameters are p.
func (e *sweeperEnv) job(p *liveParams) lease.Job {
	svc := device.NewService(device.ServiceOptions{Store: e.st, Now: e.clock.Now})
	return sweepJob(svc, p.LongestSession, 30*time.Second, e.st, e.clock.Now, e.log)
}

// sweepAt runs job at the time at and fails the test unless the session
// is still open exactly when wantOpen; bound says what bounded it.
func (e *sweeperEnv) sweepAt(job lease.Job, at time.Time, wantOpen bool, bound string) {
	e.t.Helper()
	ctx := e.t.Context()
	e.clock.set(at)
	if err := job.Run(ctx); err != nil {
		e.t.Fatal(err)
	}
	got, err := e.st.GetDevice(ctx, e.d.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	if open := got.Status == device.StatusInProgress; open != wantOpen {
		e.t.Fatalf("at t0+%s (%s): status %q; want the session open: %v", at.Sub(e.t0), bound, got.Status, wantOpen)
	}
}

// TestSweeperFollowsLiveParameters: the stale-attempt sweeper bounds a
// session by the key-generation time in force when it runs, not the one of
// the node's start: a session still running after an administrator raised
// key_generation_max_time is left alone; after the time is lowered again,
// a session that started under the longer one is left alone until it
// could have ended; past every bound, it is failed. (The attempt records
// no deadline, as attempts stored before deadlines were.)
func TestSweeperFollowsLiveParameters(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	e := newSweeperEnv(t, t0, time.Time{})
	node := config.Defaults() // key generation 30m, messages 60s, handshake 30s: 33m30s
	p, err := newLiveParams(e.sys, node, node, 0, e.log)
	if err != nil {
		t.Fatal(err)
	}
	p.now = e.clock.Now
	job := e.job(p)
	set := func(key string, v any) {
		t.Helper()
		if _, err := e.sys.UpdateParameters(ctx, sweeperAdmin, map[string]any{key: v}); err != nil {
			t.Fatal(err)
		}
		if !p.refresh(ctx) {
			t.Fatalf("%s %v did not apply", key, v)
		}
	}
	bound := func() string { return "bound " + p.LongestSession().String() }

	set("key_generation_max_time", "2h") // raised while the phone generates its key
	e.sweepAt(job, t0.Add(time.Hour), true, bound())
	e.clock.set(t0.Add(90 * time.Minute))
	set("key_generation_max_time", "10m") // lowered again
	if got, want := p.LongestSession(), 2*time.Hour+3*time.Minute+30*time.Second; got != want {
		t.Fatalf("right after lowering: bound %s, want the earlier %s", got, want)
	}
	e.sweepAt(job, t0.Add(2*time.Hour), true, bound()) // started under 2h: may still run
	// The earlier bound lasts from the change for one such session (and
	// the time other nodes take to see the change), then the new one holds.
	e.sweepAt(job, t0.Add(90*time.Minute+changeSpread+2*time.Hour+3*time.Minute+30*time.Second), false, bound())
	if got, want := p.LongestSession(), 13*time.Minute+30*time.Second; got != want {
		t.Fatalf("later: bound %s, want %s under the 10m in force", got, want)
	}
}

// TestSweeperStartedAfterALowering: a sweeper node that starts after an
// administrator lowered key_generation_max_time knows only the new value,
// but a session another node started under the old, longer one recorded
// its deadline with its claim: the sweeper leaves it open until that
// deadline (and DeadlineGrace) has passed, not the new bound.
func TestSweeperStartedAfterALowering(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	// Node B's session, started under 2h of key generation and 60s messages.
	deadline := device.AttemptDeadline(t0, 2*time.Hour, time.Minute)
	e := newSweeperEnv(t, t0, deadline)
	// Lowered to 10m; then this sweeper node starts.
	if _, err := e.sys.UpdateParameters(ctx, sweeperAdmin, map[string]any{"key_generation_max_time": "10m"}); err != nil {
		t.Fatal(err)
	}
	node := config.Defaults()
	cfg, version, err := e.sys.Effective(ctx, node) // as serve starts
	if err != nil {
		t.Fatal(err)
	}
	p, err := newLiveParams(e.sys, node, cfg, version, e.log)
	if err != nil {
		t.Fatal(err)
	}
	p.now = e.clock.Now
	if got, want := p.LongestSession(), 13*time.Minute+30*time.Second; got != want {
		t.Fatalf("the new node's bound is %s, want %s: the test needs a node that never saw the longer value", got, want)
	}
	job := e.job(p)
	why := "deadline t0+" + deadline.Sub(t0).String()
	e.sweepAt(job, t0.Add(time.Hour), true, why)                               // far past the new bound
	e.sweepAt(job, deadline.Add(device.DeadlineGrace), true, why)              // at its deadline and grace
	e.sweepAt(job, deadline.Add(device.DeadlineGrace+time.Second), false, why) // past them
}

// TestSessionBound: raising takes effect at once; lowering keeps the
// earlier bound until a session started under it must have ended.
func TestSessionBound(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b := sessionBound{cur: 10 * time.Minute}
	steps := []struct {
		name string
		set  time.Duration // 0: no change
		at   time.Duration
		want time.Duration
	}{
		{"start", 0, 0, 10 * time.Minute},
		{"raised", time.Hour, time.Minute, time.Hour},
		{"lowered-keeps-earlier", 5 * time.Minute, 2 * time.Minute, time.Hour},
		{"earlier-still-running", 0, 2*time.Minute + changeSpread + time.Hour - time.Second, time.Hour},
		{"earlier-over", 0, 2*time.Minute + changeSpread + time.Hour, 5 * time.Minute},
		{"raised-again", 20 * time.Minute, 3 * time.Hour, 20 * time.Minute},
	}
	for _, s := range steps {
		if s.set > 0 {
			b.set(s.set, t0.Add(s.at))
		}
		if got := b.at(t0.Add(s.at)); got != s.want {
			t.Fatalf("%s: bound %s, want %s", s.name, got, s.want)
		}
	}
}
