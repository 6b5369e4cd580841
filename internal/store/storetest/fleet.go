package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
)

// FleetBackend opens stores for RunFleetParameters.
type FleetBackend struct {
	// Open returns a new, empty store; RunFleetParameters closes it.
	Open func(t *testing.T) SystemStore
	// BreakAudit makes every later audit insert of s fail (a trigger
	// that raises an error), so that a test sees what else a write that
	// audits leaves behind.
	BreakAudit func(t *testing.T, s SystemStore)
}

// RunFleetParameters runs the contract of the fleet parameters of
// system.Store: values and counter, writes of only the keys set, the
// import mark, the audit event in the same transaction, and writers that
// take turns.
func RunFleetParameters(t *testing.T, b FleetBackend) {
	t.Helper()
	fresh := func(t *testing.T) SystemStore {
		t.Helper()
		s := b.Open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	ev := func(action string) device.AuditEvent {
		return device.AuditEvent{At: t0, Actor: device.CLIActor("alice"), Action: action, Target: system.AuditTargetParameters,
			Changes: []device.FieldChange{{Field: "retry_delay", Old: `"60s"`, New: `"30s"`}}}
	}
	set := func(kv ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
		return m
	}
	// put stores kv with an audit event and returns what the store says.
	put := func(t *testing.T, s SystemStore, kv ...string) system.FleetParameters {
		t.Helper()
		fp, err := s.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
			return system.FleetChange{Set: set(kv...), Audit: ev("parameters.update")}, nil
		})
		if err != nil {
			t.Fatalf("UpdateFleetParameters(%v): %v", kv, err)
		}
		return fp
	}
	// want checks the stored parameters and the counter.
	want := func(t *testing.T, s SystemStore, version int64, imported bool, kv ...string) {
		t.Helper()
		fp, err := s.FleetParameters(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if d := diffFleet(fp, version, imported, set(kv...)); d != "" {
			t.Fatalf("FleetParameters: %s", d)
		}
		v, err := s.FleetParametersVersion(t.Context())
		if err != nil || v != version {
			t.Fatalf("FleetParametersVersion = %d, %v; want %d", v, err, version)
		}
	}
	audits := func(t *testing.T, s SystemStore) int {
		t.Helper()
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: system.AuditTargetParameters})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}

	t.Run("new-database-has-none", func(t *testing.T) {
		want(t, fresh(t), 0, false)
	})
	t.Run("set-keeps-other-keys-and-counts", func(t *testing.T) {
		s := fresh(t)
		got := put(t, s, "retry_delay", `"30s"`, "maintenance_windows", `["Mon 00:00-06:00","Sat 00:00-24:00"]`)
		if d := diffFleet(got, 1, false, set("retry_delay", `"30s"`, "maintenance_windows", `["Mon 00:00-06:00","Sat 00:00-24:00"]`)); d != "" {
			t.Fatalf("UpdateFleetParameters returned: %s", d)
		}
		put(t, s, "retry_delay", `"45s"`)
		want(t, s, 2, false, "retry_delay", `"45s"`, "maintenance_windows", `["Mon 00:00-06:00","Sat 00:00-24:00"]`)
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: system.AuditTargetParameters})
		if err != nil || len(evs) != 2 || evs[0].Action != "parameters.update" || !evs[0].At.Equal(stored(t0)) ||
			len(evs[0].Changes) != 1 || evs[0].Changes[0].New != `"30s"` {
			t.Fatalf("audit = %+v, %v; want the two changes' events", evs, err)
		}
	})
	t.Run("closure-sees-what-is-stored", func(t *testing.T) {
		s := fresh(t)
		put(t, s, "retry_delay", `"30s"`)
		var seen system.FleetParameters
		_, err := s.UpdateFleetParameters(t.Context(), func(cur system.FleetParameters) (system.FleetChange, error) {
			seen = cur
			return system.FleetChange{Set: set("message_timeout", `"10s"`)}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if d := diffFleet(seen, 1, false, set("retry_delay", `"30s"`)); d != "" {
			t.Fatalf("the closure saw %s", d)
		}
		want(t, s, 2, false, "retry_delay", `"30s"`, "message_timeout", `"10s"`)
	})
	t.Run("nothing-to-write-writes-nothing", func(t *testing.T) {
		s := fresh(t)
		put(t, s, "retry_delay", `"30s"`)
		for _, ch := range []system.FleetChange{{}, {Audit: ev("parameters.update")}, {Set: map[string]json.RawMessage{}, Audit: ev("x")}} {
			if _, err := s.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) { return ch, nil }); err != nil {
				t.Fatal(err)
			}
		}
		want(t, s, 1, false, "retry_delay", `"30s"`)
		if n := audits(t, s); n != 1 {
			t.Fatalf("%d audit events, want 1: an empty change audits nothing", n)
		}
	})
	t.Run("refused-changes-nothing", func(t *testing.T) {
		s := fresh(t)
		put(t, s, "retry_delay", `"30s"`)
		mine := errors.New("the value is out of range")
		cases := []struct {
			name   string
			change func(system.FleetParameters) (system.FleetChange, error)
			is     error
		}{
			{"closure-error", func(system.FleetParameters) (system.FleetChange, error) {
				return system.FleetChange{Set: set("retry_delay", `"1s"`), Audit: ev("x")}, mine
			}, mine},
			{"not-json", func(system.FleetParameters) (system.FleetChange, error) {
				return system.FleetChange{Set: set("message_timeout", `"10s"`, "retry_delay", `{not json`), Audit: ev("x"), MarkImported: true}, nil
			}, nil},
			{"empty-name", func(system.FleetParameters) (system.FleetChange, error) {
				return system.FleetChange{Set: set("", `1`), Audit: ev("x")}, nil
			}, nil},
		}
		for _, c := range cases {
			_, err := s.UpdateFleetParameters(t.Context(), c.change)
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("%s: err = %v, want %v", c.name, err, c.is)
			}
		}
		want(t, s, 1, false, "retry_delay", `"30s"`)
		if n := audits(t, s); n != 1 {
			t.Fatalf("%d audit events after refused changes, want 1", n)
		}
	})
	t.Run("audit-in-the-same-transaction", func(t *testing.T) {
		s := fresh(t)
		put(t, s, "retry_delay", `"30s"`)
		b.BreakAudit(t, s)
		_, err := s.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
			return system.FleetChange{Set: set("retry_delay", `"1s"`, "message_timeout", `"5s"`), MarkImported: true, Audit: ev("parameters.update")}, nil
		})
		if err == nil {
			t.Fatal("UpdateFleetParameters succeeded although its audit event could not be written")
		}
		want(t, s, 1, false, "retry_delay", `"30s"`)
	})
	t.Run("import-mark", func(t *testing.T) {
		s := fresh(t)
		got, err := s.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
			return system.FleetChange{MarkImported: true}, nil
		})
		if err != nil || !got.Imported || got.Version != 0 {
			t.Fatalf("mark imported: %+v, %v; want imported, version 0", got, err)
		}
		want(t, s, 0, true)
		put(t, s, "retry_delay", `"30s"`)
		want(t, s, 1, true, "retry_delay", `"30s"`)
		_, err = s.UpdateFleetParameters(t.Context(), func(cur system.FleetParameters) (system.FleetChange, error) {
			if !cur.Imported {
				return system.FleetChange{}, errors.New("the closure saw the database not imported")
			}
			return system.FleetChange{MarkImported: true, Audit: ev("parameters.import")}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want(t, s, 1, true, "retry_delay", `"30s"`)
		if n := audits(t, s); n != 1 {
			t.Fatalf("%d audit events, want 1: marking an imported database again writes nothing", n)
		}
	})
	t.Run("imported-keys", func(t *testing.T) {
		// The import is marked per key: a key that becomes a fleet
		// parameter later is imported once more, each key once.
		s := fresh(t)
		mark := func(keys ...string) system.FleetParameters {
			t.Helper()
			fp, err := s.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
				return system.FleetChange{ImportedKeys: keys, Audit: ev("parameters.import")}, nil
			})
			if err != nil {
				t.Fatalf("mark %v imported: %v", keys, err)
			}
			return fp
		}
		got := mark("retry_delay", "default_key")
		if !got.Imported || !reflect.DeepEqual(got.ImportedKeys, []string{"default_key", "retry_delay"}) || got.Version != 0 {
			t.Fatalf("after the first import: %+v; want imported [default_key retry_delay], version 0", got)
		}
		mark("retry_delay", "max_concurrent_operations")
		fp, err := s.FleetParameters(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !fp.Imported || !reflect.DeepEqual(fp.ImportedKeys, []string{"default_key", "max_concurrent_operations", "retry_delay"}) ||
			!fp.WasImported("max_concurrent_operations") || fp.WasImported("message_timeout") {
			t.Fatalf("after the second import: %+v; want imported [default_key max_concurrent_operations retry_delay]", fp)
		}
		mark("default_key")
		if n := audits(t, s); n != 2 {
			t.Fatalf("%d audit events, want 2: marking keys already imported writes nothing", n)
		}
		if v, err := s.FleetParametersVersion(t.Context()); err != nil || v != 0 {
			t.Fatalf("version %d, %v; want 0: marks are not changes of a value", v, err)
		}
	})
	t.Run("cancelled-changes-nothing", func(t *testing.T) {
		s := fresh(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.UpdateFleetParameters(ctx, func(system.FleetParameters) (system.FleetChange, error) {
			return system.FleetChange{Set: set("retry_delay", `"1s"`), Audit: ev("x")}, nil
		}); err == nil {
			t.Fatal("UpdateFleetParameters with a cancelled context succeeded")
		}
		want(t, s, 0, false)
	})
	t.Run("writers-take-turns", func(t *testing.T) {
		// Each writer sets a key of its own and adds one to a shared
		// count it read from cur: every key stands (nobody erased
		// another's) and the count is the number of writers (no write
		// was based on a value another had already replaced).
		s := fresh(t)
		const writers, rounds = 6, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*rounds)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					_, err := s.UpdateFleetParameters(t.Context(), func(cur system.FleetParameters) (system.FleetChange, error) {
						var n int
						if v, ok := cur.Values["count"]; ok {
							if err := json.Unmarshal(v, &n); err != nil {
								return system.FleetChange{}, err
							}
						}
						return system.FleetChange{
							Set:   set(fmt.Sprintf("key_%d", w), fmt.Sprint(r), "count", fmt.Sprint(n+1)),
							Audit: ev("parameters.update"),
						}, nil
					})
					if err != nil {
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
		kv := []string{"count", fmt.Sprint(writers * rounds)}
		for w := range writers {
			kv = append(kv, fmt.Sprintf("key_%d", w), fmt.Sprint(rounds-1))
		}
		want(t, s, writers*rounds, false, kv...)
		if n := audits(t, s); n != writers*rounds {
			t.Fatalf("%d audit events, want %d", n, writers*rounds)
		}
	})
}

// diffFleet describes how fp differs from the version, mark and values
// wanted, or returns "".
func diffFleet(fp system.FleetParameters, version int64, imported bool, values map[string]json.RawMessage) string {
	if fp.Version != version || fp.Imported != imported {
		return fmt.Sprintf("version %d, imported %v; want %d, %v", fp.Version, fp.Imported, version, imported)
	}
	if len(fp.Values) != len(values) {
		return fmt.Sprintf("values %s; want %s", fp.Values, values)
	}
	for k, v := range values {
		if string(fp.Values[k]) != string(v) {
			return fmt.Sprintf("value of %s = %s; want %s", k, fp.Values[k], v)
		}
	}
	return ""
}
