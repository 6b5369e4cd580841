package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/storetest"
)

// openTempWith opens a store with opts on a new file and closes it when t
// ends.
func openTempWith(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capf.db")
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestContractWithoutBatching(t *testing.T) {
	storetest.Run(t, func(t *testing.T) device.Store {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), Options{MaxBatch: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// holdCommitter makes s's committer busy with a write that waits until the
// returned release is called, so that the writes submitted meanwhile queue
// up and go into one batch. release waits for that write to commit.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- s.submit(context.Background(), "hold", func(context.Context, *sql.Tx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			if err := <-result; err != nil {
				t.Errorf("holding write: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor fails t unless cond becomes true within a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitPending waits until n writes are queued behind the committer.
func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d queued writes", n), func() bool { return s.c.pending() == n })
}

// issuanceSerials returns the serials of every issuance in s.
func issuanceSerials(t *testing.T, s *Store) map[string]string {
	t.Helper()
	all, err := s.ListIssuances(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string, len(all))
	for _, is := range all {
		m[is.Serial] = is.Device
	}
	return m
}

func TestGroupCommitConcurrentEnrollments(t *testing.T) {
	s, _ := openTempWith(t, Options{})
	ctx := t.Context()
	const n = 200
	ds := manyDevices(n)
	if _, err := importDevices(s, ctx, ds); err != nil {
		t.Fatal(err)
	}
	batches0, ops0 := s.c.batches.Load(), s.c.ops.Load()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, d := range ds {
		wg.Go(func() {
			id, err := startAttempt(s, ctx, device.Attempt{Device: d.Name, Operation: device.OpInstall, StartedAt: now})
			if err != nil {
				errs <- fmt.Errorf("%s: start: %w", d.Name, err)
				return
			}
			serial := fmt.Sprintf("C%05X", i)
			if err := s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: d.Name, AttemptID: id, IssuedAt: now}); err != nil {
				errs <- fmt.Errorf("%s: record: %w", d.Name, err)
				return
			}
			o := device.Outcome{AttemptID: id, Device: d.Name, FinishedAt: now, Result: device.SuccessStatus(device.OpInstall),
				Completed: true, SetLSC: &device.Certificate{Serial: serial, NotAfter: now.AddDate(1, 0, 0)}}
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

	if got := issuanceSerials(t, s); len(got) != n {
		t.Errorf("%d issuances, want %d", len(got), n)
	}
	for i, d := range ds {
		got, err := s.GetDevice(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.LSC == nil || got.LSC.Serial != fmt.Sprintf("C%05X", i) || got.Operation != device.OpNone ||
			got.Status != device.SuccessStatus(device.OpInstall) {
			t.Errorf("device %s after its enrollment: status %q, operation %q, LSC %+v", d.Name, got.Status, got.Operation, got.LSC)
		}
		as, err := s.ListAttempts(ctx, d.Name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].FinishedAt.IsZero() {
			t.Errorf("attempts of %s = %+v, want one finished", d.Name, as)
		}
	}
	batches, ops := s.c.batches.Load()-batches0, s.c.ops.Load()-ops0
	if ops != 3*n {
		t.Errorf("committed %d writes, want %d", ops, 3*n)
	}
	if batches >= ops {
		t.Errorf("%d writes took %d transactions: no group commit", ops, batches)
	}
	t.Logf("%d writes in %d transactions", ops, batches)
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _ := openTempWith(t, Options{})
	ctx := t.Context()
	a := device.Device{Name: "SEPAAAAAAAAAAAA", Operation: device.OpInstall, Status: device.StatusPending}
	b := device.Device{Name: "SEPBBBBBBBBBBBB", Operation: device.OpInstall, Status: device.StatusPending}
	for _, d := range []device.Device{a, b} {
		if err := s.CreateDevice(ctx, d, device.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
	}
	idA, err := startAttempt(s, ctx, device.Attempt{Device: a.Name, StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIssuance(ctx, device.Issuance{Serial: "D0B1E", Device: a.Name}); err != nil {
		t.Fatal(err)
	}

	// A write that changes the database and then fails, or panics, must
	// leave no trace.
	insertThen := func(serial string, fail func() error) txFunc {
		return func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO issuances (serial, device) VALUES (?, ?)`, serial, b.Name); err != nil {
				return err
			}
			return fail()
		}
	}
	errBoom := errors.New("boom")
	var idB int64
	cases := []struct {
		name string
		want error // nil, a fault sentinel, or errBoom
		run  func(ctx context.Context) error
	}{
		{"ok/start-attempt", nil, func(ctx context.Context) (err error) {
			idB, err = startAttempt(s, ctx, device.Attempt{Device: b.Name, StartedAt: time.Now()})
			return err
		}},
		{"ok/record-issuance", nil, func(ctx context.Context) error {
			return s.RecordIssuance(ctx, device.Issuance{Serial: "0E1", Device: b.Name})
		}},
		{"ok/finish-attempt", nil, func(ctx context.Context) error {
			return s.FinishAttempt(ctx, device.Outcome{AttemptID: idA, Device: a.Name, FinishedAt: time.Now(),
				Result: device.SuccessStatus(device.OpInstall), Completed: true})
		}},
		{"ok/save-fetched", nil, func(ctx context.Context) error {
			return s.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: b.Name, Type: "LSC", DER: []byte{1}})
		}},
		{"fail/duplicate-serial", fault.ErrConflict, func(ctx context.Context) error {
			return s.RecordIssuance(ctx, device.Issuance{Serial: "D0B1E", Device: b.Name})
		}},
		{"fail/unknown-attempt", fault.ErrNotFound, func(ctx context.Context) error {
			return s.FinishAttempt(ctx, device.Outcome{AttemptID: 999999, Device: b.Name, Result: "x"})
		}},
		{"fail/duplicate-device", fault.ErrConflict, func(ctx context.Context) error {
			return s.CreateDevice(ctx, a, device.AuditEvent{})
		}},
		{"fail/start-unknown-device", fault.ErrNotFound, func(ctx context.Context) error {
			_, err := startAttempt(s, ctx, device.Attempt{Device: "SEPNOSUCHDEVICE"})
			return err
		}},
		{"fail/fetched-unknown-device", fault.ErrNotFound, func(ctx context.Context) error {
			return s.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: "SEPNOSUCHDEVICE", Type: "LSC"})
		}},
		{"fail/after-a-write", errBoom, func(ctx context.Context) error {
			return s.submit(ctx, "write then fail", insertThen("0BAD1", func() error { return errBoom }))
		}},
		{"fail/panic-after-a-write", nil, func(ctx context.Context) error {
			err := s.submit(ctx, "write then panic", insertThen("0BAD2", func() error { panic("boom") }))
			if err == nil {
				return errors.New("a write that panicked returned nil")
			}
			return nil
		}},
	}

	release := holdCommitter(t, s)
	results := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { results[i] = c.run(ctx) })
	}
	waitPending(t, s, len(cases))
	batches0, ops0 := s.c.batches.Load(), s.c.ops.Load()
	release()
	wg.Wait()
	if got := s.c.batches.Load() - batches0; got != 2 {
		t.Errorf("the holding write and the %d queued ones took %d transactions, want 2", len(cases), got)
	}
	if got := s.c.ops.Load() - ops0; got != int64(len(cases))+1 {
		t.Errorf("the batches held %d writes, want %d", got, len(cases)+1)
	}
	for i, c := range cases {
		switch err := results[i]; {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: err = %v (kind %s), want %v", c.name, err, fault.KindOf(err), c.want)
		}
	}

	serials := issuanceSerials(t, s)
	if serials["D0B1E"] != a.Name {
		t.Errorf("issuance D0B1E belongs to %q, want %q", serials["D0B1E"], a.Name)
	}
	if _, ok := serials["0E1"]; !ok {
		t.Error("issuance 0E1 of the batch is missing")
	}
	for _, serial := range []string{"0BAD1", "0BAD2"} {
		if _, ok := serials[serial]; ok {
			t.Errorf("issuance %s of a failed write was kept", serial)
		}
	}
	as, err := s.ListAttempts(ctx, b.Name, 0)
	if err != nil || len(as) != 1 || as[0].ID != idB {
		t.Errorf("attempts of %s = %+v, %v; want attempt %d", b.Name, as, err, idB)
	}
	if got, _ := s.GetDevice(ctx, a.Name); got.Status != device.SuccessStatus(device.OpInstall) {
		t.Errorf("device %s status = %q after FinishAttempt", a.Name, got.Status)
	}
	if fcs, err := s.ListFetchedCertificates(ctx, b.Name); err != nil || len(fcs) != 1 {
		t.Errorf("fetched certificates of %s = %v, %v; want 1", b.Name, fcs, err)
	}
}

func TestGroupCommitMaxBatch(t *testing.T) {
	s, _ := openTempWith(t, Options{MaxBatch: 4})
	if err := s.CreateDevice(t.Context(), device.Device{Name: "SEP001122334455"}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	release := holdCommitter(t, s)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.RecordIssuance(t.Context(), device.Issuance{Serial: fmt.Sprint(i), Device: "SEP001122334455"}); err != nil {
				t.Error(err)
			}
		})
	}
	waitPending(t, s, 10)
	batches0 := s.c.batches.Load()
	release()
	wg.Wait()
	// The holding write, then 4 + 4 + 2.
	if got := s.c.batches.Load() - batches0; got != 4 {
		t.Errorf("%d transactions, want 4", got)
	}
}

// TestGroupCommitPace checks Options.CommitPace: a lone writer never
// waits; after a batch of more than one write, the next batch begins no
// sooner than a pace after it; once the crowd has gone, a lone write does
// not wait again.
func TestGroupCommitPace(t *testing.T) {
	const pace = 20 * time.Millisecond
	s, _ := openTempWith(t, Options{CommitPace: pace})
	ctx := t.Context()
	const name = "SEP001122334455"
	if err := s.CreateDevice(ctx, device.Device{Name: name}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	type batch struct {
		at time.Time
		n  int
	}
	var mu sync.Mutex
	var batches []batch
	began := func(at time.Time, n int) {
		mu.Lock()
		batches = append(batches, batch{at, n})
		mu.Unlock()
	}
	s.c.began.Store(&began)
	serial := 0
	record := func() {
		serial++
		if err := s.RecordIssuance(ctx, device.Issuance{Serial: fmt.Sprintf("%04X", serial), Device: name}); err != nil {
			t.Fatal(err)
		}
	}

	for range 10 {
		record()
	}
	if got := s.c.paced.Load(); got != 0 {
		t.Fatalf("a lone writer's 10 writes waited %d times for the pace", got)
	}

	// A crowd: ten writes queued behind a held one commit as one batch.
	release := holdCommitter(t, s)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.RecordIssuance(ctx, device.Issuance{Serial: fmt.Sprintf("B%04X", i), Device: name}); err != nil {
				t.Error(err)
			}
		})
	}
	waitPending(t, s, 10)
	release()
	wg.Wait()
	record() // right after the crowd's batch: paced
	record() // after a batch of one, within the crowd's span: paced
	if got := s.c.paced.Load(); got < 2 {
		t.Errorf("the two writes right after a crowd waited %d times for the pace, want 2 or more", got)
	}
	mu.Lock()
	last := batches[len(batches)-3:]
	mu.Unlock()
	if last[0].n != 10 || last[1].n != 1 || last[2].n != 1 {
		t.Fatalf("the last batches held %d, %d, %d writes, want 10, 1, 1", last[0].n, last[1].n, last[2].n)
	}
	for i := 1; i < len(last); i++ {
		if gap := last[i].at.Sub(last[i-1].at); gap < pace {
			t.Errorf("batch %d began %v after the one before it, less than the pace %v", i, gap, pace)
		}
	}

	// The crowd has gone: a lone write does not wait.
	time.Sleep((crowdSpan + 1) * pace)
	paced := s.c.paced.Load()
	record()
	if got := s.c.paced.Load(); got != paced {
		t.Errorf("a lone write after the crowd had gone waited for the pace")
	}
}

// TestGroupCommitPaceEndsEarly checks that a pace ends as soon as
// paceEnough writes are queued: writers that all wait on the committer are
// not held up for the rest of it.
func TestGroupCommitPaceEndsEarly(t *testing.T) {
	s, _ := openTempWith(t, Options{CommitPace: time.Minute})
	ctx := t.Context()
	const name = "SEP001122334455"
	if err := s.CreateDevice(ctx, device.Device{Name: name}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	sizes := make(chan int, 8)
	began := func(_ time.Time, n int) { sizes <- n }
	write := func(serial string) {
		if err := s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name}); err != nil {
			t.Error(err)
		}
	}
	// A batch of two starts the pace.
	release := holdCommitter(t, s)
	var wg sync.WaitGroup
	wg.Go(func() { write("A1") })
	wg.Go(func() { write("A2") })
	waitPending(t, s, 2)
	s.c.began.Store(&began)
	release()
	wg.Wait()
	if n := <-sizes; n != 2 {
		t.Fatalf("the crowd's batch held %d writes, want 2", n)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range paceEnough {
			wg.Go(func() { write(fmt.Sprintf("B%02d", i)) })
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // the pace is a minute
		t.Fatalf("%d queued writes waited for the rest of the pace", paceEnough)
	}
	if n := <-sizes; n != paceEnough {
		t.Errorf("the batch after the pace held %d writes, want %d", n, paceEnough)
	}
	if got := s.c.paced.Load(); got < 1 {
		t.Errorf("the committer never paced")
	}
}

// TestCommitPaceOption checks how Open reads Options.CommitPace.
func TestCommitPaceOption(t *testing.T) {
	for _, tc := range []struct {
		opt, want time.Duration
	}{
		{0, DefaultCommitPace},
		{-1, 0},
		{time.Millisecond, time.Millisecond},
	} {
		s, _ := openTempWith(t, Options{CommitPace: tc.opt})
		if s.c.pace != tc.want {
			t.Errorf("CommitPace %v: the committer paces %v, want %v", tc.opt, s.c.pace, tc.want)
		}
	}
}

func TestGroupCommitContext(t *testing.T) {
	const name = "SEP001122334455"
	open := func(t *testing.T) *Store {
		s, _ := openTempWith(t, Options{})
		if err := s.CreateDevice(t.Context(), device.Device{Name: name}, device.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	issued := func(t *testing.T, s *Store, serial string) bool {
		t.Helper()
		_, ok := issuanceSerials(t, s)[serial]
		return ok
	}

	t.Run("cancelled-before-submit", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.RecordIssuance(ctx, device.Issuance{Serial: "01", Device: name})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if s.c.pending() != 0 || issued(t, s, "01") {
			t.Error("a write with a cancelled context was queued or written")
		}
	})

	t.Run("cancelled-while-queued", func(t *testing.T) {
		s := open(t)
		release := holdCommitter(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		result := make(chan error, 1)
		go func() { result <- s.RecordIssuance(ctx, device.Issuance{Serial: "02", Device: name}) }()
		waitPending(t, s, 1)
		cancel()
		// The caller returns at once, while the committer is still busy.
		select {
		case err := <-result:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a queued write did not return when its context was cancelled")
		}
		release()
		waitPending(t, s, 0)
		// A write after it goes through the committer, so that the
		// abandoned one had its chance to be (wrongly) written.
		if err := s.RecordIssuance(t.Context(), device.Issuance{Serial: "03", Device: name}); err != nil {
			t.Fatal(err)
		}
		if issued(t, s, "02") {
			t.Error("a write abandoned while queued was written")
		}
	})

	t.Run("deadline-while-queued", func(t *testing.T) {
		s := open(t)
		release := holdCommitter(t, s)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		err := s.RecordIssuance(ctx, device.Issuance{Serial: "04", Device: name})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		release()
		if err := s.RecordIssuance(t.Context(), device.Issuance{Serial: "05", Device: name}); err != nil {
			t.Fatal(err)
		}
		if issued(t, s, "04") {
			t.Error("a write that timed out while queued was written")
		}
	})

	t.Run("cancelled-after-taken", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		running, unblock := make(chan struct{}), make(chan struct{})
		result := make(chan error, 1)
		go func() {
			result <- s.submit(ctx, "taken", func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO issuances (serial, device) VALUES ('06', ?)`, name); err != nil {
					return err
				}
				close(running)
				<-unblock
				return nil
			})
		}()
		<-running
		cancel()
		select {
		case err := <-result:
			t.Fatalf("a taken write returned before its commit: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(unblock)
		if err := <-result; err != nil {
			t.Errorf("a taken write that committed returned %v", err)
		}
		if !issued(t, s, "06") {
			t.Error("the taken write is missing")
		}
	})
}

func TestCloseDrainsQueuedWrites(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "capf.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const name = "SEP001122334455"
	if err := s.CreateDevice(t.Context(), device.Device{Name: name}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	release := holdCommitter(t, s)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.RecordIssuance(t.Context(), device.Issuance{Serial: fmt.Sprintf("%02X", i), Device: name}); err != nil {
				t.Errorf("a write queued before Close: %v", err)
			}
		})
	}
	waitPending(t, s, n)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to stop accepting writes", func() bool {
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		return s.c.closed
	})
	err = s.RecordIssuance(t.Context(), device.Issuance{Serial: "LATE", Device: name})
	if !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("a write during Close: err = %v, want kind unavailable", err)
	}
	release()
	wg.Wait()
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-s.c.exited:
	default:
		t.Error("the committer still runs after Close")
	}
	if err := s.DeleteDevice(t.Context(), name, device.AuditEvent{}); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("a write after Close: err = %v, want kind unavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })

	s, err = Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	serials := issuanceSerials(t, s)
	if len(serials) != n {
		t.Errorf("%d issuances after Close, want the %d queued before it", len(serials), n)
	}
	if _, ok := serials["LATE"]; ok {
		t.Error("a write refused during Close was written")
	}
}

func TestGroupCommitTransactionLost(t *testing.T) {
	s, _ := openTempWith(t, Options{})
	const name = "SEP001122334455"
	if err := s.CreateDevice(t.Context(), device.Device{Name: name}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	// lose ends the transaction under the batch, as SQLite does itself on
	// a full disk or an I/O error.
	errBoom := errors.New("boom")
	lose := func(fail error) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			return s.submit(ctx, "lose the transaction", func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
					return err
				}
				return fail
			})
		}
	}
	record := func(serial string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			return s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name})
		}
	}
	for _, c := range []struct {
		name string
		lose func(ctx context.Context) error
		want error // of the write that loses the transaction
	}{
		{"failing-write", lose(errBoom), errBoom},
		{"succeeding-write", lose(nil), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := issuanceSerials(t, s)
			release := holdCommitter(t, s)
			// Queued one after the other, so that the batch runs them in
			// this order.
			writes := []func(ctx context.Context) error{record(c.name + "-1"), c.lose, record(c.name + "-2")}
			results := make([]error, len(writes))
			var wg sync.WaitGroup
			for i, w := range writes {
				wg.Go(func() { results[i] = w(t.Context()) })
				waitPending(t, s, i+1)
			}
			release()
			wg.Wait()
			for i, err := range results {
				if err == nil {
					t.Errorf("write %d of the lost transaction returned nil", i)
				}
			}
			if c.want != nil && !errors.Is(results[1], c.want) {
				t.Errorf("the write that lost the transaction: err = %v, want %v", results[1], c.want)
			}
			if after := issuanceSerials(t, s); len(after) != len(before) {
				t.Errorf("writes of a lost transaction were kept: %v", after)
			}
			if err := record(c.name + "-3")(t.Context()); err != nil {
				t.Errorf("a write after a lost transaction: %v", err)
			}
		})
	}
}
