package session

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

func TestDeviceLocks(t *testing.T) {
	ctx := context.Background()
	t.Run("ok/release-twice-harmless", func(t *testing.T) {
		l := NewDeviceLocks()
		release := l.Hold(phone, "10.0.0.1", func() {})
		release()
		release()
		if l.Supersede(ctx, phone, "10.0.0.1") {
			t.Fatal("superseded a released holder")
		}
	})
	t.Run("refused/other-address", func(t *testing.T) {
		l := NewDeviceLocks()
		preempted := false
		l.Hold(phone, "10.0.0.1", func() { preempted = true })
		if l.Supersede(ctx, phone, "10.0.0.2") || preempted {
			t.Fatal("another address superseded the holder")
		}
	})
	t.Run("ok/same-address-supersedes", func(t *testing.T) {
		l := NewDeviceLocks()
		var release func()
		release = l.Hold(phone, "10.0.0.1", func() { go release() })
		if !l.Supersede(ctx, phone, "10.0.0.1") {
			t.Fatal("the reconnecting phone did not take its device over")
		}
	})
	t.Run("refused/holder-does-not-let-go", func(t *testing.T) {
		l := NewDeviceLocks()
		l.Hold(phone, "10.0.0.1", func() {})
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if l.Supersede(cctx, phone, "10.0.0.1") {
			t.Fatal("took a device whose holder never let go")
		}
	})
}

// TestSupersedeOnlyAfterAuthentication: a wrong guess from the phone's own
// address (a stranger behind the same NAT) does not touch the phone's
// session in key generation.
func TestSupersedeOnlyAfterAuthentication(t *testing.T) {
	ctx := context.Background()
	d := pending(device.OpInstall, device.EC256)
	d.AuthMode, d.AuthString = device.AuthString, "24681357"
	f := newFixture(t, d)
	preempted := false
	old := New(f.deps, sid, "192.0.2.10:5000")
	old.OnSupersede(func() { preempted = true })
	expectReply(t, old.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)

	f.auth.err = &auth.Error{Reason: device.ReasonInvalidAuthString, Detail: "authentication string does not match"}
	stranger := New(f.deps, sid, "192.0.2.10:6000")
	stranger.OnSupersede(func() {})
	expectEnd(t, stranger.Handle(ctx, authResponse(phone)), wire.ReasonRefused)
	if preempted {
		t.Fatal("an unauthenticated session superseded the phone's")
	}
	f.auth.err = nil
	step := old.Handle(ctx, keyResponse(pkix256(t)))
	expectReply(t, step, wire.CmdStoreCertificateRequest)
	expectEnd(t, old.Handle(ctx, reasonMsg(wire.CmdStoreCertificateResponse, wire.ReasonSuccess)), wire.ReasonSuccess)
	if got := f.store.lastOutcome(t); got.Result != device.SuccessStatus(device.OpInstall) {
		t.Errorf("phone's session ended %+v", got)
	}
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

	// The new session lets go when superseded, as the old one did, so that
	// only the address rule can keep a stranger from taking over below.
	fresh := New(f.deps, sid, "192.0.2.10:5001")
	var freshPreempted atomic.Bool
	fresh.OnSupersede(func() {
		freshPreempted.Store(true)
		go func() {
			fresh.Abort(ctx, errors.New("use of closed network connection"))
			fresh.Close()
		}()
	})
	expectReply(t, fresh.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
	if len(f.store.outcomes) != 1 {
		t.Fatalf("outcomes %+v, want the old session's failure", f.store.outcomes)
	}
	o := f.store.outcomes[0]
	if o.Result != "Upgrade Failed: Phone Communication Failure" || !strings.Contains(o.Reason, "superseded") {
		t.Errorf("old session recorded as %+v", o)
	}

	// An authenticated session from another address is told to retry
	// later at once, and the phone's session is not touched.
	other := New(f.deps, sid, "192.0.2.99:5000")
	other.OnSupersede(func() {})
	start := time.Now()
	if d := retryDelay(t, other.Handle(ctx, authResponse(phone))); d == 0 {
		t.Error("no delay")
	}
	if freshPreempted.Load() {
		t.Fatal("a session from another address superseded the phone's")
	}
	if d := time.Since(start); d >= supersedeWait {
		t.Errorf("refused after %v: by waiting for the holder, not by the address rule", d)
	}
}
