package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
)

// SystemStore is what RunSystem tests: the service state of system.Store,
// with the audit listing to see its events, and Close.
type SystemStore interface {
	system.Store
	ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
	Close() error
}

// RunSystem runs the contract of system.Store against the stores open
// returns; open must return a new, empty store each time. RunSystem closes
// it when the subtest ends.
func RunSystem(t *testing.T, open func(t *testing.T) SystemStore) {
	t.Helper()
	fresh := func(t *testing.T) SystemStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("default-active", func(t *testing.T) {
		s := fresh(t)
		st, err := s.GetServiceState(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if want := (system.ServiceState{Active: true}); st != want {
			t.Fatalf("GetServiceState of a new store = %+v, want %+v", st, want)
		}
	})
	t.Run("set-and-audit", func(t *testing.T) {
		s := fresh(t)
		ctx := t.Context()
		actor := device.CLIActor("alice")
		steps := []struct {
			name   string
			active bool
			at     time.Time
		}{
			{"deactivate", false, at(time.Minute)},
			{"activate", true, at(2 * time.Minute)},
			{"deactivate-again", false, at(3 * time.Minute)},
		}
		for i, step := range steps {
			ev := device.AuditEvent{At: step.at, Actor: actor, Action: "service." + step.name, Target: "service",
				Changes: []device.FieldChange{{Field: "state", Old: "x", New: step.name}}}
			in := system.ServiceState{Active: step.active, ChangedAt: step.at, ChangedBy: actor.String()}
			if err := s.SetServiceState(ctx, in, ev); err != nil {
				t.Fatalf("%s: SetServiceState: %v", step.name, err)
			}
			got, err := s.GetServiceState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := system.ServiceState{Active: step.active, ChangedAt: stored(step.at), ChangedBy: "cli:alice"}
			if got != want {
				t.Fatalf("%s: GetServiceState = %+v, want %+v", step.name, got, want)
			}
			evs, err := s.ListAudit(ctx, device.AuditQuery{Target: "service"})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != i+1 || evs[0].Action != ev.Action || !evs[0].At.Equal(stored(step.at)) || evs[0].Actor != actor ||
				len(evs[0].Changes) != 1 || evs[0].Changes[0].New != step.name {
				t.Fatalf("%s: audit = %+v, want %d events, the newest %+v", step.name, evs, i+1, ev)
			}
		}
	})
	t.Run("cancelled-changes-nothing", func(t *testing.T) {
		s := fresh(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.SetServiceState(ctx, system.ServiceState{Active: false, ChangedAt: t0}, device.AuditEvent{At: t0, Action: "service.deactivate", Target: "service"})
		if err == nil {
			t.Fatal("SetServiceState with a cancelled context succeeded")
		}
		st, err := s.GetServiceState(t.Context())
		if err != nil || !st.Active {
			t.Fatalf("after a cancelled SetServiceState: %+v, %v; want still active", st, err)
		}
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{}); len(evs) != 0 {
			t.Fatalf("a cancelled SetServiceState left audit events: %+v", evs)
		}
	})
}
