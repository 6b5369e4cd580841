package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// start records an attempt, failing t if it cannot.
func start(t *testing.T, s device.Store, a device.Attempt) int64 {
	t.Helper()
	id, err := StartAttempt(s, t.Context(), a)
	if err != nil {
		t.Fatalf("StartAttempt(%q): %v", a.Device, err)
	}
	return id
}

// startClosed records an attempt and closes it at once (as failed), so
// that the device may be claimed again.
func startClosed(t *testing.T, s device.Store, a device.Attempt) int64 {
	t.Helper()
	id := start(t, s, a)
	must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: id, Node: a.Node, Device: a.Device,
		FinishedAt: a.StartedAt, Result: device.FailedStatus(a.Operation, device.ReasonCommFailure)}))
	return id
}

// attempts lists a device's attempts, failing t if it cannot.
func attempts(t *testing.T, s device.Store, name string, limit int) []device.Attempt {
	t.Helper()
	as, err := s.ListAttempts(t.Context(), name, limit)
	if err != nil {
		t.Fatalf("ListAttempts(%q): %v", name, err)
	}
	return as
}

// runAttempt covers StartAttempt, FinishAttempt and ListAttempts.
func runAttempt(t *testing.T, open opener) {
	t.Run("start-pending-sets-in-progress", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		a := device.Attempt{Device: d.Name, Operation: device.OpInstall, Remote: "192.0.2.7:51234", StartedAt: at(time.Hour)}
		a.ID = start(t, s, a)
		if a.ID == 0 {
			t.Error("StartAttempt returned id 0")
		}
		want := d
		want.Status, want.UpdatedAt = device.StatusInProgress, a.StartedAt
		checkDevice(t, get(t, s, d.Name), want)
		as := attempts(t, s, d.Name, 0)
		if len(as) != 1 {
			t.Fatalf("ListAttempts: %d attempts, want 1", len(as))
		}
		checkAttempt(t, as[0], a)
		if !as[0].FinishedAt.IsZero() {
			t.Errorf("open attempt FinishedAt = %v, want zero", as[0].FinishedAt)
		}
	})

	t.Run("start-no-operation-keeps-status", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		d.Operation, d.Status = device.OpNone, "Upgrade Success"
		create(t, s, d)
		start(t, s, device.Attempt{Device: d.Name, Operation: device.OpNone, StartedAt: at(time.Hour)})
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("start-unknown-device-not-found", func(t *testing.T) {
		s := open.fresh(t)
		_, err := StartAttempt(s, t.Context(), device.Attempt{Device: "SEP00000000FFFF", StartedAt: t0})
		wantKind(t, err, fault.ErrNotFound, "SEP00000000FFFF")
	})

	t.Run("start-ids-distinct", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("SEP000000000001"), newDevice("SEP000000000002"))
		seen := map[int64]bool{}
		for i := range 6 {
			id := startClosed(t, s, device.Attempt{Device: fmt.Sprintf("SEP00000000000%d", i%2+1), StartedAt: t0})
			if seen[id] {
				t.Errorf("id %d returned twice", id)
			}
			seen[id] = true
		}
	})

	t.Run("finish-completed-set-lsc", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		d.LSC = newCert("01", at(time.Hour))
		create(t, s, d)
		a := device.Attempt{Device: d.Name, Operation: device.OpInstall, Remote: "192.0.2.7:1", StartedAt: at(time.Hour)}
		a.ID = start(t, s, a)
		lsc := newCert("02", at(5*365*24*time.Hour))
		o := device.Outcome{
			AttemptID: a.ID, Device: d.Name, FinishedAt: at(time.Hour + 3*time.Second),
			Result: device.SuccessStatus(device.OpInstall), Reason: "installed", AuthMode: "string",
			Completed: true, SetLSC: lsc,
		}
		must(t, s.FinishAttempt(t.Context(), o))

		want := d
		want.Operation, want.AuthString, want.Status, want.LSC, want.UpdatedAt = device.OpNone, "", o.Result, lsc, o.FinishedAt
		checkDevice(t, get(t, s, d.Name), want)
		wantA := a
		wantA.FinishedAt, wantA.Result, wantA.Reason, wantA.AuthMode = o.FinishedAt, o.Result, o.Reason, o.AuthMode
		checkAttempt(t, attempts(t, s, d.Name, 0)[0], wantA)
	})

	t.Run("finish-completed-clear-lsc", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		d.Operation, d.LSC = device.OpDelete, newCert("01", at(time.Hour))
		create(t, s, d)
		id := start(t, s, device.Attempt{Device: d.Name, Operation: device.OpDelete, StartedAt: at(time.Hour)})
		o := device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: at(2 * time.Hour),
			Result: device.SuccessStatus(device.OpDelete), AuthMode: "lsc", Completed: true, ClearLSC: true}
		must(t, s.FinishAttempt(t.Context(), o))
		want := d
		want.Operation, want.AuthString, want.Status, want.LSC, want.UpdatedAt = device.OpNone, "", o.Result, nil, o.FinishedAt
		checkDevice(t, get(t, s, d.Name), want)
	})

	t.Run("finish-records-sudi-outcome", func(t *testing.T) {
		s := open.fresh(t)
		create(t, s, newDevice("SEP001122334455"), newDevice("SEP001122334466"))
		for _, tc := range []struct {
			device, result, sudi string
		}{
			{"SEP001122334455", device.SuccessStatus(device.OpInstall), "not verified: unknown issuer"},
			{"SEP001122334466", device.FailedStatus(device.OpInstall, device.ReasonInvalidCredentials), "refused: signature does not verify"},
		} {
			a := device.Attempt{Device: tc.device, Operation: device.OpInstall, Remote: "192.0.2.7:1", StartedAt: at(time.Hour)}
			a.ID = start(t, s, a)
			if got := attempts(t, s, tc.device, 0)[0].SUDI; got != "" {
				t.Errorf("open attempt SUDI = %q, want empty", got)
			}
			o := device.Outcome{AttemptID: a.ID, Device: tc.device, FinishedAt: at(2 * time.Hour),
				Result: tc.result, AuthMode: "lsc", SUDI: tc.sudi}
			must(t, s.FinishAttempt(t.Context(), o))
			a.FinishedAt, a.Result, a.AuthMode, a.SUDI = o.FinishedAt, o.Result, o.AuthMode, o.SUDI
			checkAttempt(t, attempts(t, s, tc.device, 0)[0], a)
		}
	})

	t.Run("finish-failed-keeps-operation", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		d.LSC = newCert("01", at(time.Hour))
		create(t, s, d)
		id := start(t, s, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
		o := device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: at(2 * time.Hour),
			Result: device.FailedStatus(device.OpInstall, device.ReasonInvalidAuthString), Reason: "wrong digits"}
		must(t, s.FinishAttempt(t.Context(), o))
		want := d
		want.Status, want.UpdatedAt = o.Result, o.FinishedAt
		checkDevice(t, get(t, s, d.Name), want)
		a := attempts(t, s, d.Name, 0)[0]
		if a.Result != o.Result || a.Reason != o.Reason || a.AuthMode != "" {
			t.Errorf("attempt = %+v, want result %q, reason %q, no auth mode", a, o.Result, o.Reason)
		}
	})

	t.Run("finish-unknown-attempt-not-found", func(t *testing.T) {
		s := open.fresh(t)
		d := newDevice("SEP001122334455")
		create(t, s, d)
		err := s.FinishAttempt(t.Context(), device.Outcome{AttemptID: 424242, Device: d.Name, FinishedAt: t0, Result: "x"})
		wantKind(t, err, fault.ErrNotFound, d.Name)
		checkDevice(t, get(t, s, d.Name), d)
	})

	t.Run("list-newest-first-and-limit", func(t *testing.T) {
		s := open.fresh(t)
		d, other := newDevice("SEP001122334455"), newDevice("SEP0011223344FF")
		create(t, s, d, other)
		var ids []int64
		for _, h := range []time.Duration{1, 3, 2, 3, 5} { // two start at the same time
			ids = append(ids, startClosed(t, s, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(h * time.Hour)}))
		}
		start(t, s, device.Attempt{Device: other.Name, StartedAt: at(10 * time.Hour)})
		// Newest first; equal start times, the later attempt first.
		want := []int64{ids[4], ids[3], ids[1], ids[2], ids[0]}
		for _, c := range []struct {
			name  string
			limit int
			want  []int64
		}{
			{"all", 0, want}, {"negative-all", -5, want}, {"limit-3", 3, want[:3]}, {"limit-over", 99, want},
		} {
			t.Run(c.name, func(t *testing.T) {
				var got []int64
				for _, a := range attempts(t, s, d.Name, c.limit) {
					got = append(got, a.ID)
					if a.Device != d.Name {
						t.Errorf("attempt %d is of device %q", a.ID, a.Device)
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("ids = %v, want %v", got, c.want)
				}
			})
		}
		if as := attempts(t, s, "SEP00000000FFFF", 0); len(as) != 0 {
			t.Errorf("unknown device: %d attempts, want 0", len(as))
		}
	})
}

// runIssuance covers RecordIssuance and ListIssuances.
func runIssuance(t *testing.T, open opener) {
	issuance := func(serial, name string, id int64, issued time.Time) device.Issuance {
		return device.Issuance{
			Serial: serial, Device: name, AttemptID: id, Issuer: "CN=CAPF-TEST",
			IssuedAt: issued, NotBefore: issued.Add(-time.Minute), NotAfter: issued.AddDate(5, 0, 0),
			DER: []byte("cert " + serial),
		}
	}
	check := func(t *testing.T, got []device.Issuance, want ...device.Issuance) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d issuances, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Serial != w.Serial || g.Device != w.Device || g.AttemptID != w.AttemptID ||
				g.Issuer != w.Issuer || !bytes.Equal(g.DER, w.DER) {
				t.Errorf("issuance %d = %+v, want %+v", i, g, w)
			}
			for _, d := range []string{
				diffTime("IssuedAt", g.IssuedAt, w.IssuedAt),
				diffTime("NotBefore", g.NotBefore, w.NotBefore),
				diffTime("NotAfter", g.NotAfter, w.NotAfter),
			} {
				if d != "" {
					t.Errorf("issuance %s: %s", w.Serial, d)
				}
			}
		}
	}

	t.Run("record-and-list-newest-first", func(t *testing.T) {
		s := open.fresh(t)
		a, b := newDevice("SEP00000000000A"), newDevice("SEP00000000000B")
		create(t, s, a, b)
		ida := start(t, s, device.Attempt{Device: a.Name, StartedAt: t0})
		idb := start(t, s, device.Attempt{Device: b.Name, StartedAt: t0})
		i1 := issuance("01AB", a.Name, ida, at(time.Hour))
		i2 := issuance("02CD", b.Name, idb, at(2*time.Hour))
		i3 := issuance("03EF", a.Name, ida, at(3*time.Hour))
		for _, is := range []device.Issuance{i1, i2, i3} {
			must(t, s.RecordIssuance(t.Context(), is))
		}
		got, err := s.ListIssuances(t.Context(), a.Name)
		must(t, err)
		check(t, got, i3, i1)
		got, err = s.ListIssuances(t.Context(), "")
		must(t, err)
		check(t, got, i3, i2, i1)
		got, err = s.ListIssuances(t.Context(), "SEP00000000FFFF")
		must(t, err)
		check(t, got)
	})

	t.Run("duplicate-serial-conflict", func(t *testing.T) {
		s := open.fresh(t)
		a := newDevice("SEP00000000000A")
		create(t, s, a)
		is := issuance("7F00", a.Name, 0, t0)
		must(t, s.RecordIssuance(t.Context(), is))
		again := is
		again.DER = []byte("another certificate")
		wantKind(t, s.RecordIssuance(t.Context(), again), fault.ErrConflict, "7F00")
		got, err := s.ListIssuances(t.Context(), "")
		must(t, err)
		check(t, got, is)
	})

	t.Run("survive-device-delete", func(t *testing.T) {
		s := open.fresh(t)
		a := newDevice("SEP00000000000A")
		create(t, s, a)
		id := start(t, s, device.Attempt{Device: a.Name, StartedAt: t0})
		is := issuance("0F", a.Name, id, t0)
		must(t, s.RecordIssuance(t.Context(), is))
		must(t, s.DeleteDevice(t.Context(), a.Name, device.AuditEvent{}))
		got, err := s.ListIssuances(t.Context(), a.Name)
		must(t, err)
		check(t, got, is)
		// and the serial stays taken.
		wantKind(t, s.RecordIssuance(t.Context(), is), fault.ErrConflict, "0F")
	})
}

// runFetched covers SaveFetchedCertificate and ListFetchedCertificates.
func runFetched(t *testing.T, open opener) {
	t.Run("save-and-list-newest-first", func(t *testing.T) {
		s := open.fresh(t)
		a, b := newDevice("SEP00000000000A"), newDevice("SEP00000000000B")
		create(t, s, a, b)
		fcs := []device.FetchedCertificate{
			{Device: a.Name, Type: "MIC", FetchedAt: at(time.Hour), DER: []byte("mic")},
			{Device: a.Name, Type: "LSC", FetchedAt: at(2 * time.Hour), DER: []byte("lsc")},
			{Device: b.Name, Type: "LSC", FetchedAt: at(3 * time.Hour), DER: []byte("other")},
		}
		for _, fc := range fcs {
			must(t, s.SaveFetchedCertificate(t.Context(), fc))
		}
		got, err := s.ListFetchedCertificates(t.Context(), a.Name)
		must(t, err)
		want := []device.FetchedCertificate{fcs[1], fcs[0]}
		if len(got) != len(want) {
			t.Fatalf("%d certificates, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].Device != want[i].Device || got[i].Type != want[i].Type || !bytes.Equal(got[i].DER, want[i].DER) {
				t.Errorf("certificate %d = %+v, want %+v", i, got[i], want[i])
			}
			if d := diffTime("FetchedAt", got[i].FetchedAt, want[i].FetchedAt); d != "" {
				t.Errorf("certificate %d: %s", i, d)
			}
		}
	})

	t.Run("one-record-per-certificate", func(t *testing.T) {
		s := open.fresh(t)
		a, b := newDevice("SEP00000000000A"), newDevice("SEP00000000000B")
		create(t, s, a, b)
		for _, fc := range []device.FetchedCertificate{
			{Device: a.Name, Type: "LSC", FetchedAt: at(time.Hour), DER: []byte("lsc")}, // presented at authentication
			{Device: a.Name, Type: "LSC", FetchedAt: at(time.Hour), DER: []byte("lsc")}, // then fetched
			{Device: a.Name, Type: "MIC", FetchedAt: at(2 * time.Hour), DER: []byte("mic")},
			{Device: b.Name, Type: "LSC", FetchedAt: at(2 * time.Hour), DER: []byte("lsc")}, // another device's record stays
			{Device: a.Name, Type: "LSC", FetchedAt: at(3 * time.Hour), DER: []byte("lsc")}, // a later troubleshoot
		} {
			must(t, s.SaveFetchedCertificate(t.Context(), fc))
		}
		got, err := s.ListFetchedCertificates(t.Context(), a.Name)
		must(t, err)
		if len(got) != 2 || string(got[0].DER) != "lsc" || string(got[1].DER) != "mic" {
			t.Fatalf("records of %s: %+v, want lsc (newest) and mic once each", a.Name, got)
		}
		if d := diffTime("FetchedAt", got[0].FetchedAt, at(3*time.Hour)); d != "" {
			t.Error(d)
		}
		if other, _ := s.ListFetchedCertificates(t.Context(), b.Name); len(other) != 1 {
			t.Errorf("records of %s: %d, want 1", b.Name, len(other))
		}
	})

	t.Run("unknown-device-fails", func(t *testing.T) {
		s := open.fresh(t)
		err := s.SaveFetchedCertificate(t.Context(), device.FetchedCertificate{Device: "SEP00000000FFFF", Type: "LSC", FetchedAt: t0})
		if err == nil {
			t.Fatal("SaveFetchedCertificate for an unknown device: err = nil")
		}
	})
}

// runStale covers FailStaleAttempts.
func runStale(t *testing.T, open opener) {
	t.Run("closes-old-open-attempts", func(t *testing.T) {
		s := open.fresh(t)
		const reason = device.ReasonServerRestart
		cutoff := at(10 * time.Hour)
		stuck := newDevice("SEP000000000001") // install, in progress since before cutoff
		idle := newDevice("SEP000000000002")  // no operation, open attempt before cutoff
		idle.Operation, idle.Status = device.OpNone, device.StatusNone
		fresh := newDevice("SEP000000000003") // in progress since after cutoff
		done := newDevice("SEP000000000004")  // old attempt, finished
		create(t, s, stuck, idle, fresh, done)

		stuckID := start(t, s, device.Attempt{Device: stuck.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
		idleID := start(t, s, device.Attempt{Device: idle.Name, Operation: device.OpNone, StartedAt: at(2 * time.Hour)})
		freshID := start(t, s, device.Attempt{Device: fresh.Name, Operation: device.OpInstall, StartedAt: at(11 * time.Hour)})
		doneID := start(t, s, device.Attempt{Device: done.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
		doneOutcome := device.Outcome{AttemptID: doneID, Device: done.Name, FinishedAt: at(time.Hour + time.Minute),
			Result: device.FailedStatus(device.OpInstall, device.ReasonCommFailure)}
		must(t, s.FinishAttempt(t.Context(), doneOutcome))

		before := time.Now().Add(-time.Second)
		n, err := s.FailStaleAttempts(t.Context(), device.StaleQuery{StartedBefore: cutoff}, reason)
		must(t, err)
		if n != 2 {
			t.Errorf("closed %d attempts, want 2", n)
		}

		failed := device.FailedStatus(device.OpInstall, reason)
		if got := get(t, s, stuck.Name).Status; got != failed {
			t.Errorf("stuck device status = %q, want %q", got, failed)
		}
		a := attempts(t, s, stuck.Name, 0)[0]
		if a.ID != stuckID || a.Result != failed || a.Reason != reason || a.FinishedAt.IsZero() || a.FinishedAt.Before(before) {
			t.Errorf("stuck attempt = %+v, want closed now with %q", a, failed)
		}

		checkDevice(t, get(t, s, idle.Name), idle)
		a = attempts(t, s, idle.Name, 0)[0]
		if a.ID != idleID || a.FinishedAt.IsZero() || a.Result != device.FailedStatus(device.OpNone, reason) || a.Reason != reason {
			t.Errorf("idle attempt = %+v, want closed with %q", a, device.FailedStatus(device.OpNone, reason))
		}

		if got := get(t, s, fresh.Name).Status; got != device.StatusInProgress {
			t.Errorf("fresh device status = %q, want %q", got, device.StatusInProgress)
		}
		a = attempts(t, s, fresh.Name, 0)[0]
		if a.ID != freshID || !a.FinishedAt.IsZero() || a.Result != "" {
			t.Errorf("fresh attempt = %+v, want still open", a)
		}

		if got := get(t, s, done.Name).Status; got != doneOutcome.Result {
			t.Errorf("done device status = %q, want %q", got, doneOutcome.Result)
		}
		a = attempts(t, s, done.Name, 0)[0]
		if d := diffTime("FinishedAt", a.FinishedAt, doneOutcome.FinishedAt); d != "" || a.Result != doneOutcome.Result {
			t.Errorf("done attempt changed: %+v", a)
		}

		n, err = s.FailStaleAttempts(t.Context(), device.StaleQuery{StartedBefore: cutoff}, reason)
		must(t, err)
		if n != 0 {
			t.Errorf("second call closed %d attempts, want 0", n)
		}
	})

	// A claim's recorded deadline bounds its attempt, not StartedBefore:
	// a session started under a longer key_generation_max_time than the
	// sweeper's stays open until its own deadline.
	t.Run("deadline-bounds-its-attempt", func(t *testing.T) {
		s := open.fresh(t)
		const reason = device.ReasonCommFailure
		overdue := newDevice("SEP000000000011")    // deadline before OverdueAt
		long := newDevice("SEP000000000012")       // started long ago, deadline after OverdueAt
		noDeadline := newDevice("SEP000000000013") // started before StartedBefore, no deadline
		young := newDevice("SEP000000000014")      // no deadline, started after StartedBefore
		create(t, s, overdue, long, noDeadline, young)
		start(t, s, device.Attempt{Device: overdue.Name, Operation: device.OpInstall, StartedAt: at(9 * time.Hour), Deadline: at(9*time.Hour + 30*time.Minute)})
		start(t, s, device.Attempt{Device: long.Name, Operation: device.OpInstall, StartedAt: at(time.Hour), Deadline: at(12 * time.Hour)})
		start(t, s, device.Attempt{Device: noDeadline.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
		start(t, s, device.Attempt{Device: young.Name, Operation: device.OpInstall, StartedAt: at(9 * time.Hour)})

		// Only the deadline: the attempts without one are left alone.
		n, err := s.FailStaleAttempts(t.Context(), device.StaleQuery{OverdueAt: at(10 * time.Hour)}, reason)
		must(t, err)
		if n != 1 {
			t.Errorf("OverdueAt alone closed %d attempts, want 1", n)
		}
		// Both: the deadline where recorded, StartedBefore elsewhere.
		n, err = s.FailStaleAttempts(t.Context(), device.StaleQuery{StartedBefore: at(5 * time.Hour), OverdueAt: at(10 * time.Hour)}, reason)
		must(t, err)
		if n != 1 {
			t.Errorf("OverdueAt and StartedBefore closed %d attempts, want 1", n)
		}
		want := map[string]bool{overdue.Name: true, long.Name: false, noDeadline.Name: true, young.Name: false}
		for name, closed := range want {
			a := attempts(t, s, name, 0)[0]
			if got := !a.FinishedAt.IsZero(); got != closed {
				t.Errorf("attempt of %s closed = %v, want %v (%+v)", name, got, closed, a)
			}
		}
		// Past its own deadline, the long session's attempt goes too.
		n, err = s.FailStaleAttempts(t.Context(), device.StaleQuery{StartedBefore: at(5 * time.Hour), OverdueAt: at(13 * time.Hour)}, reason)
		must(t, err)
		if n != 1 {
			t.Errorf("after the long deadline: closed %d attempts, want 1", n)
		}
	})

	t.Run("nothing-open", func(t *testing.T) {
		s := open.fresh(t)
		n, err := s.FailStaleAttempts(t.Context(), device.StaleQuery{StartedBefore: time.Now()}, device.ReasonServerRestart)
		must(t, err)
		if n != 0 {
			t.Errorf("closed %d attempts, want 0", n)
		}
	})
}

// runConcurrency runs whole phone sessions on many devices at once.
func runConcurrency(t *testing.T, open opener) {
	t.Run("parallel-sessions", func(t *testing.T) {
		s := open.fresh(t)
		const n = 20
		var ds []device.Device
		for i := range n {
			ds = append(ds, newDevice(fmt.Sprintf("SEP0000000000%02d", i)))
		}
		if _, err := ImportDevices(s, t.Context(), ds); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, d := range ds {
			wg.Go(func() {
				id, err := StartAttempt(s, ctx, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
				if err != nil {
					errs <- fmt.Errorf("%s: start: %w", d.Name, err)
					return
				}
				if _, err := s.GetDevice(ctx, d.Name); err != nil {
					errs <- fmt.Errorf("%s: get: %w", d.Name, err)
					return
				}
				serial := fmt.Sprintf("C0%02X", i)
				if err := s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: d.Name, AttemptID: id, IssuedAt: at(time.Hour)}); err != nil {
					errs <- fmt.Errorf("%s: record: %w", d.Name, err)
					return
				}
				if _, err := s.ListDevices(ctx, device.Query{Filters: []device.Filter{f(device.FieldStatus, device.MatchEquals, device.StatusInProgress)}}); err != nil {
					errs <- fmt.Errorf("%s: list: %w", d.Name, err)
					return
				}
				o := device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: at(2 * time.Hour),
					Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: newCert(serial, at(9000*time.Hour))}
				if err := s.FinishAttempt(ctx, o); err != nil {
					errs <- fmt.Errorf("%s: finish: %w", d.Name, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, d := range ds {
			got := get(t, s, d.Name)
			if got.LSC == nil || got.Operation != device.OpNone || got.Status != device.SuccessStatus(device.OpInstall) {
				t.Errorf("device %s after its session: %+v", d.Name, got)
			}
		}
		all, err := s.ListIssuances(t.Context(), "")
		must(t, err)
		if len(all) != n {
			t.Errorf("%d issuances, want %d", len(all), n)
		}
	})
}
