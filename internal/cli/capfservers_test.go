package cli

import (
	"encoding/json"
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
)

// capfListOf returns the capfList of a phone-config snippet as host:port,
// checking that the snippet inside <device> is well-formed XML.
func capfListOf(t *testing.T, snippet string) []string {
	t.Helper()
	var dev struct {
		List []struct {
			Port string `xml:"phonePort"`
			Host string `xml:"processNodeName"`
		} `xml:"capfList>capf"`
	}
	if err := xml.Unmarshal([]byte("<device>"+snippet+"</device>"), &dev); err != nil {
		t.Fatalf("the snippet inside <device> is not well-formed: %v\n%s", err, snippet)
	}
	var out []string
	for _, c := range dev.List {
		out = append(out, c.Host+":"+c.Port)
	}
	return out
}

// TestPhoneConfigCAPFServers: `capf config set capf_servers` (a JSON list
// or a bare comma-separated string) gives every phone's snippet the
// servers in order, an entry without a port at the node's phone port; a
// bad list is refused naming the entry, and changes and audits nothing;
// --server gives the list on the command line, --host one server, and
// the two together are refused.
func TestPhoneConfigCAPFServers(t *testing.T) {
	data := initData(t)
	if out, errOut, code := run(t, data, "device", "add", "SEP58971ECC97C1", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("add: %d %s%s", code, out, errOut)
	}
	phoneConfig := func(args ...string) []string {
		t.Helper()
		out, errOut, code := run(t, data, append([]string{"phone-config", "SEP58971ECC97C1"}, args...)...)
		if code != ExitOK {
			t.Fatalf("phone-config %q: exit %d\n%s%s", args, code, out, errOut)
		}
		return capfListOf(t, out)
	}
	value := func() any {
		t.Helper()
		out, _, _ := run(t, data, "config", "show", "--json")
		var ps []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		}
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Name == "capf_servers" {
				return p.Value
			}
		}
		t.Fatal("config show lists no capf_servers")
		return nil
	}
	audits := func() string {
		t.Helper()
		out, _, code := run(t, data, "audit", "--json")
		if code != ExitOK {
			t.Fatal("audit failed")
		}
		return out
	}

	// Unset: this machine alone (--host stands in for its host name).
	if got := phoneConfig("--host", "capf.example.net"); !reflect.DeepEqual(got, []string{"capf.example.net:3804"}) {
		t.Fatalf("without capf_servers: %q", got)
	}

	if out, errOut, code := run(t, data, "config", "set", "capf_servers", `["capf1.example:13804","capf2.example"]`); code != ExitOK {
		t.Fatalf("config set (JSON): %d %s%s", code, out, errOut)
	}
	if got := phoneConfig(); !reflect.DeepEqual(got, []string{"capf1.example:13804", "capf2.example:3804"}) {
		t.Errorf("capf_servers from JSON: %q", got)
	}
	if out, errOut, code := run(t, data, "config", "set", "capf_servers", "capf3.example, capf1.example:5061,192.0.2.9,[2001:db8::1]:3805,capf5.example"); code != ExitOK {
		t.Fatalf("config set (bare): %d %s%s", code, out, errOut)
	}
	want := []string{"capf3.example:3804", "capf1.example:5061", "192.0.2.9:3804", "2001:db8::1:3805", "capf5.example:3804"}
	if got := phoneConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("capf_servers from a bare string: %q, want %q", got, want)
	}
	if a := audits(); !strings.Contains(a, "capf_servers") || !strings.Contains(a, "capf5.example") {
		t.Errorf("the change is not audited:\n%s", a)
	}

	before, n := value(), len(audits())
	for _, c := range []struct{ name, value, want string }{
		{"six", "a,b,c,d,e,f", "capf_servers: 6 servers: a phone's capfList holds at most 5"},
		{"duplicate", `["capf1.example","CAPF1.example"]`, `capf_servers: entry 2 "CAPF1.example": the same server as entry 1`},
		{"bad-host", "capf1.example,capf 2", `capf_servers: entry 2 "capf 2": host "capf 2": want a host name or IP address`},
		{"bad-port", "capf1.example:0", `capf_servers: entry 1 "capf1.example:0": port "0": want a port number from 1 to 65535`},
		{"url", "https://capf1.example/", `capf_servers: entry 1 "https://capf1.example/"`},
	} {
		t.Run("fail/"+c.name, func(t *testing.T) {
			out, errOut, code := run(t, data, "config", "set", "capf_servers", c.value)
			if code != ExitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("config set capf_servers %s: exit %d, want %d with %q:\n%s%s", c.value, code, ExitUsage, c.want, out, errOut)
			}
		})
	}
	if after := value(); !reflect.DeepEqual(after, before) || len(audits()) != n {
		t.Errorf("a refused change changed capf_servers (%v, was %v) or the audit", after, before)
	}

	// The command line wins: --server lists, --host is one server.
	if got := phoneConfig("--server", "x.example:1,y.example", "--port", "5061"); !reflect.DeepEqual(got, []string{"x.example:1", "y.example:5061"}) {
		t.Errorf("--server: %q", got)
	}
	if got := phoneConfig("--host", "h.example"); !reflect.DeepEqual(got, []string{"h.example:3804"}) {
		t.Errorf("--host: %q", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--server", "x.example", "--host", "h.example"}, "give --server (the whole capfList) or --host (one server), not both"},
		{[]string{"--server", "x.example,x.example"}, `--server: entry 2 "x.example": the same server as entry 1`},
		{[]string{"--server", "a,b,c,d,e,f"}, "--server: 6 servers"},
		{[]string{"--server", "x.example:3804,x.example"}, "the same server as entry 1 (an entry without a port takes this node's phone port 3804)"},
	} {
		if out, errOut, code := run(t, data, append([]string{"phone-config", "SEP58971ECC97C1"}, c.args...)...); code != ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("phone-config %q: exit %d, want %d with %q:\n%s%s", c.args, code, ExitUsage, c.want, out, errOut)
		}
	}

	// Empty again: this machine alone.
	if out, errOut, code := run(t, data, "config", "set", "capf_servers", "[]"); code != ExitOK {
		t.Fatalf("config set []: %d %s%s", code, out, errOut)
	}
	if got := phoneConfig("--host", "capf.example.net"); !reflect.DeepEqual(got, []string{"capf.example.net:3804"}) {
		t.Errorf("after emptying capf_servers: %q", got)
	}
}
