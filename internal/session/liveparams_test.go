package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// switchParams is a Params source an administrator changes between
// sessions, as capf serve's live fleet parameters are.
type switchParams struct {
	mu  sync.Mutex
	cur Config
}

func (p *switchParams) Current() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

func (p *switchParams) set(change func(*Config)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(&p.cur)
}

// TestFleetParametersOfTheSession: the operation limit, the per-address
// guessing budget, the LSC validity and the MIC/SUDI policy are read from
// the session's fleet parameters when it starts, so a change reaches the
// next session without a new Limiter, Guard, issuer or verifier, and a
// running session keeps the values it started with.
func TestFleetParametersOfTheSession(t *testing.T) {
	ctx := context.Background()
	t.Run("max-concurrent-operations", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		p := &switchParams{cur: f.deps.Config}
		p.set(func(c *Config) { c.MaxConcurrentOps = 1 })
		f.deps.Params, f.deps.Limiter = p, NewLimiter()
		first := New(f.deps, sid, "192.0.2.10:5000")
		expectReply(t, first.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
		defer first.Close()

		other := pending(device.OpInstall, device.EC256)
		other.Name = "SEP00112233AAAA"
		f.store.devices[other.Name] = other
		second := New(f.deps, sid, "192.0.2.11:5000")
		retryDelay(t, second.Handle(ctx, authResponse(other.Name)))
		second.Close()

		p.set(func(c *Config) { c.MaxConcurrentOps = 2 }) // raised by an administrator
		third := New(f.deps, sid, "192.0.2.11:5001")
		expectReply(t, third.Handle(ctx, authResponse(other.Name)), wire.CmdKeyGenerateRequest)
		third.Close()
		if got := f.store.lastMaxOpen(); got != 2 {
			t.Errorf("the claim carried MaxOpen %d, want the 2 in force", got)
		}
	})
	t.Run("auth-failures-per-address", func(t *testing.T) {
		f := stringFixture(t, 100, Backoff{}, NewSharedGuard(10*time.Minute, newMemLedger()))
		p := &switchParams{cur: f.deps.Config}
		f.deps.Params = p
		// No budget: nothing counted, nothing slowed.
		for range 3 {
			expectEnd(t, guess(f, phone, "192.0.2.66:1000", "0000"), wire.ReasonRefused)
		}
		p.set(func(c *Config) { c.AuthFailuresPerAddress = 2 })
		for range 2 {
			expectEnd(t, guess(f, phone, "192.0.2.66:1000", "0000"), wire.ReasonRefused)
		}
		retryDelay(t, guess(f, phone, "192.0.2.66:1000", "0000"))
		p.set(func(c *Config) { c.AuthFailuresPerAddress = 3 })
		expectEnd(t, guess(f, phone, "192.0.2.66:1000", "0000"), wire.ReasonRefused)
		retryDelay(t, guess(f, phone, "192.0.2.66:1000", "0000"))
	})
	t.Run("lsc-validity", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		p := &switchParams{cur: f.deps.Config}
		p.set(func(c *Config) { c.LSCValidity = 30 * 24 * time.Hour })
		f.deps.Params = p
		s := New(f.deps, sid, "192.0.2.10:5000")
		expectReply(t, s.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
		p.set(func(c *Config) { c.LSCValidity = 365 * 24 * time.Hour }) // changed while the phone generates its key
		s.Handle(ctx, keyResponse(pkix256(t)))
		s.Close()
		if len(f.issuer.validity) != 1 || f.issuer.validity[0] != 30*24*time.Hour {
			t.Errorf("issued with validity %v, want the 720h in force when the session started", f.issuer.validity)
		}
	})
	// The claim records the session's deadline from the limits it read,
	// so that the stale-attempt sweeper of any node bounds it by them.
	t.Run("attempt-deadline", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		p := &switchParams{cur: f.deps.Config}
		f.deps.Params = p
		for _, keyGen := range []time.Duration{30 * time.Minute, 5 * time.Minute} {
			p.set(func(c *Config) { c.KeyGenMaxTime, c.MessageTimeout = keyGen, 2*time.Minute })
			s := New(f.deps, sid, "192.0.2.10:5000")
			expectReply(t, s.Handle(ctx, authResponse(phone)), wire.CmdKeyGenerateRequest)
			a := f.store.lastAttempt()
			if want := a.StartedAt.Add(keyGen + 6*time.Minute); a.StartedAt.IsZero() || !a.Deadline.Equal(want) {
				t.Errorf("key_generation_max_time %v: the claim started %v with deadline %v, want %v", keyGen, a.StartedAt, a.Deadline, want)
			}
			s.Abort(ctx, context.Canceled)
			s.Close()
		}
	})
	t.Run("auth-policy", func(t *testing.T) {
		f := newFixture(t, pending(device.OpInstall, device.EC256))
		p := &switchParams{cur: f.deps.Config}
		f.deps.Params = p
		want := []auth.Policy{{}, {SUDI: auth.SUDIRequired, AllowExpiredMIC: true}}
		for _, pol := range want {
			p.set(func(c *Config) { c.AuthPolicy = pol })
			s := New(f.deps, sid, "192.0.2.10:5000")
			s.Handle(ctx, authResponse(phone))
			s.Abort(ctx, context.Canceled)
			s.Close()
		}
		if len(f.auth.policies) != 2 || f.auth.policies[0] != want[0] || f.auth.policies[1] != want[1] {
			t.Errorf("authenticated under %+v, want %+v", f.auth.policies, want)
		}
	})
}

// lastAttempt returns the newest attempt as the session claimed it.
func (s *fakeStore) lastAttempt() device.Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[int64(len(s.attempts))]
}

// lastMaxOpen returns the MaxOpen of the newest claim.
func (s *fakeStore) lastMaxOpen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[int64(len(s.attempts))].MaxOpen
}
