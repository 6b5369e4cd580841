package system_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
)

// lister lists audit events, as both backends do.
type lister interface {
	ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
}

// backends opens one store of each backend for t; PostgreSQL skips
// without a test cluster (fails in CI).
var backends = []struct {
	name string
	open func(t *testing.T) system.Store
	// breakAudit makes every later audit insert of the store open
	// returned last fail.
	breakAudit func(t *testing.T)
}{
	{"sqlite", func(t *testing.T) system.Store {
		lastPath = filepath.Join(t.TempDir(), "capf.db")
		st, err := sqlite.Open(t.Context(), lastPath, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}, func(t *testing.T) {
		db, err := sql.Open("sqlite", lastPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events
			BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END`); err != nil {
			t.Fatal(err)
		}
	}},
	{"postgres", func(t *testing.T) system.Store {
		dsn := pgtest.DSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		lastSchema = u.Query().Get("search_path")
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}, func(t *testing.T) {
		pgtest.Exec(t, `CREATE FUNCTION `+lastSchema+`.refuse_audit() RETURNS trigger LANGUAGE plpgsql
			AS $$BEGIN RAISE EXCEPTION 'audit refused by the test'; END$$`)
		pgtest.Exec(t, `CREATE TRIGGER refuse_audit BEFORE INSERT ON `+lastSchema+`.audit_events
			FOR EACH ROW EXECUTE FUNCTION `+lastSchema+`.refuse_audit()`)
	}},
}

// The database the last open of backends made (the tests run one at a
// time).
var lastPath, lastSchema string

// TestFleetChangeAuditedInItsTransaction: when the audit event of a
// change cannot be written, the change is not written either.
func TestFleetChangeAuditedInItsTransaction(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			svc := system.NewService(system.Options{DataDir: t.TempDir(), Store: st})
			alice := device.CLIActor("alice")
			if _, err := svc.UpdateParameters(t.Context(), alice, map[string]any{"retry_delay": "30s"}); err != nil {
				t.Fatal(err)
			}
			b.breakAudit(t)
			if _, err := svc.UpdateParameters(t.Context(), alice, map[string]any{"retry_delay": "45s", "message_timeout": "5s"}); err == nil {
				t.Fatal("the change succeeded although its audit event could not be written")
			}
			m := byName(must(svc.Parameters(t.Context())))
			if m["retry_delay"].Value != "30s" || m["message_timeout"].Value != "1m0s" {
				t.Fatalf("after the refused change: retry_delay %v, message_timeout %v; want 30s and 1m0s", m["retry_delay"].Value, m["message_timeout"].Value)
			}
			if v, err := st.FleetParametersVersion(t.Context()); err != nil || v != 1 {
				t.Fatalf("version %d, %v; want 1", v, err)
			}
		})
	}
}

// TestImportFileOnce: the fleet parameters of an upgraded node's capf.json
// are imported into the database once, audited as system:migration; after
// it, the file's fleet parameters are ignored, on that node and on another
// whose file says otherwise.
func TestImportFileOnce(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			dirA, dirB := t.TempDir(), t.TempDir()
			writeFile(t, dirA, `{"listen": ":3805", "retry_delay": "2m", "maintenance_windows": ["Sat 00:00-06:00"], "maintenance_time_zone": "UTC"}`)
			writeFile(t, dirB, `{"retry_delay": "5m"}`)
			a := system.NewService(system.Options{DataDir: dirA, Store: st, Now: func() time.Time { return t0 }})
			nodeB := system.NewService(system.Options{DataDir: dirB, Store: st, Now: func() time.Time { return t0 }})

			// An administrator's change before the import wins over the
			// file's value.
			if _, err := nodeB.UpdateParameters(t.Context(), device.CLIActor("bob"), map[string]any{"maintenance_time_zone": "Europe/Berlin"}); err != nil {
				t.Fatal(err)
			}
			got, err := a.ImportFile(t.Context())
			if want := []string{"retry_delay", "maintenance_windows"}; err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ImportFile = %v, %v; want %v", got, err, want)
			}
			for _, svc := range []*system.Service{a, nodeB} {
				if got, err := svc.ImportFile(t.Context()); err != nil || len(got) != 0 {
					t.Fatalf("ImportFile again = %v, %v; want nothing imported", got, err)
				}
			}
			writeFile(t, dirA, `{"listen": ":3805", "retry_delay": "9m"}`)
			for name, svc := range map[string]*system.Service{"A": a, "B": nodeB} {
				ps, err := svc.Parameters(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				m := byName(ps)
				if m["retry_delay"].Value != "2m0s" || !reflect.DeepEqual(m["maintenance_windows"].Value, []string{"Sat 00:00-06:00"}) ||
					m["maintenance_time_zone"].Value != "Europe/Berlin" {
					t.Errorf("node %s: retry_delay %v, windows %v, zone %v; want the imported 2m0s and [Sat 00:00-06:00], and bob's Europe/Berlin",
						name, m["retry_delay"].Value, m["maintenance_windows"].Value, m["maintenance_time_zone"].Value)
				}
			}
			if m := byName(must(a.Parameters(t.Context()))); m["listen"].Value != ":3805" {
				t.Errorf("node A's listen = %v, want its own :3805", m["listen"].Value)
			}
			if keys, err := a.FileFleetKeys(); err != nil || !reflect.DeepEqual(keys, []string{"retry_delay"}) {
				t.Errorf("FileFleetKeys = %v, %v; want [retry_delay], ignored", keys, err)
			}
			evs, err := st.(lister).ListAudit(t.Context(), device.AuditQuery{Target: system.AuditTargetParameters})
			if err != nil || len(evs) != 2 || evs[0].Action != system.AuditParametersImport || evs[0].Actor.String() != "system:migration" ||
				len(evs[0].Changes) != 2 || evs[0].Changes[0] != (device.FieldChange{Field: "retry_delay", Old: `"1m0s"`, New: `"2m0s"`}) {
				t.Errorf("audit %+v, %v; want one import by system:migration", evs, err)
			}
		})
	}
}

// TestImportFileMovedKeys: on a database whose capf.json import was made
// by a version with fewer fleet keys (the nine of ADR 0011, as migration
// leaves such a database marked), the first node of this version imports
// the keys that moved since, from its file, once; the keys imported before
// are not imported again, and the new keys' values are in force on a node
// whose file says otherwise.
func TestImportFileMovedKeys(t *testing.T) {
	nine := []string{"auth_string_backoff", "auth_string_max_failures", "default_key", "key_generation_max_attempts",
		"key_generation_max_time", "maintenance_time_zone", "maintenance_windows", "message_timeout", "retry_delay"}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			if _, err := st.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
				return system.FleetChange{MarkImported: true, ImportedKeys: nine}, nil
			}); err != nil {
				t.Fatal(err)
			}
			dirA, dirB := t.TempDir(), t.TempDir()
			writeFile(t, dirA, `{"retry_delay": "2m", "certificate_validity_days": 365, "max_concurrent_operations": 7, "sudi_verification": "required", "auth_failures_per_address": 0}`)
			writeFile(t, dirB, `{"certificate_validity_days": 30, "allow_expired_mic": true}`)
			a := system.NewService(system.Options{DataDir: dirA, Store: st, Now: func() time.Time { return t0 }})
			nodeB := system.NewService(system.Options{DataDir: dirB, Store: st, Now: func() time.Time { return t0 }})
			// Before the import, each node's own file stands in.
			if m := byName(must(nodeB.Parameters(t.Context()))); m["certificate_validity_days"].Value != int64(30) {
				t.Fatalf("node B before the import: validity %v, want its file's 30", m["certificate_validity_days"].Value)
			}
			got, err := a.ImportFile(t.Context())
			want := []string{"certificate_validity_days", "sudi_verification", "max_concurrent_operations", "auth_failures_per_address"}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ImportFile = %v, %v; want %v (retry_delay was imported before)", got, err, want)
			}
			if got, err := nodeB.ImportFile(t.Context()); err != nil || len(got) != 0 {
				t.Fatalf("ImportFile on node B = %v, %v; want nothing imported", got, err)
			}
			for name, svc := range map[string]*system.Service{"A": a, "B": nodeB} {
				m := byName(must(svc.Parameters(t.Context())))
				if m["certificate_validity_days"].Value != int64(365) || m["max_concurrent_operations"].Value != int64(7) ||
					m["sudi_verification"].Value != "required" || m["auth_failures_per_address"].Value != int64(0) ||
					m["allow_expired_mic"].Value != false || m["retry_delay"].Value != "1m0s" || m["certificate_validity_days"].Restart {
					t.Errorf("node %s: %v %v %v %v %v %v; want node A's imported values, the default retry_delay and the default allow_expired_mic",
						name, m["certificate_validity_days"], m["max_concurrent_operations"].Value, m["sudi_verification"].Value,
						m["auth_failures_per_address"].Value, m["allow_expired_mic"].Value, m["retry_delay"].Value)
				}
			}
			fp, err := st.FleetParameters(t.Context())
			if err != nil || len(fp.ImportedKeys) != len(config.FleetKeys) {
				t.Fatalf("imported keys %v, %v; want all %d", fp.ImportedKeys, err, len(config.FleetKeys))
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestConcurrentAdminsChangeDifferentKeys: two administrators, on two
// nodes of one database, change different fleet parameters at the same
// time, again and again: every change of each stands (neither erases the
// other's), each is audited, and the counter counts them all.
func TestConcurrentAdminsChangeDifferentKeys(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			const rounds = 15
			admins := []struct {
				key   string
				value func(i int) any
				want  any
			}{
				{"retry_delay", func(i int) any { return fmt.Sprintf("%ds", 10+i) }, fmt.Sprintf("%ds", 10+rounds-1)},
				{"key_generation_max_attempts", func(i int) any { return 1 + i%10 }, int64(1 + (rounds-1)%10)},
			}
			var wg sync.WaitGroup
			errs := make(chan error, len(admins)*rounds)
			for n, adm := range admins {
				svc := system.NewService(system.Options{DataDir: t.TempDir(), Store: st})
				actor := device.CLIActor(fmt.Sprint("admin", n))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range rounds {
						if _, err := svc.UpdateParameters(t.Context(), actor, map[string]any{adm.key: adm.value(i)}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			m := byName(must(system.NewService(system.Options{DataDir: t.TempDir(), Store: st}).Parameters(t.Context())))
			for _, adm := range admins {
				if !reflect.DeepEqual(m[adm.key].Value, adm.want) {
					t.Errorf("%s = %#v, want the last value set, %#v", adm.key, m[adm.key].Value, adm.want)
				}
			}
			// key_generation_max_attempts repeats no value in 15 rounds
			// but 1..10 then 1..5: each round changes it.
			if v, err := st.FleetParametersVersion(t.Context()); err != nil || v != 2*rounds {
				t.Errorf("version %d, %v; want %d", v, err, 2*rounds)
			}
			evs, err := st.(lister).ListAudit(t.Context(), device.AuditQuery{Target: system.AuditTargetParameters})
			if err != nil || len(evs) != 2*rounds {
				t.Errorf("%d audit events, %v; want %d", len(evs), err, 2*rounds)
			}
		})
	}
}
