package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// closedUntil is a maintenance schedule closed until a given time.
type closedUntil struct{ t time.Time }

func (c closedUntil) Open(t time.Time) bool { return !t.Before(c.t) }
func (c closedUntil) NextOpen(t time.Time) time.Time {
	if c.Open(t) {
		return t
	}
	return c.t
}

// countingObserver records what a session reports.
type countingObserver struct {
	mu      sync.Mutex
	keyWait int
	issued  int
	usedUp  int
	ended   []Summary
}

func (o *countingObserver) AuthStringUsedUp() {
	o.mu.Lock()
	o.usedUp++
	o.mu.Unlock()
}

func (o *countingObserver) SessionEnded(sum Summary, _ time.Duration) {
	o.mu.Lock()
	o.ended = append(o.ended, sum)
	o.mu.Unlock()
}

func (o *countingObserver) KeyWait(delta int) {
	o.mu.Lock()
	o.keyWait += delta
	o.mu.Unlock()
}

func (o *countingObserver) Issued(time.Duration) {
	o.mu.Lock()
	o.issued++
	o.mu.Unlock()
}

func retryDelay(t *testing.T, step Step) uint32 {
	t.Helper()
	if step.Reply == nil || step.Reply.Command != wire.CmdRetryLater || !step.Done {
		t.Fatalf("step = %+v, want RETRY_LATER", step)
	}
	d, err := step.Reply.Uint(wire.TagRetryDelay)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAdmission(t *testing.T) {
	ctx := context.Background()
	t.Run("retry/limit-reached", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.deps.Limiter = NewLimiter()
		f.withConfig(func(c *Config) { c.MaxConcurrentOps = 1 })
		f.deps.Limiter.TryAcquire(1)
		if d := retryDelay(t, f.s.Handle(ctx, authResponse(phone))); d != 30 {
			t.Errorf("RETRY_DELAY %d, want the configured 30 s", d)
		}
		if got := f.s.Summary(); got.Outcome != "retry-later" || got.RetryWhy != "busy" {
			t.Errorf("summary %+v", got)
		}
		if len(f.store.calls) != 0 {
			t.Errorf("a refused phone was recorded: %v", f.store.calls)
		}
	})
	// max_concurrent_operations across the fleet: the attempts open on
	// other nodes count.
	t.Run("retry/fleet-limit-reached", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.deps.Limiter = NewLimiter()
		f.withConfig(func(c *Config) { c.MaxConcurrentOps = 2 })
		f.store.openElsewhere = 2
		retryDelay(t, f.s.Handle(ctx, authResponse(phone)))
		if got := f.s.Summary(); got.Outcome != "retry-later" || got.RetryWhy != "busy" || got.Reason != "max_concurrent_operations reached across the fleet" {
			t.Errorf("summary %+v", got)
		}
		if len(f.store.calls) != 0 || f.store.guessesCAS != 0 {
			t.Errorf("a phone refused for the fleet's load was recorded or spent a guess: %v, %d guesses", f.store.calls, f.store.guessesCAS)
		}
		f.s.Close()
		if f.deps.Limiter.Running() != 0 {
			t.Error("slot not released")
		}
	})
	t.Run("retry/fleet-limit-reached-at-claim", func(t *testing.T) {
		// Another node claimed the last slot between this session's count
		// and its claim: the store refuses the claim.
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.deps.Limiter = NewLimiter()
		f.withConfig(func(c *Config) { c.MaxConcurrentOps = 2 })
		f.store.openElsewhere, f.store.countLag = 2, 1
		retryDelay(t, f.s.Handle(ctx, authResponse(phone)))
		if got := f.s.Summary(); got.RetryWhy != "busy" {
			t.Errorf("summary %+v", got)
		}
		if len(f.store.open) != 0 {
			t.Errorf("open attempts %v, want none", f.store.open)
		}
	})
	t.Run("ok/fleet-below-limit", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.deps.Limiter = NewLimiter()
		f.withConfig(func(c *Config) { c.MaxConcurrentOps = 2 })
		f.store.openElsewhere = 1
		expectReply(t, f.s.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
	})
	t.Run("ok/slot-released-on-close", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.deps.Limiter = NewLimiter()
		f.withConfig(func(c *Config) { c.MaxConcurrentOps = 1 })
		expectReply(t, f.s.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
		if f.deps.Limiter.Running() != 1 {
			t.Fatal("operation does not hold a slot")
		}
		f.s.Abort(ctx, context.Canceled)
		f.s.Close()
		if f.deps.Limiter.Running() != 0 {
			t.Fatal("slot not released")
		}
	})
	t.Run("retry/outside-maintenance-window", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.withWindows(closedUntil{t0.Add(20 * time.Minute)})
		if d := retryDelay(t, f.s.Handle(ctx, authResponse(phone))); d != 1200 {
			t.Errorf("RETRY_DELAY %d, want the 1200 s until the window opens", d)
		}
		if f.s.Summary().RetryWhy != "maintenance-window" {
			t.Errorf("summary %+v", f.s.Summary())
		}
	})
	t.Run("retry/window-delay-capped-at-an-hour", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		f.withWindows(closedUntil{t0.Add(10 * time.Hour)})
		if d := retryDelay(t, f.s.Handle(ctx, authResponse(phone))); d != 3600 {
			t.Errorf("RETRY_DELAY %d, want 3600", d)
		}
	})
	t.Run("ok/no-pending-operation-ignores-window", func(t *testing.T) {
		f := newFixture(t, pending(device.OpNone, device.EC256))
		f.withWindows(closedUntil{t0.Add(time.Hour)})
		expectEnd(t, f.s.Handle(ctx, authResponse(phone)), wire.ReasonNoAction)
	})
	t.Run("ok/late-operation-failed-even-when-busy", func(t *testing.T) {
		d := pending(device.OpInstall, device.EC256)
		d.Deadline = t0.Add(-time.Minute)
		f := newFixture(t, d)
		f.deps.Limiter = NewLimiter()
		f.withConfig(func(c *Config) { c.MaxConcurrentOps = 1 })
		f.deps.Limiter.TryAcquire(1)
		expectEnd(t, f.s.Handle(ctx, authResponse(phone)), wire.ReasonNoAction)
		if got := f.store.lastOutcome(t).Result; got != "Upgrade Failed: User Initiated Request Late/Timedout" {
			t.Errorf("status %q", got)
		}
	})
	t.Run("ok/observer-counts-key-waits-and-issuance", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		o := &countingObserver{}
		f.deps.Observer = o
		f.s.Handle(ctx, authResponse(phone))
		if o.keyWait != 1 {
			t.Fatalf("waiting for key = %d, want 1", o.keyWait)
		}
		f.s.Handle(ctx, keyResponse(pkix256(t)))
		if o.keyWait != 0 || o.issued != 1 {
			t.Fatalf("after the key: waiting %d issued %d", o.keyWait, o.issued)
		}
	})
	t.Run("ok/observer-key-wait-released-on-abort", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		o := &countingObserver{}
		f.deps.Observer = o
		f.s.Handle(ctx, authResponse(phone))
		f.s.Abort(ctx, context.Canceled)
		f.s.Close()
		if o.keyWait != 0 {
			t.Fatalf("waiting for key = %d after abort", o.keyWait)
		}
	})
}
