package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/system"
)

// TestConfigSetAndShow: `capf config set` changes a fleet parameter in the
// database and a node setting in capf.json, takes JSON or a bare string,
// and refuses a bad key or value with a message naming it, changing
// nothing; `capf config show` says where each lives.
func TestConfigSetAndShow(t *testing.T) {
	data := initData(t)
	show := func() map[string]system.Parameter {
		t.Helper()
		out, errOut, code := run(t, data, "config", "show", "--json")
		if code != ExitOK {
			t.Fatalf("config show: %d %s", code, errOut)
		}
		var ps []system.Parameter
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatal(err)
		}
		m := map[string]system.Parameter{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}
	audits := func() int {
		t.Helper()
		out, _, code := run(t, data, "audit", "--json")
		if code != ExitOK {
			t.Fatal("audit failed")
		}
		var evs []map[string]any
		_ = json.Unmarshal([]byte(out), &evs)
		return len(evs)
	}
	fileBefore, _ := os.ReadFile(filepath.Join(data, "capf.json"))

	ok := []struct {
		name, key, value string
		want             any
		says             string
	}{
		{"bare-duration", "retry_delay", "30s", "30s", "every node applies it"},
		{"json-number", "key_generation_max_attempts", "5", float64(5), "every node applies it"},
		{"json-list", "maintenance_windows", `["Mon-Fri 22:00-06:00"]`, []any{"Mon-Fri 22:00-06:00"}, "every node applies it"},
		{"bare-zone", "maintenance_time_zone", "Europe/Berlin", "Europe/Berlin", "every node applies it"},
		{"json-string", "default_key", `"ec256"`, "ec256", "every node applies it"},
		{"node-setting", "log_level", "debug", "debug", "restart capf serve on this node"},
	}
	for _, c := range ok {
		t.Run("ok/"+c.name, func(t *testing.T) {
			out, errOut, code := run(t, data, "config", "set", c.key, c.value)
			if code != ExitOK || !strings.Contains(out, c.says) {
				t.Fatalf("config set %s %s: %d\n%s%s", c.key, c.value, code, out, errOut)
			}
			if p := show()[c.key]; !reflect.DeepEqual(p.Value, c.want) {
				t.Fatalf("config show: %s = %#v, want %#v", c.key, p.Value, c.want)
			}
		})
	}
	// A fleet parameter is not in the file; the node setting is.
	b, _ := os.ReadFile(filepath.Join(data, "capf.json"))
	if strings.Contains(string(b), "retry_delay") || !strings.Contains(string(b), `"log_level": "debug"`) {
		t.Fatalf("capf.json:\n%s", b)
	}
	if string(b) == string(fileBefore) {
		t.Fatal("capf.json unchanged by the node setting")
	}
	if out, _, _ := run(t, data, "config", "set", "retry_delay", "30s"); !strings.Contains(out, "nothing changed") {
		t.Errorf("setting the same value again: %s", out)
	}

	n := audits()
	bad := []struct {
		name, key, value, want string
	}{
		{"unknown-key", "retry_dealy", "30s", `unknown service parameter "retry_dealy"`},
		{"out-of-range", "key_generation_max_attempts", "11", "key_generation_max_attempts 11: want 1 to 10"},
		{"no-unit", "retry_delay", "30", `retry_delay: "30" is not a duration`},
		{"wrong-type", "key_generation_max_attempts", "many", "key_generation_max_attempts: want a whole number, got a string"},
		{"wrong-type-list", "maintenance_windows", "Mon 00:00-01:00", "maintenance_windows: want a list of strings"},
		{"bad-duration", "message_timeout", "soon", `message_timeout: "soon" is not a duration`},
		{"bad-window", "maintenance_windows", `["Funday 00:00-01:00"]`, "maintenance_windows"},
		{"bad-zone", "maintenance_time_zone", "Mars/Olympus", `maintenance_time_zone "Mars/Olympus"`},
		{"bad-node-setting", "admin_listen", "8443", `admin_listen "8443"`},
	}
	before := show()
	for _, c := range bad {
		t.Run("fail/"+c.name, func(t *testing.T) {
			out, errOut, code := run(t, data, "config", "set", c.key, c.value)
			if code != ExitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("config set %s %s: exit %d, want %d with %q:\n%s%s", c.key, c.value, code, ExitUsage, c.want, out, errOut)
			}
		})
	}
	if after := show(); !reflect.DeepEqual(after, before) {
		t.Error("a refused config set changed a parameter")
	}
	if b2, _ := os.ReadFile(filepath.Join(data, "capf.json")); string(b2) != string(b) {
		t.Error("a refused config set changed capf.json")
	}
	if got := audits(); got != n {
		t.Errorf("%d audit events after refused changes, want %d", got, n)
	}

	out, _, code := run(t, data, "config", "show")
	node, fleet, found := strings.Cut(out, "Fleet parameters")
	if code != ExitOK || !found || !strings.Contains(node, "admin_listen") || strings.Contains(node, "retry_delay") ||
		!strings.Contains(fleet, `retry_delay                  "30s"`) || strings.Contains(fleet, "admin_listen") {
		t.Errorf("config show:\n%s", out)
	}
}

func TestParseConfigValue(t *testing.T) {
	for _, c := range []struct {
		typ, in string
		want    any
	}{
		{system.TypeDuration, "30s", "30s"},
		{system.TypeDuration, `"30s"`, "30s"},
		{system.TypeDuration, "30", "30"},
		{system.TypeString, "8443", "8443"},
		{system.TypeString, "true", "true"},
		{system.TypeInteger, "5", json.Number("5")},
		{system.TypeInteger, "five", "five"},
		{system.TypeBoolean, "true", true},
		{system.TypeInteger, "1 2", "1 2"},
		{system.TypeList, "[1", "[1"},
		{system.TypeList, `["a","b"]`, []any{"a", "b"}},
		{system.TypeString, "Europe/Berlin", "Europe/Berlin"},
		{system.TypeString, "", ""},
	} {
		if got := parseConfigValue(c.typ, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseConfigValue(%s, %q) = %#v, want %#v", c.typ, c.in, got, c.want)
		}
	}
}
