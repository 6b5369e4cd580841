package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/storetest"
)

// manyDevices returns n devices with an install pending.
func manyDevices(n int) []device.Device {
	now := time.Now()
	ds := make([]device.Device, n)
	for i := range ds {
		ds[i] = device.Device{
			Name: fmt.Sprintf("SEP%012X", i), Description: "bulk", SecurityProfile: device.Encrypted,
			AuthMode: device.AuthString, AuthString: "1234", Operation: device.OpInstall, Key: device.RSA2048,
			Status: device.StatusPending, CreatedAt: now, UpdatedAt: now,
		}
	}
	return ds
}

// BenchmarkGetDevice reads one device by name: the lookup of every phone
// session's authentication.
func BenchmarkGetDevice(b *testing.B) {
	s, _ := openTemp(b, Options{})
	defer s.Close()
	ctx := context.Background()
	if _, err := storetest.ImportDevices(s, ctx, manyDevices(1000)); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if _, err := s.GetDevice(ctx, fmt.Sprintf("SEP%012X", i%1000)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnrollmentWrites runs the writes of one enrolment (StartAttempt,
// RecordIssuance, FinishAttempt) per op, from 64×GOMAXPROCS goroutines, as
// the SQLite benchmark of the same name does: each a SERIALIZABLE
// transaction of its own on the pool, with pools of 4 (pgxpool's default
// here) and 16 connections.
func BenchmarkEnrollmentWrites(b *testing.B) {
	for _, conns := range []int32{4, 16} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchmarkEnrollmentWrites(b, conns) })
	}
}

func benchmarkEnrollmentWrites(b *testing.B, conns int32) {
	s, _ := openTemp(b, Options{MaxConns: conns})
	defer s.Close()
	ctx := context.Background()
	const devices = 1000
	if _, err := storetest.ImportDevices(s, ctx, manyDevices(devices)); err != nil {
		b.Fatal(err)
	}
	der := make([]byte, 1200)
	now := time.Now()
	var n atomic.Int64
	b.ResetTimer()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			name := fmt.Sprintf("SEP%012X", i%devices)
			id, err := storetest.StartAttempt(s, ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now})
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
	b.ReportMetric(float64(s.Retries())/float64(b.N), "retries/op")
}
