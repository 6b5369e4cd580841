package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/storetest"
)

// openTemp opens a store on a new schema of the test cluster. The caller
// closes it.
func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, dsn
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) device.Store {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestAccountsContract(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) account.Store {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestKeysContract(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) storetest.KeysStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestSystemContract(t *testing.T) {
	storetest.RunSystem(t, func(t *testing.T) storetest.SystemStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestLeasesContract(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) storetest.LeaseStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestAddressGuessesContract(t *testing.T) {
	storetest.RunAddressGuesses(t, func(t *testing.T) storetest.GuessStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestClusterContract(t *testing.T) {
	storetest.RunCluster(t, func(t *testing.T) storetest.ClusterStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}

// TestTwoNodesRaceForLease: four stores (four nodes' pools) on one
// database acquire the same expired lease at once, round after round:
// exactly one wins each round, and the term moves on by one.
func TestTwoNodesRaceForLease(t *testing.T) {
	first, dsn := openTemp(t, Options{})
	defer first.Close()
	stores := []*Store{first}
	for range 3 {
		s, err := Open(t.Context(), dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	const ttl = time.Second
	t0 := time.Now()
	for round := range 20 {
		at := t0.Add(time.Duration(round) * 2 * ttl)
		var (
			wg  sync.WaitGroup
			won = make([]bool, len(stores))
		)
		for i, s := range stores {
			wg.Go(func() {
				_, ok, err := s.AcquireLease(t.Context(), "sweeper", fmt.Sprint("node-", i), at, ttl)
				if err != nil {
					t.Errorf("round %d: node %d: %v", round, i, err)
				}
				won[i] = ok
			})
		}
		wg.Wait()
		winners := 0
		for _, w := range won {
			if w {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d nodes acquired the lease, want 1 (%v)", round, winners, won)
		}
		ls, err := first.ListLeases(t.Context())
		if err != nil || len(ls) != 1 || ls[0].Term != int64(round+1) {
			t.Fatalf("round %d: leases %+v (%v), want term %d", round, ls, err, round+1)
		}
	}
}

// schemaVersionOf returns the highest version schema_migrations records.
func schemaVersionOf(t *testing.T, s *Store) (version, rows int) {
	t.Helper()
	if err := s.pool.QueryRow(t.Context(), `SELECT COALESCE(MAX(version), 0), COUNT(*) FROM schema_migrations`).Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	return version, rows
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	s, dsn := openTemp(t, Options{})
	d := device.Device{Name: "SEP001122334455", Operation: device.OpNone, CreatedAt: time.Now()}
	if err := s.CreateDevice(t.Context(), d, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetDevice(t.Context(), d.Name); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	if v, n := schemaVersionOf(t, s); v != SchemaVersion() || n != SchemaVersion() {
		t.Errorf("schema_migrations: version %d in %d rows, want %d in %d", v, n, SchemaVersion(), SchemaVersion())
	}
}

// TestConcurrentOpenMigratesOnce: nodes starting together on an empty
// database apply each migration once (the advisory lock), and all open.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dsn, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	if v, n := schemaVersionOf(t, stores[0]); v != SchemaVersion() || n != SchemaVersion() {
		t.Errorf("schema_migrations: version %d in %d rows, want %d in %d", v, n, SchemaVersion(), SchemaVersion())
	}
}

// tableCount returns how many tables the schema of dsn holds.
func tableCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(t.Context(),
		`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFutureSchemaRefused: a database written by a newer capf is refused
// with an error that says so, and is left as it was.
func TestFutureSchemaRefused(t *testing.T) {
	s, dsn := openTemp(t, Options{})
	future := SchemaVersion() + 1
	if _, err := s.pool.Exec(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from-the-future', 0)`, future); err != nil {
		t.Fatal(err)
	}
	tables := tableCount(t, s)
	_, err := Open(t.Context(), dsn, Options{})
	if err == nil {
		t.Fatal("Open of a newer schema: err = nil")
	}
	for _, want := range []string{fmt.Sprint(future), "newer", "upgrade"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to mention %q", err, want)
		}
	}
	if v, _ := schemaVersionOf(t, s); v != future {
		t.Errorf("schema version after the refusal = %d, want %d", v, future)
	}
	if n := tableCount(t, s); n != tables {
		t.Errorf("tables after the refusal = %d, want %d", n, tables)
	}
	s.Close()
}

// TestOpenBadDatabase: a server that does not answer, a wrong password, a
// database that does not exist, a malformed DSN: each a clear error that
// names the cause and never the password, and nothing created.
func TestOpenBadDatabase(t *testing.T) {
	cluster := pgtest.ClusterDSN(t)
	// The test cluster checks the password of this role.
	role := pgtest.PasswordRole(t, "right-password")
	u, err := url.Parse(cluster)
	if err != nil {
		t.Fatal(err)
	}
	withUser := func(user, password, db string) string {
		v := *u
		v.User = url.UserPassword(user, password)
		if db != "" {
			v.Path = "/" + db
		}
		return v.String()
	}
	cases := []struct {
		name, dsn string
		kind      fault.Kind
		want      string
	}{
		{"unreachable", "postgres://capf:secret-password@127.0.0.1:1/capf?sslmode=disable&connect_timeout=5", fault.Unavailable, "unreachable"},
		{"wrong-password", withUser(role, "wrong-password", ""), fault.Unavailable, "refused the credentials"},
		{"no-such-database", withUser("capf", "", pgtest.Name("nodb")), fault.Unavailable, "does not exist"},
		{"malformed", "postgres://capf:secret-password@[::1/capf", fault.Invalid, "not valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.Context(), c.dsn, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open: err = nil")
			}
			t.Logf("Open: %v", err)
			if fault.KindOf(err) != c.kind {
				t.Errorf("kind = %v, want %v (%v)", fault.KindOf(err), c.kind, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %q, want it to say %q", err, c.want)
			}
			for _, secret := range []string{"secret-password", "wrong-password"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("err = %q shows the password", err)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"postgres://capf:s3cret@db.example:5432/capf": "postgres://capf:xxxxx@db.example:5432/capf",
		"postgres://db.example/capf?password=s3cret":  "postgres://db.example/capf?password=xxxxx",
		"host=db.example user=capf password=s3cret":   "host=db.example user=capf password=xxxxx",
		"postgres://capf@/capf?host=%2Ftmp%2Fsock":    "postgres://capf@/capf?host=%2Ftmp%2Fsock",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHistoryBounded: a flood of failed attempts keeps only the newest
// HistoryLimit rows of a device, while AttemptsTotal counts them all.
func TestHistoryBounded(t *testing.T) {
	s, _ := openTemp(t, Options{HistoryLimit: 5})
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

// TestTwoNodesRaceForOnePhone: two stores (two nodes' pools) on one
// database claim the same device at once, many times over: exactly one
// claim of each round wins, the other gets Conflict.
func TestTwoNodesRaceForOnePhone(t *testing.T) {
	a, dsn := openTemp(t, Options{})
	defer a.Close()
	b, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const name = "SEP00000000AAAA"
	if err := a.CreateDevice(t.Context(), device.Device{Name: name, Operation: device.OpInstall, Status: device.StatusPending}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		var wg sync.WaitGroup
		results := make([]error, 2)
		claims := make([]device.Claim, 2)
		for i, s := range []*Store{a, b} {
			wg.Go(func() {
				claims[i], results[i] = s.StartAttempt(t.Context(), device.Attempt{
					Device: name, Operation: device.OpInstall, StartedAt: time.Now(), Node: fmt.Sprint("node-", i)})
			})
		}
		wg.Wait()
		won := -1
		for i, err := range results {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both nodes claimed the device", round)
				}
				won = i
			case fault.KindOf(err) != fault.Conflict:
				t.Fatalf("round %d: node %d: %v, want Conflict", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither node claimed the device: %v", round, results)
		}
		if err := a.FinishAttempt(t.Context(), device.Outcome{Device: name, AttemptID: claims[won].AttemptID,
			Node: fmt.Sprint("node-", won), FinishedAt: time.Now(), Result: "failed"}); err != nil {
			t.Fatalf("round %d: finish: %v", round, err)
		}
	}
}

// TestSerializationRetryRunsClosureAgain: concurrent read-modify-writes of
// one device from two pools lose no update; the closure of a retried
// transaction runs again on the newer state, so the calls outnumber the
// updates when the writes collided.
func TestSerializationRetryRunsClosureAgain(t *testing.T) {
	a, dsn := openTemp(t, Options{})
	defer a.Close()
	b, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const name = "SEP00000000BBBB"
	if err := a.CreateDevice(t.Context(), device.Device{Name: name, Description: "0"}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := 0
	const per = 15
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for range per {
				_, _, err := s.UpdateDevice(t.Context(), name, device.Actor{Kind: device.ActorSystem}, func(d *device.Device) error {
					mu.Lock()
					calls++
					mu.Unlock()
					var n int
					fmt.Sscan(d.Description, &n)
					d.Description = fmt.Sprint(n + 1)
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d, err := a.GetDevice(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Description != fmt.Sprint(4*per) {
		t.Errorf("Description = %s after %d increments: an update was lost", d.Description, 4*per)
	}
	evs, err := a.ListAudit(t.Context(), device.AuditQuery{Target: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4*per {
		t.Errorf("%d audit events, want %d (one per committed update, none for a retried one)", len(evs), 4*per)
	}
	t.Logf("%d updates, %d closure calls", 4*per, calls)
}

var errStop = errors.New("stop")

// TestClosureErrorRollsBack: an error from the caller's closure is
// returned as it is and changes nothing.
func TestClosureErrorRollsBack(t *testing.T) {
	s, _ := openTemp(t, Options{})
	defer s.Close()
	const name = "SEP00000000CCCC"
	if err := s.CreateDevice(t.Context(), device.Device{Name: name}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.ImportDevices(t.Context(), []string{"SEP00000000DDDD", name}, device.Actor{Kind: device.ActorSystem},
		func(i int, old *device.Device) (device.Device, error) {
			if i == 1 {
				return device.Device{}, errStop
			}
			return device.Device{Name: "SEP00000000DDDD"}, nil
		})
	if !errors.Is(err, errStop) {
		t.Fatalf("ImportDevices = %v, want the closure's error", err)
	}
	if _, err := s.GetDevice(t.Context(), "SEP00000000DDDD"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("the first device of a failed import: %v, want NotFound", err)
	}
}

// twoPools opens two stores (two nodes' pools) on one new database.
func twoPools(t *testing.T) (*Store, *Store) {
	t.Helper()
	a, dsn := openTemp(t, Options{})
	t.Cleanup(func() { a.Close() })
	b, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// TestTwoNodesCountOneGuess: two nodes reserving a guess on the same count
// at once (a READ COMMITTED compare-and-swap): exactly one evaluates it.
func TestTwoNodesCountOneGuess(t *testing.T) {
	a, b := twoPools(t)
	const name = "SEP00000000EEEE"
	if err := a.CreateDevice(t.Context(), device.Device{Name: name, AuthMode: device.AuthString, AuthString: "12345",
		Operation: device.OpInstall}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	for round := range 30 {
		var wg sync.WaitGroup
		oks := make([]bool, 2)
		for i, s := range []*Store{a, b} {
			wg.Go(func() {
				ok, err := s.CountAuthGuess(t.Context(), name, round, 0, time.Now())
				if err != nil {
					t.Error(err)
				}
				oks[i] = ok
			})
		}
		wg.Wait()
		if oks[0] == oks[1] {
			t.Fatalf("round %d: reservations %v, want exactly one", round, oks)
		}
	}
	if d, _ := a.GetDevice(t.Context(), name); d.AuthFailures != 30 {
		t.Errorf("AuthFailures = %d after 30 rounds, want 30", d.AuthFailures)
	}
}

// TestAdminChangeRacesFinish: an administrator's change (SERIALIZABLE) on
// one node while the phone's session finishes (READ COMMITTED) on another
// loses neither: the LSC the session recorded and the administrator's
// description both stand, every round.
func TestAdminChangeRacesFinish(t *testing.T) {
	a, b := twoPools(t)
	const name = "SEP00000000FFFF"
	if err := a.CreateDevice(t.Context(), device.Device{Name: name, Operation: device.OpInstall, Status: device.StatusPending},
		device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		d, err := a.GetDevice(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := a.StartAttempt(t.Context(), device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: time.Now(), Node: "a", Rev: d.Rev})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		serial := fmt.Sprintf("%016X", round+1)
		desc := fmt.Sprint("round ", round)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := a.FinishAttempt(t.Context(), device.Outcome{Device: name, AttemptID: c.AttemptID, Node: "a", FinishedAt: time.Now(),
				Result: device.SuccessStatus(device.OpInstall), Completed: true, SetLSC: newTestCert(serial)}); err != nil {
				t.Errorf("round %d: finish: %v", round, err)
			}
		})
		wg.Go(func() {
			if _, _, err := b.UpdateDevice(t.Context(), name, device.Actor{Kind: device.ActorSystem}, func(d *device.Device) error {
				d.Description = desc
				d.Operation = device.OpInstall
				return nil
			}); err != nil {
				t.Errorf("round %d: update: %v", round, err)
			}
		})
		wg.Wait()
		d, err = a.GetDevice(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if d.LSC == nil || d.LSC.Serial != serial || d.Description != desc {
			t.Fatalf("round %d: LSC %+v, description %q; want serial %s and %q", round, d.LSC, d.Description, serial, desc)
		}
	}
}

// newTestCert returns an LSC with serial.
func newTestCert(serial string) *device.Certificate {
	now := time.Now()
	return &device.Certificate{Serial: serial, Issuer: "CN=CAPF-TEST", NotBefore: now, NotAfter: now.AddDate(5, 0, 0), DER: []byte("DER " + serial)}
}

// TestLastAdminAcrossNodes: two nodes demoting the only two admins at once
// (a write skew: each reads two admins, each changes a different row) —
// SERIALIZABLE lets one through and the other, retried, sees the last
// admin and is refused. Every round, an admin remains.
func TestLastAdminAcrossNodes(t *testing.T) {
	a, b := twoPools(t)
	now := time.Now()
	for _, name := range []string{"alice", "bob"} {
		if err := a.CreateAccount(t.Context(), account.Account{Name: name, Role: account.RoleAdmin, CreatedAt: now, UpdatedAt: now},
			"hash", device.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 15 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*Store{a, b} {
			name := []string{"alice", "bob"}[i]
			wg.Go(func() { _, errs[i] = s.SetRole(t.Context(), name, account.RoleViewer, now, device.AuditEvent{}) })
		}
		wg.Wait()
		as, err := a.ListAccounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		admins := 0
		for _, ac := range as {
			if ac.Role == account.RoleAdmin {
				admins++
			}
		}
		if admins != 1 {
			t.Fatalf("round %d: %d admins left (errors %v), want 1", round, admins, errs)
		}
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: errors %v, want exactly one refused", round, errs)
		}
		for _, err := range errs {
			if err != nil && fault.KindOf(err) != fault.Conflict {
				t.Fatalf("round %d: %v, want Conflict", round, err)
			}
		}
		for _, name := range []string{"alice", "bob"} {
			if _, err := a.SetRole(t.Context(), name, account.RoleAdmin, now, device.AuditEvent{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFleetParametersContract(t *testing.T) {
	schemas := map[storetest.SystemStore]string{}
	storetest.RunFleetParameters(t, storetest.FleetBackend{
		Open: func(t *testing.T) storetest.SystemStore {
			s, dsn := openTemp(t, Options{})
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			schemas[s] = u.Query().Get("search_path")
			return s
		},
		BreakAudit: func(t *testing.T, s storetest.SystemStore) {
			schema := schemas[s]
			pgtest.Exec(t, `CREATE FUNCTION `+schema+`.refuse_audit() RETURNS trigger LANGUAGE plpgsql
				AS $$BEGIN RAISE EXCEPTION 'audit refused by the test'; END$$`)
			pgtest.Exec(t, `CREATE TRIGGER refuse_audit BEFORE INSERT ON `+schema+`.audit_events
				FOR EACH ROW EXECUTE FUNCTION `+schema+`.refuse_audit()`)
		},
	})
}

func TestLSCContract(t *testing.T) {
	storetest.RunLSC(t, func(t *testing.T) storetest.LSCStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestCASetContract(t *testing.T) {
	storetest.RunCASet(t, func(t *testing.T) storetest.CASetStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}
