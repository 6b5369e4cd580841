package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

func TestDeviceLocks(t *testing.T) {
	ctx := context.Background()
	t.Run("ok/free", func(t *testing.T) {
		l := NewDeviceLocks()
		release, ok := l.Acquire(ctx, phone, "10.0.0.1", func() {})
		if !ok {
			t.Fatal("free lock refused")
		}
		release()
		release() // a second release is harmless
		if _, ok := l.Acquire(ctx, phone, "10.0.0.2", nil); !ok {
			t.Fatal("released lock refused")
		}
	})
	t.Run("busy/other-address-refused", func(t *testing.T) {
		l := NewDeviceLocks()
		preempted := false
		l.Acquire(ctx, phone, "10.0.0.1", func() { preempted = true })
		if _, ok := l.Acquire(ctx, phone, "10.0.0.2", func() {}); ok || preempted {
			t.Fatalf("another address took the device (ok %v) or superseded the holder (%v)", ok, preempted)
		}
	})
	t.Run("ok/same-address-supersedes", func(t *testing.T) {
		l := NewDeviceLocks()
		var release func()
		release, _ = l.Acquire(ctx, phone, "10.0.0.1", func() { go release() })
		if _, ok := l.Acquire(ctx, phone, "10.0.0.1", func() {}); !ok {
			t.Fatal("the reconnecting phone did not take its device over")
		}
	})
	t.Run("busy/holder-does-not-let-go", func(t *testing.T) {
		l := NewDeviceLocks()
		l.Acquire(ctx, phone, "10.0.0.1", func() {})
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, ok := l.Acquire(cctx, phone, "10.0.0.1", func() {}); ok {
			t.Fatal("took a device whose holder never let go")
		}
	})
}

// TestSupersede plays a phone that reboots while generating its key: the
// new session from the same address takes over and the old one is recorded
// as a communication failure.
func TestSupersede(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, pending(device.OpInstall, device.EC256))
	old := New(f.deps, sid, "192.0.2.10:5000")
	old.OnSupersede(func() {
		go func() {
			old.Abort(ctx, errors.New("use of closed network connection"))
			old.Close()
		}()
	})
	expectReply(t, old.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)

	fresh := New(f.deps, sid, "192.0.2.10:5001")
	fresh.OnSupersede(func() {})
	expectReply(t, fresh.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
	if len(f.store.outcomes) != 1 {
		t.Fatalf("outcomes %+v, want the old session's failure", f.store.outcomes)
	}
	o := f.store.outcomes[0]
	if o.Result != "Upgrade Failed: Phone Communication Failure" || !strings.Contains(o.Reason, "superseded") {
		t.Errorf("old session recorded as %+v", o)
	}

	other := New(f.deps, sid, "192.0.2.99:5000")
	if d := retryDelay(t, other.Handle(ctx, authResponse(phone))); d == 0 {
		t.Error("no delay")
	}
}
