package storetest

import (
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// runResets checks a device's last reset: RecordReset keeps the latest
// (replacing the one before) with its audit event in the same
// transaction, changes nothing else on the device, refuses an unknown
// device, and goes with the device when it is deleted.
func runResets(t *testing.T, open opener) {
	t.Run("record-replace-audit-field-owned", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		if r, err := s.LastReset(t.Context(), d.Name); err != nil || !r.IsZero() {
			t.Fatalf("a new device has a reset: %+v, %v", r, err)
		}
		before := get(t, s, d.Name)
		fail := device.Reset{Device: d.Name, At: at(time.Hour), Actor: "web:alice", OK: false, Reason: "the PBX refused the NOTIFY"}
		must(t, s.RecordReset(t.Context(), fail, device.AuditEvent{At: at(time.Hour), Actor: device.Actor{Kind: device.ActorWeb, Name: "alice"},
			Action: device.AuditDeviceResetOutcome, Target: d.Name, Detail: "failed: the PBX refused the NOTIFY"}))
		got, err := s.LastReset(t.Context(), d.Name)
		must(t, err)
		if got.Device != d.Name || !got.At.Equal(stored(at(time.Hour))) || got.Actor != "web:alice" || got.OK || got.Reason != fail.Reason {
			t.Errorf("LastReset = %+v, want %+v", got, fail)
		}
		ok := device.Reset{Device: d.Name, At: at(2 * time.Hour), Actor: "cli:root", OK: true}
		must(t, s.RecordReset(t.Context(), ok, device.AuditEvent{At: at(2 * time.Hour), Actor: device.CLIActor("root"),
			Action: device.AuditDeviceResetOutcome, Target: d.Name, Detail: "ok"}))
		got, err = s.LastReset(t.Context(), d.Name)
		must(t, err)
		if !got.OK || got.Reason != "" || got.Actor != "cli:root" || !got.At.Equal(stored(at(2*time.Hour))) {
			t.Errorf("LastReset = %+v, want %+v", got, ok)
		}
		after := get(t, s, d.Name)
		if after.Rev != before.Rev || after.Status != before.Status || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("recording a reset changed the device: %+v, was %+v", after, before)
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: d.Name})
		must(t, err)
		n := 0
		for _, ev := range evs {
			if ev.Action == device.AuditDeviceResetOutcome {
				n++
			}
		}
		if n != 2 || evs[0].Detail != "ok" {
			t.Errorf("audit events %+v, want two reset outcomes, the newest ok", evs)
		}
	})

	t.Run("unknown-device", func(t *testing.T) {
		s := open.fresh(t)
		err := s.RecordReset(t.Context(), device.Reset{Device: "SEP0000000000FF", At: at(0), Actor: "cli:root", OK: true},
			device.AuditEvent{At: at(0), Actor: device.CLIActor("root"), Action: device.AuditDeviceResetOutcome, Target: "SEP0000000000FF"})
		wantKind(t, err, fault.ErrNotFound, "SEP0000000000FF")
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{})
		must(t, err)
		if len(evs) != 0 {
			t.Errorf("a refused reset left audit events: %+v", evs)
		}
	})

	t.Run("deleted-with-device", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		must(t, s.RecordReset(t.Context(), device.Reset{Device: d.Name, At: at(0), Actor: "cli:root", OK: true}, device.AuditEvent{}))
		must(t, s.DeleteDevice(t.Context(), d.Name, device.AuditEvent{}))
		create(t, s, d)
		if r, err := s.LastReset(t.Context(), d.Name); err != nil || !r.IsZero() {
			t.Errorf("a re-created device has its predecessor's reset: %+v, %v", r, err)
		}
	})
}
