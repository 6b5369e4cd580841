package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// runFleetLimit checks the claim's limit of open attempts
// (max_concurrent_operations across the fleet) and CountOpenAttempts.
func runFleetLimit(t *testing.T, open opener) {
	t.Run("claims-up-to-the-limit", func(t *testing.T) {
		s := open.fresh(t)
		names := []string{"SEP0000000F0001", "SEP0000000F0002", "SEP0000000F0003"}
		for _, n := range names {
			create(t, s, newDevice(n))
		}
		count := func() int {
			t.Helper()
			n, err := s.CountOpenAttempts(t.Context())
			must(t, err)
			return n
		}
		if n := count(); n != 0 {
			t.Fatalf("CountOpenAttempts of a new store = %d", n)
		}
		claim := func(name, node string) (device.Claim, error) {
			return s.StartAttempt(t.Context(), device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: at(time.Hour), Node: node, MaxOpen: 2})
		}
		c1, err := claim(names[0], "n1")
		must(t, err)
		if _, err := claim(names[1], "n2"); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 2 {
			t.Fatalf("CountOpenAttempts = %d, want 2", n)
		}
		before := get(t, s, names[2])
		_, err = claim(names[2], "n1")
		if fault.KindOf(err) != fault.Throttled {
			t.Fatalf("third claim under a limit of 2: %v, want Throttled", err)
		}
		checkDevice(t, get(t, s, names[2]), before)
		if as := attempts(t, s, names[2], 0); len(as) != 0 {
			t.Errorf("a refused claim left attempts %+v", as)
		}
		// A claim without a limit is not counted against it.
		must(t, s.FinishAttempt(t.Context(), device.Outcome{AttemptID: c1.AttemptID, Node: "n1", Device: names[0],
			FinishedAt: at(2 * time.Hour), Result: device.SuccessStatus(device.OpInstall), Completed: true}))
		if n := count(); n != 1 {
			t.Fatalf("CountOpenAttempts after a finish = %d, want 1", n)
		}
		if _, err := claim(names[2], "n1"); err != nil {
			t.Fatalf("claim after an attempt finished: %v", err)
		}
	})
	t.Run("concurrent-claims-never-exceed-the-limit", func(t *testing.T) {
		s := open.fresh(t)
		const devices, limit = 12, 3
		for i := range devices {
			create(t, s, newDevice(fmt.Sprintf("SEP0000000F1%03d", i)))
		}
		var (
			wg  sync.WaitGroup
			won atomic.Int32
		)
		for i := range devices {
			wg.Go(func() {
				_, err := s.StartAttempt(t.Context(), device.Attempt{Device: fmt.Sprintf("SEP0000000F1%03d", i), Operation: device.OpInstall,
					StartedAt: at(time.Hour), Node: fmt.Sprint("n", i%3), MaxOpen: limit})
				switch {
				case err == nil:
					won.Add(1)
				case fault.KindOf(err) != fault.Throttled:
					t.Errorf("claim %d: %v, want Throttled or success", i, err)
				}
			})
		}
		wg.Wait()
		if n := won.Load(); n != limit {
			t.Errorf("%d of %d concurrent claims won under a limit of %d, want exactly %d", n, devices, limit, limit)
		}
		if n, err := s.CountOpenAttempts(t.Context()); err != nil || n != limit {
			t.Errorf("CountOpenAttempts = %d, %v; want %d", n, err, limit)
		}
	})
}
