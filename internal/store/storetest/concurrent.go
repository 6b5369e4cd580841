package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// runConcurrentFailures runs many phone sessions at once, each of which also
// makes writes that fail (a duplicate serial, an unknown attempt, an unknown
// device). A backend that shares transactions between callers must keep the
// failures to the writes that caused them.
func runConcurrentFailures(t *testing.T, open opener) {
	t.Run("parallel-sessions-with-failures", func(t *testing.T) {
		s := open.fresh(t)
		const n = 50
		var ds []device.Device
		for i := range n {
			ds = append(ds, newDevice(fmt.Sprintf("SEP0000000F%04d", i)))
		}
		if _, err := ImportDevices(s, t.Context(), ds); err != nil {
			t.Fatal(err)
		}
		taken := device.Issuance{Serial: "5EED", Device: ds[0].Name, IssuedAt: t0}
		must(t, s.RecordIssuance(t.Context(), taken))

		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 5*n)
		// expect sends an error unless err is of kind want (nil for none).
		expect := func(what string, err error, want error) {
			switch {
			case want == nil && err != nil:
				errs <- fmt.Errorf("%s: %w", what, err)
			case want != nil && !errors.Is(err, want):
				errs <- fmt.Errorf("%s: err = %v, want kind %v", what, err, want)
			}
		}
		for i, d := range ds {
			wg.Go(func() {
				id, err := StartAttempt(s, ctx, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: at(time.Hour)})
				expect(d.Name+": start", err, nil)
				_, err = StartAttempt(s, ctx, device.Attempt{Device: "SEPNO" + d.Name[3:], StartedAt: at(time.Hour)})
				expect(d.Name+": start on an unknown device", err, fault.ErrNotFound)
				err = s.RecordIssuance(ctx, device.Issuance{Serial: taken.Serial, Device: d.Name, AttemptID: id, IssuedAt: at(time.Hour)})
				expect(d.Name+": record a taken serial", err, fault.ErrConflict)
				serial := fmt.Sprintf("F0%04d", i)
				err = s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: d.Name, AttemptID: id, IssuedAt: at(time.Hour)})
				expect(d.Name+": record", err, nil)
				err = s.FinishAttempt(ctx, device.Outcome{AttemptID: id + 1_000_000, Device: d.Name, Result: "x"})
				expect(d.Name+": finish an unknown attempt", err, fault.ErrNotFound)
				err = s.FinishAttempt(ctx, device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: at(2 * time.Hour),
					Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: newCert(serial, at(9000*time.Hour))})
				expect(d.Name+": finish", err, nil)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		all, err := s.ListIssuances(context.Background(), "")
		must(t, err)
		if len(all) != n+1 {
			t.Errorf("%d issuances, want %d", len(all), n+1)
		}
		for _, is := range all {
			if is.Serial == taken.Serial && is.Device != taken.Device {
				t.Errorf("serial %s now belongs to %q, want %q", is.Serial, is.Device, taken.Device)
			}
		}
		for i, d := range ds {
			got := get(t, s, d.Name)
			if got.LSC == nil || got.LSC.Serial != fmt.Sprintf("F0%04d", i) || got.Status != device.SuccessStatus(device.OpInstall) {
				t.Errorf("device %s after its session: status %q, LSC %+v", d.Name, got.Status, got.LSC)
			}
			as, err := s.ListAttempts(t.Context(), d.Name, 0)
			must(t, err)
			if len(as) != 1 || as[0].FinishedAt.IsZero() {
				t.Errorf("attempts of %s = %+v, want one finished", d.Name, as)
			}
		}
	})
}
