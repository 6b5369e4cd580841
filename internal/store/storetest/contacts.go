package storetest

import (
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// runContacts checks the LastContact of a device: the refusals recorded in
// batches by RecordContacts (newest wins, nothing else changes, a deleted
// device is skipped), the sessions' own writes (StartAttempt,
// FinishAttempt, RecordAuthFailure), and that an administrator's change
// never erases it.
func runContacts(t *testing.T, open opener) {
	const remote = "192.0.2.7:51000"
	want := func(t *testing.T, got device.Contact, at time.Time, outcome, reason string) {
		t.Helper()
		if !got.At.Equal(stored(at)) || got.Remote != remote || got.Outcome != outcome || got.Reason != reason {
			t.Errorf("LastContact = %+v, want %s from %s, %q, %q", got, stored(at), remote, outcome, reason)
		}
	}

	t.Run("none-yet", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("SEP001122334455"))
		if c := get(t, s, "SEP001122334455").LastContact; !c.IsZero() || c.Outcome != "" {
			t.Errorf("a new device has a contact: %+v", c)
		}
	})

	t.Run("batch-newest-wins-field-owned", func(t *testing.T) {
		s := open.fresh(t)
		a, b := newDevice("SEP00000000000A"), newDevice("SEP00000000000B")
		create(t, s, a, b)
		before := get(t, s, a.Name)
		must(t, s.RecordContacts(t.Context(), []device.Contact{
			{Device: a.Name, At: at(2 * time.Hour), Remote: remote, Outcome: device.ContactRetryLater, Reason: "outside the maintenance windows"},
			{Device: b.Name, At: at(time.Hour), Remote: remote, Outcome: device.ContactRetryLater, Reason: "max_concurrent_operations reached"},
			{Device: "SEP0000000000FF", At: at(time.Hour), Remote: remote, Outcome: device.ContactRetryLater}, // not (or no longer) configured
		}))
		got := get(t, s, a.Name)
		want(t, got.LastContact, at(2*time.Hour), device.ContactRetryLater, "outside the maintenance windows")
		want(t, get(t, s, b.Name).LastContact, at(time.Hour), device.ContactRetryLater, "max_concurrent_operations reached")
		if got.Rev != before.Rev || got.Status != before.Status || !got.UpdatedAt.Equal(before.UpdatedAt) || got.AttemptsTotal != before.AttemptsTotal {
			t.Errorf("recording a contact changed the device: %+v, was %+v", got, before)
		}
		// An older contact (a batch that was late) does not replace a newer one.
		must(t, s.RecordContacts(t.Context(), []device.Contact{{Device: a.Name, At: at(time.Hour), Remote: "198.51.100.1:1", Outcome: device.ContactNoAction}}))
		want(t, get(t, s, a.Name).LastContact, at(2*time.Hour), device.ContactRetryLater, "outside the maintenance windows")
		// An administrator's change keeps it.
		_, _, err := s.UpdateDevice(t.Context(), a.Name, device.CLIActor("alice"), func(x *device.Device) error {
			x.Description, x.UpdatedAt = "moved", at(3*time.Hour)
			return nil
		})
		must(t, err)
		want(t, get(t, s, a.Name).LastContact, at(2*time.Hour), device.ContactRetryLater, "outside the maintenance windows")
		page, err := s.ListDevices(t.Context(), device.Query{})
		must(t, err)
		if len(page.Devices) != 2 || page.Devices[0].LastContact.IsZero() {
			t.Errorf("ListDevices lost the contact: %+v", page.Devices)
		}
		must(t, s.RecordContacts(t.Context(), nil))
	})

	t.Run("sessions-record-their-contact", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		must(t, s.RecordContacts(t.Context(), []device.Contact{{Device: d.Name, At: at(time.Hour), Remote: remote, Outcome: device.ContactRetryLater, Reason: "busy"}}))
		c, err := s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, Remote: remote, StartedAt: at(2 * time.Hour), Node: "n1"})
		must(t, err)
		want(t, get(t, s, d.Name).LastContact, at(2*time.Hour), device.ContactInProgress, "")
		failed := device.FailedStatus(device.OpInstall, device.ReasonKeyGenTimeout)
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: c.AttemptID, Node: "n1", Device: d.Name,
			FinishedAt: at(3 * time.Hour), Result: failed, Reason: "no key"}))
		want(t, get(t, s, d.Name).LastContact, at(3*time.Hour), device.ContactFailed, failed+": no key")
		c, err = s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, Remote: remote, StartedAt: at(4 * time.Hour), Node: "n1", Rev: get(t, s, d.Name).Rev})
		must(t, err)
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: c.AttemptID, Node: "n1", Device: d.Name,
			FinishedAt: at(5 * time.Hour), Result: device.SuccessStatus(device.OpInstall), Completed: true}))
		want(t, get(t, s, d.Name).LastContact, at(5*time.Hour), device.ContactSuccess, device.SuccessStatus(device.OpInstall))

		wrong := device.FailedStatus(device.OpInstall, device.ReasonInvalidAuthString)
		_, err = s.RecordAuthFailure(t.Context(), device.AuthFailure{Attempt: device.Attempt{Device: d.Name, Operation: device.OpInstall,
			Remote: remote, StartedAt: at(6 * time.Hour), FinishedAt: at(6 * time.Hour), Result: wrong, Reason: "wrong string"}})
		must(t, err)
		want(t, get(t, s, d.Name).LastContact, at(6*time.Hour), device.ContactFailed, wrong+": wrong string")

		// A session cut off by a restart: its contact is failed too, at
		// the time the phone last talked.
		_, err = s.StartAttempt(t.Context(), device.Attempt{Device: d.Name, Operation: device.OpInstall, Remote: remote, StartedAt: at(7 * time.Hour), Node: "n1", Rev: get(t, s, d.Name).Rev})
		must(t, err)
		n, err := s.FailStaleAttempts(t.Context(), device.StaleQuery{Node: "n1"}, device.ReasonServerRestart)
		if err != nil || n != 1 {
			t.Fatalf("FailStaleAttempts = %d, %v", n, err)
		}
		want(t, get(t, s, d.Name).LastContact, at(7*time.Hour), device.ContactFailed, device.FailedStatus(device.OpInstall, device.ReasonServerRestart))
	})
}
