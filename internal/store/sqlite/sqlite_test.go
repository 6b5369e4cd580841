package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/storetest"
)

// openTemp opens a store on a new file in a temporary directory. The caller
// closes it.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capf.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s, path
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) device.Store {
		s, _ := openTemp(t)
		return s
	})
}

// migrationCount returns how many rows schema_migrations holds.
func migrationCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	s, path := openTemp(t)
	d := device.Device{Name: "SEP001122334455", Operation: device.OpNone, CreatedAt: time.Now()}
	if err := s.CreateDevice(t.Context(), d, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if n := migrationCount(t, s); n != SchemaVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", n, SchemaVersion())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetDevice(t.Context(), d.Name); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	if n := migrationCount(t, s); n != SchemaVersion() {
		t.Errorf("after reopen schema_migrations has %d rows, want %d", n, SchemaVersion())
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	s, path := openTemp(t)
	future := SchemaVersion() + 1
	if _, err := s.write.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from-the-future', 0)`, future); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), path, Options{})
	if err == nil {
		t.Fatal("Open of a newer schema: err = nil")
	}
	for _, want := range []string{fmt.Sprint(future), "newer", "upgrade"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to mention %q", err, want)
		}
	}
}

func TestOpenBadPath(t *testing.T) {
	cases := []struct {
		name string
		path string
		kind error
	}{
		{"empty", "", fault.ErrInvalid},
		{"memory", ":memory:", fault.ErrInvalid},
		{"missing-directory", filepath.Join(t.TempDir(), "no", "such", "capf.db"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.Context(), c.path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q): err = nil", c.path)
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Errorf("Open(%q) = %v, want %v", c.path, err, c.kind)
			}
		})
	}
}

func TestOddFileName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?name#50%.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateDevice(t.Context(), device.Device{Name: "CSFODD"}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

func TestTwoStoresOneFile(t *testing.T) {
	server, path := openTemp(t)
	defer server.Close()
	cli, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w, s := range []*Store{server, cli} {
		wg.Go(func() {
			for i := range 50 {
				name := fmt.Sprintf("CSFW%dN%02d", w, i)
				if err := s.CreateDevice(ctx, device.Device{Name: name, Operation: device.OpInstall}, device.AuditEvent{}); err != nil {
					errs <- err
					return
				}
				id, err := startAttempt(s, ctx, device.Attempt{Device: name, StartedAt: time.Now()})
				if err != nil {
					errs <- err
					return
				}
				if err := s.RecordIssuance(ctx, device.Issuance{Serial: fmt.Sprintf("%d%04d", w+1, i), Device: name, AttemptID: id}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range []*Store{server, cli} {
		page, err := s.ListDevices(ctx, device.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 100 {
			t.Errorf("Total = %d, want 100", page.Total)
		}
		got, err := s.GetDevice(ctx, "CSFW1N07")
		if err != nil || got.Status != device.StatusInProgress {
			t.Errorf("GetDevice = %+v, %v; want the other store's write", got, err)
		}
	}
}

func TestFilePermissions(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()
	if err := s.CreateDevice(t.Context(), device.Device{Name: "CSFPERM"}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s: %v", p, err)
			continue
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	cases := []struct {
		db     string
		pragma string
		want   string
	}{
		{"write", "journal_mode", "wal"},
		{"write", "synchronous", "2"},
		{"write", "foreign_keys", "1"},
		{"write", "busy_timeout", "10000"},
		{"write", "temp_store", "2"}, // MEMORY: the savepoints' sub-journal never spills to a file
		{"read", "journal_mode", "wal"},
		{"read", "query_only", "1"},
		{"read", "busy_timeout", "10000"},
	}
	for _, c := range cases {
		t.Run(c.db+"/"+c.pragma, func(t *testing.T) {
			db := s.write
			if c.db == "read" {
				db = s.read
			}
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s = %s, want %s", c.pragma, got, c.want)
			}
		})
	}
	if _, err := s.read.ExecContext(t.Context(), `DELETE FROM devices`); err == nil {
		t.Error("a reader connection could write")
	}
}

// crashEnv names the database a child test process writes to before it
// kills itself. The child appends a line to the file named by the database
// and crashReportSuffix for each write that returned nil.
const (
	crashEnv          = "CAPF_SQLITE_CRASH_DB"
	crashReportSuffix = ".committed"
	crashDevices      = 64 // writers in the child, one device each
	crashReported     = 600
)

// TestCrashChild is the child of TestSurvivesKill: it writes, then SIGKILLs
// itself without closing the store, while crashDevices goroutines are in
// the middle of group-committed enrollments.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestSurvivesKill")
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateDevice(ctx, device.Device{Name: "SEP00000000DEAD", Operation: device.OpInstall}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIssuance(ctx, device.Issuance{Serial: "DEAD", Device: "SEP00000000DEAD"}); err != nil {
		t.Fatal(err)
	}

	report, err := os.OpenFile(path+crashReportSuffix, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		reported int
		enough   = make(chan struct{})
	)
	// committed reports a write that returned nil; the kernel keeps the
	// line when the process dies.
	committed := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(report, format+"\n", args...); err != nil {
			panic(err)
		}
		if reported++; reported == crashReported {
			close(enough)
		}
	}
	if _, err := importDevices(s, ctx, manyDevices(crashDevices)); err != nil {
		t.Fatal(err)
	}
	for w := range crashDevices {
		go func() {
			name := fmt.Sprintf("SEP%012X", w)
			for i := 0; ; i++ {
				id, err := startAttempt(s, ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: time.Now()})
				if err != nil {
					panic(err)
				}
				committed("A %d %s", id, name)
				serial := fmt.Sprintf("%02X%06X", w, i)
				if err := s.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name, AttemptID: id}); err != nil {
					panic(err)
				}
				committed("I %s %s", serial, name)
				if err := s.FinishAttempt(ctx, device.Outcome{AttemptID: id, Device: name, FinishedAt: time.Now(),
					Result: device.SuccessStatus(device.OpInstall), Completed: true}); err != nil {
					panic(err)
				}
				committed("F %d %s", id, name)
			}
		}()
	}
	<-enough // the writers go on: the kill catches batches in flight
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func TestSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "capf.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetDevice(t.Context(), "SEP00000000DEAD"); err != nil {
		t.Errorf("device written before the kill: %v", err)
	}
	is, err := s.ListIssuances(t.Context(), "SEP00000000DEAD")
	if err != nil || len(is) != 1 {
		t.Errorf("issuance written before the kill: %v, %v", is, err)
	}

	// Every write the child saw return nil is there.
	report, err := os.ReadFile(path + crashReportSuffix)
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[string]map[int64]device.Attempt{}
	for i := range crashDevices {
		name := fmt.Sprintf("SEP%012X", i)
		as, err := s.ListAttempts(t.Context(), name, 0)
		if err != nil {
			t.Fatal(err)
		}
		attempts[name] = map[int64]device.Attempt{}
		for _, a := range as {
			attempts[name][a.ID] = a
		}
	}
	serials := map[string]string{}
	all, err := s.ListIssuances(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range all {
		serials[is.Serial] = is.Device
	}
	lines := strings.Split(strings.TrimSuffix(string(report), "\n"), "\n")
	if len(lines) < crashReported {
		t.Fatalf("the child reported %d writes, want at least %d", len(lines), crashReported)
	}
	for _, line := range lines {
		var kind, key, name string
		if _, err := fmt.Sscan(line, &kind, &key, &name); err != nil {
			t.Fatalf("report line %q: %v", line, err)
		}
		var id int64
		if kind != "I" {
			if _, err := fmt.Sscan(key, &id); err != nil {
				t.Fatalf("report line %q: %v", line, err)
			}
		}
		a, found := attempts[name][id]
		switch {
		case kind == "A" && !found:
			t.Errorf("attempt %d of %s, committed before the kill, is missing", id, name)
		case kind == "I" && serials[key] != name:
			t.Errorf("issuance %s of %s, committed before the kill, is missing", key, name)
		case kind == "F" && (!found || a.FinishedAt.IsZero()):
			t.Errorf("attempt %d of %s, finished before the kill, is not finished", id, name)
		}
	}
	var check string
	if err := s.read.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
	t.Logf("%d writes reported committed before the kill; %d issuances found", len(lines), len(all))
}

// TestImport10k imports 10,000 devices in one transaction. How fast is
// measured by BenchmarkImport10k (docs/performance.md), not here: a timed
// test flakes on a busy machine and under the race detector.
func TestImport10k(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, _ := openTemp(t)
	defer s.Close()
	ds := manyDevices(10000)
	start := time.Now()
	counts, err := importDevices(s, t.Context(), ds)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if counts.Created != 10000 {
		t.Errorf("created %d, want 10000", counts.Created)
	}
	if page, err := s.ListDevices(t.Context(), device.Query{Limit: 1}); err != nil || page.Total != 10000 {
		t.Errorf("listed %d devices, %v; want 10000", page.Total, err)
	}
	t.Logf("imported 10,000 devices in %v", elapsed)
}

// manyDevices returns n distinct devices.
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

func BenchmarkRecordIssuance(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateDevice(ctx, device.Device{Name: "SEP001122334455"}, device.AuditEvent{}); err != nil {
		b.Fatal(err)
	}
	der := make([]byte, 1200)
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		is := device.Issuance{Serial: fmt.Sprintf("%016X", i), Device: "SEP001122334455", IssuedAt: now,
			NotBefore: now, NotAfter: now.AddDate(5, 0, 0), DER: der}
		if err := s.RecordIssuance(ctx, is); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImport10k(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ds := manyDevices(10000)
	ctx := context.Background()
	for b.Loop() {
		if _, err := importDevices(s, ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetDevice(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	if _, err := importDevices(s, ctx, manyDevices(1000)); err != nil {
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

// TestHistoryBounded: a flood of failed attempts keeps only the newest
// HistoryLimit rows of a device, while AttemptsTotal counts them all.
func TestHistoryBounded(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), Options{HistoryLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := "SEP001122334455"
	if err := s.CreateDevice(t.Context(), device.Device{Name: name, Operation: device.OpInstall}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		at := base.Add(time.Duration(i) * time.Second)
		a := device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: at, FinishedAt: at, Result: "failed", Reason: fmt.Sprint(i)}
		if _, err := s.RecordAuthFailure(t.Context(), device.AuthFailure{Attempt: a}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.StartAttempt(t.Context(), device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	as, err := s.ListAttempts(t.Context(), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 6 || as[0].ID != c.AttemptID || as[1].Reason != "39" || as[5].Reason != "35" {
		t.Errorf("history = %d rows (newest %+v), want the open attempt and the newest 5 failures", len(as), as[:1])
	}
	if d, _ := s.GetDevice(t.Context(), name); d.AttemptsTotal != 41 {
		t.Errorf("AttemptsTotal = %d, want 41", d.AttemptsTotal)
	}
}

func TestSystemContract(t *testing.T) {
	storetest.RunSystem(t, func(t *testing.T) storetest.SystemStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestLeasesContract(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) storetest.LeaseStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestClusterContract(t *testing.T) {
	storetest.RunCluster(t, func(t *testing.T) storetest.ClusterStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestAddressGuessesContract(t *testing.T) {
	storetest.RunAddressGuesses(t, func(t *testing.T) storetest.GuessStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestFleetParametersContract(t *testing.T) {
	paths := map[storetest.SystemStore]string{}
	storetest.RunFleetParameters(t, storetest.FleetBackend{
		Open: func(t *testing.T) storetest.SystemStore {
			s, path := openTemp(t)
			paths[s] = path
			return s
		},
		BreakAudit: func(t *testing.T, s storetest.SystemStore) {
			db, err := sql.Open("sqlite", paths[s])
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events
				BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END`); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestKeysContract(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) storetest.KeysStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestLSCContract(t *testing.T) {
	storetest.RunLSC(t, func(t *testing.T) storetest.LSCStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestCASetContract(t *testing.T) {
	storetest.RunCASet(t, func(t *testing.T) storetest.CASetStore {
		s, _ := openTemp(t)
		return s
	})
}

// TestOpenAttemptQueriesUseIndex: every query of the open attempts reads
// the partial index of open attempts, never the whole history, so the
// enrolment path can keep a single index of them (migration
// one_open_index).
func TestOpenAttemptQueriesUseIndex(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	for _, tc := range []struct{ name, query string }{
		{"count", `SELECT count(*) FROM attempts WHERE finished_at IS NULL`},
		{"stale", `SELECT id, device, operation FROM attempts WHERE finished_at IS NULL AND (started_at IS NULL OR started_at < 1) AND node = 'n' ORDER BY started_at, id`},
		{"stale-dead", `SELECT id, device, operation FROM attempts WHERE finished_at IS NULL AND node IN (SELECT id FROM nodes WHERE expires_at <= 1) ORDER BY started_at, id`},
		{"device", `SELECT id, node FROM attempts WHERE device = 'SEP1' AND finished_at IS NULL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := s.read.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(plan, "; ")
			if !strings.Contains(joined, "attempts USING") || !strings.Contains(joined, "attempts_one_open") {
				t.Errorf("plan %q: want the attempts read through attempts_one_open", joined)
			}
		})
	}
	var n int
	if err := s.read.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'attempts_open'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("attempts_open: %d (%v), want dropped", n, err)
	}
}
