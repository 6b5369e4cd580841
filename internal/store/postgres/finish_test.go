package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// TestFinishPrunesOnlyWhenItCloses: FinishAttempt's one statement prunes a
// failed operation's history to HistoryLimit rows, and a finish refused
// (another node's attempt) changes nothing — not the attempt, not the
// device, not the history, however long it has grown.
func TestFinishPrunesOnlyWhenItCloses(t *testing.T) {
	s, _ := openTemp(t, Options{HistoryLimit: 5})
	defer s.Close()
	ctx := t.Context()
	name := "SEP0011223344AA"
	if err := s.CreateDevice(ctx, device.Device{Name: name, Operation: device.OpInstall}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	claim := func(i int) int64 {
		t.Helper()
		c, err := s.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: base.Add(time.Duration(i) * time.Minute), Node: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		return c.AttemptID
	}
	// Completed operations do not prune: 8 closed rows, over the limit.
	for i := range 8 {
		id := claim(i)
		if err := s.FinishAttempt(ctx, device.Outcome{AttemptID: id, Device: name, Node: "n1", FinishedAt: base.Add(time.Duration(i)*time.Minute + time.Second),
			Result: device.SuccessStatus(device.OpInstall), Reason: fmt.Sprint(i), Completed: true}); err != nil {
			t.Fatal(err)
		}
	}
	open := claim(100)
	before, err := s.ListAttempts(ctx, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	devBefore, _ := s.GetDevice(ctx, name)
	failed := device.Outcome{AttemptID: open, Device: name, Node: "n2", FinishedAt: base.Add(2 * time.Hour),
		Result: device.FailedStatus(device.OpInstall, device.ReasonKeyGenTimeout), Reason: "timeout"}
	if err := s.FinishAttempt(ctx, failed); fault.KindOf(err) != fault.Conflict {
		t.Fatalf("finish by another node: err = %v, want Conflict", err)
	}
	after, _ := s.ListAttempts(ctx, name, 0)
	devAfter, _ := s.GetDevice(ctx, name)
	if len(after) != len(before) || len(after) != 9 || !after[0].FinishedAt.IsZero() {
		t.Errorf("refused finish: history %d rows (newest finished %v), want the 9 it had and the attempt open", len(after), after[0].FinishedAt)
	}
	if devAfter.Status != devBefore.Status || !devAfter.LastContact.At.Equal(devBefore.LastContact.At) || devAfter.LastContact.Outcome != devBefore.LastContact.Outcome {
		t.Errorf("refused finish changed the device: %q %+v, before %q %+v", devAfter.Status, devAfter.LastContact, devBefore.Status, devBefore.LastContact)
	}

	failed.Node = "n1"
	if err := s.FinishAttempt(ctx, failed); err != nil {
		t.Fatal(err)
	}
	after, _ = s.ListAttempts(ctx, name, 0)
	if len(after) != 5 || after[0].ID != open || after[0].FinishedAt.IsZero() || after[4].Reason != "4" {
		t.Errorf("failed finish: %d rows (newest %d, finished %v), want the newest 5 with the closed attempt first", len(after), after[0].ID, after[0].FinishedAt)
	}
	if d, _ := s.GetDevice(ctx, name); d.Status != failed.Result || d.AttemptsTotal != 9 {
		t.Errorf("device after the failed finish: status %q, attempts %d; want %q, 9", d.Status, d.AttemptsTotal, failed.Result)
	}
}
