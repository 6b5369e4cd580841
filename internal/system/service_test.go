package system_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// newService returns a service over a fresh data directory and database.
func newService(t *testing.T) (*system.Service, *sqlite.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return system.NewService(system.Options{DataDir: dir, Store: st, Now: func() time.Time { return t0 }}), st, dir
}

func writeFile(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func byName(ps []system.Parameter) map[string]system.Parameter {
	m := map[string]system.Parameter{}
	for _, p := range ps {
		m[p.Name] = p
	}
	return m
}

func TestParametersListEveryParamInOrder(t *testing.T) {
	svc, _, dir := newService(t)
	writeFile(t, dir, `{"certificate_validity_days": 365, "maintenance_windows": ["Sat 00:00-06:00"], "allow_expired_mic": true, "max_connections_per_address": 50}`)
	ps, err := svc.Parameters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != len(config.Params) {
		t.Fatalf("%d parameters, want %d", len(ps), len(config.Params))
	}
	for i, p := range ps {
		if p.Name != config.Params[i].Key || p.Help != config.Params[i].Help {
			t.Errorf("parameter %d = %q, want %q with its help", i, p.Name, config.Params[i].Key)
		}
	}
	m := byName(ps)
	tests := []struct {
		name         string
		value, deflt any
		typ          string
		restart      bool
	}{
		{"certificate_validity_days", int64(365), int64(1825), system.TypeInteger, false},
		{"max_connections_per_address", int64(50), int64(200), system.TypeInteger, true},
		{"maintenance_windows", []string{"Sat 00:00-06:00"}, []string{}, system.TypeList, false},
		{"allow_expired_mic", true, false, system.TypeBoolean, false},
		{"key_generation_max_time", "30m0s", "30m0s", system.TypeDuration, false},
		{"listen", ":3804", ":3804", system.TypeString, true},
		{"admin_listen", ":8443", ":8443", system.TypeString, true},
		{"auth_string_max_failures", int64(10), int64(10), system.TypeInteger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := m[tt.name]
			if !reflect.DeepEqual(p.Value, tt.value) || !reflect.DeepEqual(p.Default, tt.deflt) || p.Type != tt.typ || p.Restart != tt.restart {
				t.Fatalf("%+v, want value %#v default %#v type %s restart %v", p, tt.value, tt.deflt, tt.typ, tt.restart)
			}
		})
	}
}

func TestUpdateParameters(t *testing.T) {
	svc, st, dir := newService(t)
	writeFile(t, dir, `{"max_connections_per_address": 50}`)
	actor := device.CLIActor("alice")
	ps, err := svc.UpdateParameters(t.Context(), actor, map[string]any{
		"max_connections_per_address": 70, "maintenance_windows": []string{"Mon-Fri 22:00-06:00"}, "retry_delay": "2m",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := byName(ps)
	if m["max_connections_per_address"].Value != int64(70) || m["retry_delay"].Value != "2m0s" {
		t.Fatalf("returned %+v %+v", m["max_connections_per_address"], m["retry_delay"])
	}
	// The node setting is in the node's file, and only it.
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnsPerAddress != 70 || time.Duration(cfg.RetryDelay) != time.Minute || len(cfg.MaintenanceWindows) != 0 {
		t.Fatalf("capf.json now %+v; want the per-address cap changed and no fleet parameter", cfg)
	}
	fi, err := os.Stat(filepath.Join(dir, config.FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("capf.json mode %v, %v; want 0600", fi.Mode(), err)
	}
	// The fleet parameters are in the database.
	fp, err := st.FleetParameters(t.Context())
	if err != nil || fp.Version != 1 || fp.Imported || string(fp.Values["retry_delay"]) != `"2m0s"` ||
		string(fp.Values["maintenance_windows"]) != `["Mon-Fri 22:00-06:00"]` || len(fp.Values) != 2 {
		t.Fatalf("stored fleet parameters %+v, %v", fp, err)
	}
	for _, c := range []struct {
		target string
		want   []device.FieldChange
	}{
		{config.FileName, []device.FieldChange{{Field: "max_connections_per_address", Old: "50", New: "70"}}},
		{system.AuditTargetParameters, []device.FieldChange{
			{Field: "retry_delay", Old: `"1m0s"`, New: `"2m0s"`},
			{Field: "maintenance_windows", Old: `[]`, New: `["Mon-Fri 22:00-06:00"]`},
		}},
	} {
		evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: c.target})
		if err != nil || len(evs) != 1 {
			t.Fatalf("audit of %s: %+v, %v; want one event", c.target, evs, err)
		}
		if ev := evs[0]; ev.Action != system.AuditParametersUpdate || ev.Actor != actor || !reflect.DeepEqual(ev.Changes, c.want) {
			t.Fatalf("audit event %+v, want changes %+v", ev, c.want)
		}
	}

	// The same values again change nothing and audit nothing.
	if _, err := svc.UpdateParameters(t.Context(), actor, map[string]any{"max_connections_per_address": 70, "retry_delay": "120s"}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := st.ListAudit(t.Context(), device.AuditQuery{}); len(evs) != 2 {
		t.Fatalf("an update that changes nothing was audited: %+v", evs)
	}
	if v, _ := st.FleetParametersVersion(t.Context()); v != 1 {
		t.Fatalf("version %d after an update that changes nothing, want 1", v)
	}
}

func TestUpdateParametersRefusesAndChangesNothing(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]any
		field   string
		message string
	}{
		{"unknown", map[string]any{"validity": 5, "certificate_validity_days": 10}, "validity", `unknown service parameter "validity"`},
		{"out-of-range", map[string]any{"certificate_validity_days": 0, "retry_delay": "2m"}, "certificate_validity_days", "want 1 to 1825"},
		{"wrong-type", map[string]any{"allow_expired_mic": "yes"}, "allow_expired_mic", "want true or false"},
		{"bad-duration", map[string]any{"message_timeout": "soon"}, "message_timeout", "is not a duration"},
		{"bad-window", map[string]any{"maintenance_windows": []string{"Funday"}}, "maintenance_windows", "maintenance_windows"},
		{"bad-address", map[string]any{"admin_listen": "8443"}, "admin_listen", "want host:port"},
		{"legacy-with-ec", map[string]any{"tls_profile": "legacy", "capf_key": "ec256"}, "tls_profile", "needs an RSA CAPF key"},
		{"bad-fleet-with-good-node", map[string]any{"key_generation_max_attempts": 11, "log_level": "debug"}, "key_generation_max_attempts", "want 1 to 10"},
		{"bad-fleet-with-good-fleet", map[string]any{"maintenance_time_zone": "Mars/Olympus", "retry_delay": "2m"}, "maintenance_time_zone", "Mars/Olympus"},
		{"fleet-wrong-type", map[string]any{"maintenance_windows": "Mon 00:00-06:00"}, "maintenance_windows", "want a list of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, st, dir := newService(t)
			const before = `{"certificate_validity_days": 365}`
			writeFile(t, dir, before)
			_, err := svc.UpdateParameters(t.Context(), device.CLIActor("alice"), tt.set)
			if fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != tt.field || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err = %v (field %q), want Invalid naming %q with %q", err, fault.FieldOf(err), tt.field, tt.message)
			}
			b, _ := os.ReadFile(filepath.Join(dir, config.FileName))
			if string(b) != before {
				t.Fatalf("capf.json changed to %s", b)
			}
			if evs, _ := st.ListAudit(t.Context(), device.AuditQuery{}); len(evs) != 0 {
				t.Fatalf("a refused update was audited: %+v", evs)
			}
			if fp, err := st.FleetParameters(t.Context()); err != nil || fp.Version != 0 || fp.Imported || len(fp.Values) != 0 {
				t.Fatalf("a refused update wrote the database: %+v, %v", fp, err)
			}
		})
	}
}

func TestUpdateParametersWritesValidFileFromNone(t *testing.T) {
	svc, _, dir := newService(t)
	if _, err := svc.UpdateParameters(t.Context(), device.CLIActor("alice"), map[string]any{"log_level": "debug"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["log_level"] != "debug" || len(m) != len(config.Params)-len(config.FleetKeys) {
		t.Fatalf("capf.json %s (%v): want every node setting, log_level debug", b, err)
	}
}

func TestParseParamValue(t *testing.T) {
	p := func(typ string) system.Parameter { return system.Parameter{Name: "x", Type: typ} }
	tests := []struct {
		name    string
		typ     string
		text    string
		want    any
		wantErr bool
	}{
		{"integer", system.TypeInteger, " 42 ", int64(42), false},
		{"integer-negative", system.TypeInteger, "-1", int64(-1), false},
		{"integer-bad", system.TypeInteger, "4x", nil, true},
		{"integer-empty", system.TypeInteger, "", nil, true},
		{"bool-true", system.TypeBoolean, "true", true, false},
		{"bool-on", system.TypeBoolean, "on", true, false},
		{"bool-false", system.TypeBoolean, "false", false, false},
		{"bool-unchecked", system.TypeBoolean, "", false, false},
		{"bool-bad", system.TypeBoolean, "yes", nil, true},
		{"duration", system.TypeDuration, "90s", "90s", false},
		{"duration-bad", system.TypeDuration, "soon", nil, true},
		{"list", system.TypeList, "Mon 00:00-06:00\r\n\n  Sat 00:00-24:00 \n", []string{"Mon 00:00-06:00", "Sat 00:00-24:00"}, false},
		{"list-empty", system.TypeList, "", []string{}, false},
		{"string", system.TypeString, " :3804\n", ":3804", false},
		{"too-long", system.TypeString, strings.Repeat("a", 70000), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := system.ParseParamValue(p(tt.typ), tt.text)
			if tt.wantErr {
				if fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "x" {
					t.Fatalf("ParseParamValue = %v, %v; want an Invalid error naming x", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseParamValue = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestActivation(t *testing.T) {
	svc, st, _ := newService(t)
	ctx := t.Context()
	a, err := svc.Activation(ctx)
	if err != nil || a != (system.Activation{Active: true}) {
		t.Fatalf("Activation of a new service = %+v, %v; want active, never changed", a, err)
	}
	actor := device.Actor{Kind: device.ActorWeb, Name: "admin", Remote: "192.0.2.1"}
	a, err = svc.SetActive(ctx, actor, false)
	want := system.Activation{Active: false, ChangedAt: "2026-05-06T07:08:09Z", ChangedBy: "web:admin"}
	if err != nil || a != want {
		t.Fatalf("SetActive(false) = %+v, %v; want %+v", a, err, want)
	}
	if a, err := svc.Activation(ctx); err != nil || a != want {
		t.Fatalf("Activation = %+v, %v; want %+v", a, err, want)
	}
	// Deactivating again changes nothing.
	if _, err := svc.SetActive(ctx, actor, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetActive(ctx, actor, true); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action+" "+ev.Changes[0].Old+"→"+ev.Changes[0].New)
	}
	if want := []string{"service.activate inactive→active", "service.deactivate active→inactive"}; !reflect.DeepEqual(actions, want) {
		t.Fatalf("audit %v, want %v", actions, want)
	}
}

// TestDatabaseSettingRedacted: the database node setting is written to
// capf.json as given (mode 0600), but shown and audited with its password
// hidden, even when only the password changed; a value that is not a
// postgres:// URL is refused without repeating it.
func TestDatabaseSettingRedacted(t *testing.T) {
	svc, st, dir := newService(t)
	alice := device.CLIActor("alice")
	const one, two = "postgres://capf:first-secret@db.example/capf", "postgres://capf:second-secret@db.example/capf"
	for _, db := range []string{one, two} {
		ps, err := svc.UpdateParameters(t.Context(), alice, map[string]any{"database": db})
		if err != nil {
			t.Fatal(err)
		}
		if got := byName(ps)["database"]; got.Value != "postgres://capf:xxxxx@db.example/capf" || !got.Restart {
			t.Fatalf("database shown as %+v; want the password hidden, applied at restart", got)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil || cfg.Database != two {
		t.Fatalf("capf.json database %q, %v; want the URL as given", cfg.Database, err)
	}
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: config.FileName})
	if err != nil || len(evs) != 2 {
		t.Fatalf("audit %+v, %v; want 2 events, the password change included", evs, err)
	}
	for _, ev := range evs {
		for _, c := range ev.Changes {
			if strings.Contains(c.Old+c.New, "secret") {
				t.Fatalf("the audit shows the password: %+v", c)
			}
		}
	}
	_, err = svc.UpdateParameters(t.Context(), alice, map[string]any{"database": "mysql://root:hunter2@db/capf"})
	if err == nil || !strings.Contains(err.Error(), "want a postgres:// URL") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a MySQL URL: %v; want refused without the password", err)
	}
}

// TestHostOnlySettingsRefusedRemotely: the reset notifier's settings name
// a program and a secret file of the host, the others the database, a
// directory written and files read; an administrator of the API or the web
// UI may not set them (code execution on the host, the fleet handed to
// another database, files written or probed), the host's CLI may.
func TestHostOnlySettingsRefusedRemotely(t *testing.T) {
	for _, key := range config.HostOnlyKeys {
		for _, kind := range []string{device.ActorAPI, device.ActorWeb} {
			t.Run(key+"/"+kind, func(t *testing.T) {
				svc, _, dir := newService(t)
				const before = `{"certificate_validity_days": 365}`
				writeFile(t, dir, before)
				v := any("x")
				switch key {
				case "reset_command":
					v = []string{"/bin/sh", "-c", "id"}
				case "trust_file_add":
					v = []string{"capf=/etc/passwd"}
				case "database":
					v = "postgres://mallory@evil.example/capf"
				case "trust_file_dir":
					v = "/etc/cron.d"
				}
				_, err := svc.UpdateParameters(t.Context(), device.Actor{Kind: kind, Name: "mallory"}, map[string]any{key: v})
				if fault.KindOf(err) != fault.Forbidden || !strings.Contains(err.Error(), "capf.json on the host") {
					t.Fatalf("err = %v, want Forbidden", err)
				}
				if b, _ := os.ReadFile(filepath.Join(dir, config.FileName)); string(b) != before {
					t.Fatalf("capf.json changed to %s", b)
				}
			})
		}
	}
	svc, _, dir := newService(t)
	writeFile(t, dir, `{}`)
	if _, err := svc.UpdateParameters(t.Context(), device.CLIActor("root"), map[string]any{"reset_command": []string{"/usr/local/bin/capf-reset"}}); err != nil {
		t.Fatalf("the host's CLI: %v", err)
	}
}
