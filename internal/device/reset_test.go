package device_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// fakeNotifier records the devices it was asked to notify and fails those
// in fail.
type fakeNotifier struct {
	mu   sync.Mutex
	got  []string
	fail map[string]error
}

func (f *fakeNotifier) Notify(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, name)
	return f.fail[name]
}

func newResetService(t *testing.T, n device.Notifier) (*device.Service, device.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return now }, Notifier: n}), st
}

func TestReset(t *testing.T) {
	n := &fakeNotifier{fail: map[string]error{"SEP0000000000BB": errors.New("the PBX refused the NOTIFY to SEP0000000000BB: Unable to retrieve endpoint")}}
	svc, st := newResetService(t, n)
	for _, name := range []string{"SEP0000000000AA", "SEP0000000000BB"} {
		if _, err := svc.Add(t.Context(), admin, device.Device{Name: name}, false); err != nil {
			t.Fatal(err)
		}
	}
	r, err := svc.Reset(t.Context(), admin, "sep0000000000aa")
	if err != nil || !r.OK || r.Actor != "cli:alice" || !r.At.Equal(now) {
		t.Fatalf("Reset = %+v, %v", r, err)
	}
	r, err = svc.Reset(t.Context(), admin, "SEP0000000000BB")
	if fault.KindOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "Unable to retrieve endpoint") || r.OK {
		t.Fatalf("Reset of a refused endpoint = %+v, %v", r, err)
	}
	last, err := svc.LastReset(t.Context(), "SEP0000000000BB")
	if err != nil || last.OK || last.Reason != "the PBX refused the NOTIFY to SEP0000000000BB: Unable to retrieve endpoint" {
		t.Errorf("LastReset = %+v, %v", last, err)
	}
	if _, err := svc.Reset(t.Context(), admin, "SEP0000000000CC"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("reset of an unknown device: %v", err)
	}
	// Audited: the request before, the outcome after.
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: "SEP0000000000BB"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Action+" "+ev.Actor.String()+" "+ev.Detail)
	}
	want := []string{
		"device.reset-outcome cli:alice failed: the PBX refused the NOTIFY to SEP0000000000BB: Unable to retrieve endpoint",
		"device.reset cli:alice requested",
	}
	if strings.Join(got[:2], "|") != strings.Join(want, "|") {
		t.Errorf("audit %q, want %q first", got, want)
	}
	if len(n.got) != 2 {
		t.Errorf("notified %v", n.got)
	}
}

func TestResetWithoutNotifier(t *testing.T) {
	svc, _ := newResetService(t, nil)
	_, err := svc.Reset(t.Context(), admin, "SEP0000000000AA")
	if fault.KindOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "reset_ami_address") || !strings.Contains(err.Error(), "reset_command") {
		t.Fatalf("err %v, want one that says how to configure a notifier", err)
	}
}

func TestResetMatching(t *testing.T) {
	t.Run("ok/all", func(t *testing.T) {
		n := &fakeNotifier{fail: map[string]error{"SEP000000000002": errors.New("refused")}}
		svc, _ := newResetService(t, n)
		for i := range 4 {
			if _, err := svc.Add(t.Context(), admin, device.Device{Name: fmt.Sprintf("SEP00000000000%d", i+1)}, false); err != nil {
				t.Fatal(err)
			}
		}
		b, err := svc.ResetMatching(t.Context(), admin, device.Criteria{Name: "SEP"})
		if err != nil || b.Matched != 4 || len(b.Resets) != 4 || b.Failed() != 1 || len(b.Skipped) != 0 {
			t.Fatalf("ResetMatching = %+v, %v", b, err)
		}
	})
	t.Run("fail/too-many", func(t *testing.T) {
		n := &fakeNotifier{}
		svc, _ := newResetService(t, n)
		for i := range device.MaxBulkReset + 1 {
			if _, err := svc.Add(t.Context(), admin, device.Device{Name: fmt.Sprintf("SEP%012d", i)}, false); err != nil {
				t.Fatal(err)
			}
		}
		_, err := svc.ResetMatching(t.Context(), admin, device.Criteria{})
		if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), "matches 51 phones") {
			t.Fatalf("err %v", err)
		}
		if len(n.got) != 0 {
			t.Errorf("notified %d phones of a refused bulk", len(n.got))
		}
	})
	t.Run("stop/failures-in-a-row", func(t *testing.T) {
		fail := map[string]error{}
		svc, _ := newResetService(t, &fakeNotifier{fail: fail})
		for i := range 6 {
			name := fmt.Sprintf("SEP00000000000%d", i)
			fail[name] = errors.New("cannot connect to the AMI")
			if _, err := svc.Add(t.Context(), admin, device.Device{Name: name}, false); err != nil {
				t.Fatal(err)
			}
		}
		b, err := svc.ResetMatching(t.Context(), admin, device.Criteria{})
		if err != nil || len(b.Resets) != device.BulkResetFailureStop || len(b.Skipped) != 6-device.BulkResetFailureStop || !strings.Contains(b.Stopped, "in a row") {
			t.Fatalf("ResetMatching = %+v, %v", b, err)
		}
	})
}
