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

// TestSweeperFollowsLiveParameters: the stale-attempt sweeper bounds a
// session by the key-generation time in force when it runs, not the one of
// the node's start: a session still running after an administrator raised
// key_generation_max_time is left alone; after the time is lowered again,
// a session that started under the longer one is left alone until it
// could have ended; past every bound, it is failed.
func TestSweeperFollowsLiveParameters(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	clock := &testClock{now: t0}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := system.NewService(system.Options{DataDir: dir, Store: st, Now: clock.Now})
	node := config.Defaults() // key generation 30m, messages 60s, handshake 30s: 33m30s
	p, err := newLiveParams(sys, node, node, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	p.now = clock.Now
	svc := device.NewService(device.ServiceOptions{Store: st, Now: clock.Now})
	admin := device.CLIActor("alice")
	d, err := svc.Add(ctx, admin, device.Device{Name: "SEP001122334455", AuthMode: device.AuthNull, Operation: device.OpInstall}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartAttempt(ctx, device.Attempt{Device: d.Name, Operation: d.Operation, Remote: "192.0.2.10:5000",
		StartedAt: t0, Node: "node-b", Rev: d.Rev}); err != nil {
		t.Fatal(err)
	}
	job := sweepJob(svc, p.LongestSession, 30*time.Second, st, clock.Now, log)
	set := func(key string, v any) {
		t.Helper()
		if _, err := sys.UpdateParameters(ctx, admin, map[string]any{key: v}); err != nil {
			t.Fatal(err)
		}
		if !p.refresh(ctx) {
			t.Fatalf("%s %v did not apply", key, v)
		}
	}
	sweepAt := func(at time.Time, wantOpen bool) {
		t.Helper()
		clock.set(at)
		if err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetDevice(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if open := got.Status == device.StatusInProgress; open != wantOpen {
			t.Fatalf("at t0+%s (bound %s): status %q; want the session open: %v", at.Sub(t0), p.LongestSession(), got.Status, wantOpen)
		}
	}

	set("key_generation_max_time", "2h") // raised while the phone generates its key
	sweepAt(t0.Add(time.Hour), true)
	clock.set(t0.Add(90 * time.Minute))
	set("key_generation_max_time", "10m") // lowered again
	if got, want := p.LongestSession(), 2*time.Hour+3*time.Minute+30*time.Second; got != want {
		t.Fatalf("right after lowering: bound %s, want the earlier %s", got, want)
	}
	sweepAt(t0.Add(2*time.Hour), true) // started under 2h: may still run
	// The earlier bound lasts from the change for one such session (and
	// the time other nodes take to see the change), then the new one holds.
	sweepAt(t0.Add(90*time.Minute+changeSpread+2*time.Hour+3*time.Minute+30*time.Second), false)
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
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	clock := &testClock{now: t0}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := system.NewService(system.Options{DataDir: dir, Store: st, Now: clock.Now})
	svc := device.NewService(device.ServiceOptions{Store: st, Now: clock.Now})
	admin := device.CLIActor("alice")
	d, err := svc.Add(ctx, admin, device.Device{Name: "SEP001122334455", AuthMode: device.AuthNull, Operation: device.OpInstall}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Node B's session, started under 2h of key generation and 60s messages.
	deadline := device.AttemptDeadline(t0, 2*time.Hour, time.Minute)
	if _, err := st.StartAttempt(ctx, device.Attempt{Device: d.Name, Operation: d.Operation, Remote: "192.0.2.10:5000",
		StartedAt: t0, Node: "node-b", Rev: d.Rev, Deadline: deadline}); err != nil {
		t.Fatal(err)
	}
	// Lowered to 10m; then this sweeper node starts.
	if _, err := sys.UpdateParameters(ctx, admin, map[string]any{"key_generation_max_time": "10m"}); err != nil {
		t.Fatal(err)
	}
	node := config.Defaults()
	cfg, version, err := sys.Effective(ctx, node) // as serve starts
	if err != nil {
		t.Fatal(err)
	}
	p, err := newLiveParams(sys, node, cfg, version, log)
	if err != nil {
		t.Fatal(err)
	}
	p.now = clock.Now
	if got, want := p.LongestSession(), 13*time.Minute+30*time.Second; got != want {
		t.Fatalf("the new node's bound is %s, want %s: the test needs a node that never saw the longer value", got, want)
	}
	job := sweepJob(svc, p.LongestSession, 30*time.Second, st, clock.Now, log)
	sweepAt := func(at time.Time, wantOpen bool) {
		t.Helper()
		clock.set(at)
		if err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetDevice(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if open := got.Status == device.StatusInProgress; open != wantOpen {
			t.Fatalf("at t0+%s (deadline t0+%s): status %q; want the session open: %v", at.Sub(t0), deadline.Sub(t0), got.Status, wantOpen)
		}
	}
	sweepAt(t0.Add(time.Hour), true)                               // far past the new bound
	sweepAt(deadline.Add(device.DeadlineGrace), true)              // at its deadline and grace
	sweepAt(deadline.Add(device.DeadlineGrace+time.Second), false) // past them
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
