package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// BenchmarkRecordIssuanceParallel records issuances from 32×GOMAXPROCS
// goroutines at once: the fleet-upgrade shape that group commit serves.
func BenchmarkRecordIssuanceParallel(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateDevice(ctx, device.Device{Name: "SEP001122334455"}, device.AuditEvent{}); err != nil {
		b.Fatal(err)
	}
	der := make([]byte, 1200)
	now := time.Now()
	var n atomic.Int64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			is := device.Issuance{Serial: fmt.Sprintf("%016X", n.Add(1)), Device: "SEP001122334455", IssuedAt: now,
				NotBefore: now, NotAfter: now.AddDate(5, 0, 0), DER: der}
			if err := s.RecordIssuance(ctx, is); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEnrollmentWrites runs the writes of one enrollment (StartAttempt,
// RecordIssuance, FinishAttempt) per op, from 64×GOMAXPROCS goroutines.
func BenchmarkEnrollmentWrites(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	const devices = 1000
	if _, err := importDevices(s, ctx, manyDevices(devices)); err != nil {
		b.Fatal(err)
	}
	der := make([]byte, 1200)
	now := time.Now()
	var n atomic.Int64
	b.ResetTimer() // the import above is set-up, not enrolment
	defer reportCPU(b)()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			name := fmt.Sprintf("SEP%012X", i%devices)
			id, err := startAttempt(s, ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now})
			if err != nil {
				b.Error(err)
				return
			}
			serial := fmt.Sprintf("E%015X", i)
			cert := &device.Certificate{Serial: serial, Issuer: "CN=CAPF", NotBefore: now, NotAfter: now.AddDate(5, 0, 0), DER: der}
			if err := s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name, AttemptID: id, IssuedAt: now,
				NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, DER: der}); err != nil {
				b.Error(err)
				return
			}
			if err := s.FinishAttempt(ctx, device.Outcome{AttemptID: id, Device: name, FinishedAt: now,
				Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: cert}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// reportCPU reports the process's CPU time (user and system: the
// statements, the WAL writes and the fsyncs) per op as cpu-µs/op, the
// figure that a machine shared with other work disturbs least. Call it
// after the set-up and defer what it returns.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
}

// processCPU returns the process's user plus system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
