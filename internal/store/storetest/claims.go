package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// runClaims covers the store's ownership of a device by one session: the
// claim, finishing only one's own open attempt, per-node recovery, and an
// administrator's change during a session.
func runClaims(t *testing.T, open opener) {
	t.Run("second-claim-conflicts", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		c, err := s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: "n1"})
		must(t, err)
		if got := get(t, s, d.Name); c.AttemptID == 0 || got.Status != device.StatusInProgress || got.AttemptsTotal != 1 {
			t.Errorf("claim = %+v, device %+v; want the device in progress with one attempt", c, got)
		}
		_, err = s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: "n2"})
		wantKind(t, err, fault.ErrConflict, d.Name)
		if as := attempts(t, s, d.Name, 0); len(as) != 1 {
			t.Errorf("%d attempts after a refused claim, want 1", len(as))
		}
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: c.AttemptID, Node: "n1", Device: d.Name,
			FinishedAt: at(2 * time.Hour), Result: device.FailedStatus(device.OpInstall, device.ReasonCommFailure)}))
		if _, err := s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(3 * time.Hour), Node: "n2"}); err != nil {
			t.Errorf("claim after the first attempt closed: %v", err)
		}
	})

	t.Run("stale-revision-conflicts", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		read := get(t, s, d.Name)
		// An administrator changes the key after the session read the device.
		_, _, err := s.UpdateDevice(t.Context(), d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			x.Key, x.UpdatedAt = device.EC384, at(time.Hour)
			return nil
		})
		must(t, err)
		_, err = s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(2 * time.Hour), Rev: read.Rev})
		wantKind(t, err, fault.ErrConflict, d.Name)
		if got := get(t, s, d.Name); got.Status != d.Status || got.AttemptsTotal != 0 {
			t.Errorf("a refused claim changed the device: %+v", got)
		}
		if _, err := s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(2 * time.Hour), Rev: get(t, s, d.Name).Rev}); err != nil {
			t.Errorf("claim at the current revision: %v", err)
		}
	})

	t.Run("concurrent-claims-one-wins", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, conflicts := 0, 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
				mu.Lock()
				defer mu.Unlock()
				switch fault.KindOf(err) {
				case fault.Conflict:
					conflicts++
				default:
					if err == nil {
						won++
					} else {
						t.Errorf("claim: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		if won != 1 || conflicts != 15 {
			t.Errorf("%d claims won, %d conflicts; want 1 and 15", won, conflicts)
		}
	})

	t.Run("finish-closed-or-foreign-conflicts", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		id := start(t, s, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: "n1"})
		foreign := device.Outcome{AttemptID: id, Node: "n2", Device: d.Name, FinishedAt: at(2 * time.Hour), Result: "x"}
		wantKind(t, s.FinishAttempt(t.Context(), foreign), fault.ErrConflict, d.Name)
		lsc := newCert("AB", at(24*time.Hour))
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: id, Node: "n1", Device: d.Name, FinishedAt: at(2 * time.Hour),
			Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: lsc}))
		late := device.Outcome{AttemptID: id, Node: "n1", Device: d.Name, FinishedAt: at(3 * time.Hour),
			Result: device.FailedStatus(device.OpInstall, device.ReasonCommFailure), ClearLSC: true}
		wantKind(t, s.FinishAttempt(t.Context(), late), fault.ErrConflict, d.Name)
		got := get(t, s, d.Name)
		if got.Status != device.SuccessStatus(device.OpInstall) || got.LSC == nil || got.LSC.Serial != "AB" {
			t.Errorf("device = %+v: a refused finish changed it", got)
		}
		as := attempts(t, s, d.Name, 0)
		if len(as) != 1 || as[0].Result != device.SuccessStatus(device.OpInstall) || as[0].Node != "n1" {
			t.Errorf("attempts = %+v: a refused finish overwrote the closed attempt", as)
		}
	})

	t.Run("recovery-per-node", func(t *testing.T) {
		s := open.fresh(t)
		a, b := newDevice("SEP00000000000A"), newDevice("SEP00000000000B")
		create(t, s, a, b)
		start(t, s, device.Attempt{Device: a.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: "n1"})
		start(t, s, device.Attempt{Device: b.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: "n2"})
		n, err := s.FailStaleAttempts(t.Context(), device.StaleQuery{Node: "n1"}, device.ReasonServerRestart)
		must(t, err)
		if n != 1 {
			t.Errorf("closed %d attempts, want n1's one", n)
		}
		if got := get(t, s, a.Name).Status; got != device.FailedStatus(device.OpInstall, device.ReasonServerRestart) {
			t.Errorf("n1's device status = %q", got)
		}
		if got := get(t, s, b.Name).Status; got != device.StatusInProgress {
			t.Errorf("n2's device status = %q, want its live session untouched", got)
		}
		if as := attempts(t, s, b.Name, 0); len(as) != 1 || !as[0].FinishedAt.IsZero() {
			t.Errorf("n2's attempt = %+v, want still open", as)
		}
	})

	t.Run("admin-rearms-during-session", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		id := start(t, s, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
		// The administrator switches the pending operation to Delete while
		// the phone's install is running.
		_, _, err := s.UpdateDevice(t.Context(), d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			x.Operation, x.Status, x.UpdatedAt = device.OpDelete, device.StatusPending, at(90*time.Minute)
			return nil
		})
		must(t, err)
		lsc := newCert("AC", at(24*time.Hour))
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: at(2 * time.Hour),
			Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: lsc}))
		got := get(t, s, d.Name)
		if got.Operation != device.OpDelete || got.Status != device.StatusPending {
			t.Errorf("device = %s / %q: the administrator's newer operation was erased", got.Operation, got.Status)
		}
		if got.LSC == nil || got.LSC.Serial != "AC" {
			t.Errorf("LSC = %+v: the issued certificate must be recorded", got.LSC)
		}
		if as := attempts(t, s, d.Name, 1); as[0].Result != device.SuccessStatus(device.OpInstall) {
			t.Errorf("history = %+v, want the install's success", as[0])
		}
	})
}

// runAuthFailures covers CountAuthGuess and RecordAuthFailure.
func runAuthFailures(t *testing.T, open opener) {
	failed := func(name string, h time.Duration) device.Attempt {
		return device.Attempt{Device: name, Operation: device.OpInstall, Remote: "192.0.2.9:4000", StartedAt: at(h), FinishedAt: at(h),
			Result: device.FailedStatus(device.OpInstall, device.ReasonInvalidAuthString), Reason: "authentication string does not match"}
	}
	t.Run("count-is-compare-and-swap", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		ok, err := s.CountAuthGuess(t.Context(), d.Name, 0, 3, at(time.Hour))
		must(t, err)
		if !ok {
			t.Fatal("first guess not counted")
		}
		if ok, _ := s.CountAuthGuess(t.Context(), d.Name, 0, 3, at(time.Hour)); ok {
			t.Error("a guess on a stale count was counted")
		}
		if ok, _ := s.CountAuthGuess(t.Context(), d.Name, 1, 1, at(time.Hour)); ok {
			t.Error("a guess at the limit was counted")
		}
		got := get(t, s, d.Name)
		if got.AuthFailures != 1 || !got.LastAuthFailure.Equal(stored(at(time.Hour))) {
			t.Errorf("counter = %d at %v", got.AuthFailures, got.LastAuthFailure)
		}
		start(t, s, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(2 * time.Hour)})
		if got := get(t, s, d.Name); got.AuthFailures != 0 {
			t.Errorf("counter after a successful claim = %d, want 0", got.AuthFailures)
		}
	})

	t.Run("limit-uses-up-string", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		for i := range 3 {
			ok, err := s.CountAuthGuess(t.Context(), d.Name, i, 3, at(time.Duration(i)*time.Minute))
			must(t, err)
			if !ok {
				t.Fatalf("guess %d not counted", i+1)
			}
			locked, err := s.RecordAuthFailure(t.Context(), device.AuthFailure{Attempt: failed(d.Name, time.Duration(i)*time.Minute), MaxFailures: 3})
			must(t, err)
			if locked != (i == 2) {
				t.Errorf("guess %d: locked = %v", i+1, locked)
			}
			if got := get(t, s, d.Name); i < 2 && (got.Status != device.FailedStatus(device.OpInstall, device.ReasonInvalidAuthString) || got.Operation != device.OpInstall) {
				t.Errorf("guess %d: device %s / %q, want the failure shown and the operation armed", i+1, got.Operation, got.Status)
			}
		}
		got := get(t, s, d.Name)
		if got.AuthString != "" || got.Status != device.FailedStatus(device.OpInstall, device.ReasonTooManyAuthFailures) ||
			got.Operation != device.OpInstall || got.AttemptsTotal != 3 {
			t.Errorf("device after the limit = %+v", got)
		}
		if as := attempts(t, s, d.Name, 0); len(as) != 3 {
			t.Errorf("%d attempts in history, want 3", len(as))
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: d.Name})
		must(t, err)
		if len(evs) != 1 || evs[0].Action != device.AuditAuthStringLocked || evs[0].Actor.Kind != device.ActorSystem {
			t.Errorf("audit = %+v, want the lock by the system", evs)
		}
		// A new string from the administrator resets the counter.
		got, _, err = s.UpdateDevice(t.Context(), d.Name, device.CLIActor("alice"), func(x *device.Device) error {
			x.AuthString, x.Status, x.UpdatedAt = "24681357", device.StatusPending, at(time.Hour)
			return nil
		})
		must(t, err)
		if got.AuthFailures != 0 || get(t, s, d.Name).AuthFailures != 0 {
			t.Errorf("counter after a new string = %d, want 0", got.AuthFailures)
		}
	})

	t.Run("limit-keeps-status-of-running-session", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		start(t, s, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
		ok, err := s.CountAuthGuess(t.Context(), d.Name, 0, 3, at(time.Hour))
		must(t, err)
		if !ok {
			t.Fatal("guess not counted")
		}
		if _, err := s.RecordAuthFailure(t.Context(), device.AuthFailure{Attempt: failed(d.Name, time.Hour), MaxFailures: 1}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, d.Name); got.Status != device.StatusInProgress {
			t.Errorf("status = %q, want the running session's", got.Status)
		}
	})

	t.Run("unknown-device-not-found", func(t *testing.T) {
		s := open.fresh(t)
		_, err := s.RecordAuthFailure(t.Context(), device.AuthFailure{Attempt: failed("SEP00000000FFFF", 0)})
		wantKind(t, err, fault.ErrNotFound, "SEP00000000FFFF")
	})
}

// runAudit covers the audit events of CreateDevice and DeleteDevice, and
// AppendAudit and ListAudit.
func runAudit(t *testing.T, open opener) {
	s := open.fresh(t)
	ctx := t.Context()
	d := newDevice("SEP001122334455")
	alice := device.Actor{Kind: device.ActorWeb, Name: "alice", Remote: "198.51.100.4"}
	must(t, s.CreateDevice(ctx, d, device.AuditEvent{At: at(time.Hour), Actor: alice, Action: device.AuditDeviceCreate,
		Target: d.Name, Changes: device.CreationChanges(d)}))
	must(t, s.AppendAudit(ctx, device.AuditEvent{At: at(2 * time.Hour), Actor: alice, Action: "ca.export", Target: "capf"}))
	must(t, s.DeleteDevice(ctx, d.Name, device.AuditEvent{At: at(3 * time.Hour), Actor: alice, Action: device.AuditDeviceDelete, Target: d.Name}))
	wantKind(t, s.DeleteDevice(ctx, d.Name, device.AuditEvent{At: at(4 * time.Hour), Actor: alice, Action: device.AuditDeviceDelete, Target: d.Name}),
		fault.ErrNotFound, d.Name)
	evs, err := s.ListAudit(ctx, device.AuditQuery{})
	must(t, err)
	if len(evs) != 3 || evs[0].Action != device.AuditDeviceDelete || evs[1].Action != "ca.export" || evs[2].Action != device.AuditDeviceCreate {
		t.Fatalf("audit = %+v, want delete, export, create (newest first; nothing for the refused delete)", evs)
	}
	if evs[2].Actor != alice || !evs[2].At.Equal(stored(at(time.Hour))) || len(evs[2].Changes) == 0 {
		t.Errorf("create event = %+v", evs[2])
	}
	if one, _ := s.ListAudit(ctx, device.AuditQuery{Target: "capf"}); len(one) != 1 {
		t.Errorf("by target: %+v", one)
	}
	if lim, _ := s.ListAudit(ctx, device.AuditQuery{Limit: 2}); len(lim) != 2 || lim[0].ID != evs[0].ID {
		t.Errorf("limit 2: %+v", lim)
	}
}
