package session

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// noted records what a session notes, as the contact recorder and the
// strangers tally would receive it.
type noted struct {
	mu        sync.Mutex
	contacts  []device.Contact
	strangers []string
}

func (n *noted) Note(c device.Contact) {
	n.mu.Lock()
	n.contacts = append(n.contacts, c)
	n.mu.Unlock()
}

func (n *noted) NoteUnknown(name, _ string, _ time.Time) {
	n.mu.Lock()
	n.strangers = append(n.strangers, name)
	n.mu.Unlock()
}

// TestContactsBeforeASession: every contact that ends before a session
// starts is noted for its device with the outcome and the reason an
// administrator needs (when the window opens, which limit, whose
// session), and one that reaches a session is left to the store.
func TestContactsBeforeASession(t *testing.T) {
	ctx := context.Background()
	stringDevice := func() device.Device {
		d := pending(device.OpInstall, device.EC256)
		d.AuthMode, d.AuthString = device.AuthString, "24681357"
		return d
	}
	tests := []struct {
		name        string
		dev         device.Device
		setup       func(f *fixture)
		msg         *wire.Message
		wantOutcome string // "" : nothing noted
		wantReason  []string
		wantUnknown []string
	}{
		{name: "window-closed", dev: pending(device.OpInstall, device.EC256),
			setup:       func(f *fixture) { f.withWindows(closedUntil{t0.Add(90 * time.Minute)}) },
			wantOutcome: device.ContactRetryLater, wantReason: []string{"outside the maintenance windows", "next opens 2026-11-25T13:30:00Z", "retry in 3600 s"}},
		{name: "concurrency-limit", dev: pending(device.OpInstall, device.EC256),
			setup: func(f *fixture) {
				f.withConfig(func(c *Config) { c.MaxConcurrentOps = 1 })
				f.deps.Limiter = NewLimiter()
				f.deps.Limiter.TryAcquire(1)
			},
			wantOutcome: device.ContactRetryLater, wantReason: []string{"max_concurrent_operations reached"}},
		{name: "device-busy-on-another-session", dev: pending(device.OpInstall, device.EC256),
			setup: func(f *fixture) {
				if _, err := f.store.StartAttempt(ctx, device.Attempt{Device: phone, Node: "other"}); err != nil {
					t.Fatal(err)
				}
			},
			wantOutcome: device.ContactRetryLater, wantReason: []string{"device " + phone + " has", "RETRY_LATER"}},
		{name: "deactivated", dev: pending(device.OpInstall, device.EC256),
			setup:       func(f *fixture) { f.deps.Active = func() bool { return false } },
			wantOutcome: device.ContactRetryLater, wantReason: []string{"deactivated"}},
		{name: "address-budget", dev: stringDevice(),
			setup: func(f *fixture) {
				f.withConfig(func(c *Config) { c.AuthFailuresPerAddress = 1 })
				f.deps.Guard = NewGuard(10 * time.Minute)
				if _, err := f.deps.Guard.Spend(ctx, "192.0.2.10", t0, 1); err != nil {
					t.Fatal(err)
				}
			},
			msg:         guessMsg(phone, "0000"),
			wantOutcome: device.ContactRetryLater, wantReason: []string{"budget of failed authentications"}},
		{name: "string-used-up", dev: func() device.Device {
			d := stringDevice()
			d.AuthString, d.AuthFailures = "", 10
			return d
		}(),
			setup:       func(f *fixture) { f.deps.Config.AuthStringMaxFailures = 10 },
			msg:         guessMsg(phone, "0000"),
			wantOutcome: device.ContactRefused, wantReason: []string{"used up"}},
		{name: "nothing-pending", dev: pending(device.OpNone, device.EC256),
			wantOutcome: device.ContactNoAction, wantReason: []string{"No Pending Operation"}},
		{name: "unknown-device", dev: pending(device.OpInstall, device.EC256),
			msg: authResponse("SEP0000000000AB"), wantUnknown: []string{"SEP0000000000AB"}},
		{name: "malformed-name", dev: pending(device.OpInstall, device.EC256),
			msg: authResponse("<script>"), wantUnknown: []string{""}},
		{name: "session-started-left-to-the-store", dev: pending(device.OpInstall, device.EC256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.dev)
			n := &noted{}
			f.deps.Contacts, f.deps.Strangers = n, n
			if tt.setup != nil {
				tt.setup(f)
			}
			msg := tt.msg
			if msg == nil {
				msg = authResponse(phone)
			}
			f.s = New(f.deps, sid, "192.0.2.10:5000")
			f.s.Handle(ctx, msg)
			if tt.wantOutcome == "" && len(n.contacts) != 0 {
				t.Fatalf("noted %+v, want nothing", n.contacts)
			}
			if tt.wantOutcome != "" {
				if len(n.contacts) != 1 {
					t.Fatalf("noted %+v, want one contact", n.contacts)
				}
				c := n.contacts[0]
				if c.Device != phone || !c.At.Equal(t0) || c.Remote != "192.0.2.10:5000" || c.Outcome != tt.wantOutcome {
					t.Errorf("contact %+v, want %s at %s from 192.0.2.10:5000", c, tt.wantOutcome, t0)
				}
				for _, w := range tt.wantReason {
					if !strings.Contains(c.Reason, w) {
						t.Errorf("reason %q lacks %q", c.Reason, w)
					}
				}
			}
			if strings.Join(n.strangers, ",") != strings.Join(tt.wantUnknown, ",") {
				t.Errorf("strangers %q, want %q", n.strangers, tt.wantUnknown)
			}
		})
	}
}
