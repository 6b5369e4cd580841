package config

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestCAPFServers: capf_servers takes a JSON list or a comma-separated
// string of up to five host[:port] entries, and every refusal names the
// parameter and the entry.
func TestCAPFServers(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  []string
		err   string
	}{
		{"ok/default-empty", nil, []string{}, ""},
		{"ok/list", []string{"capf1.example:3804", "capf2.example"}, []string{"capf1.example:3804", "capf2.example"}, ""},
		{"ok/comma-string", "capf1.example:3804, capf2.example ,192.0.2.7", []string{"capf1.example:3804", "capf2.example", "192.0.2.7"}, ""},
		{"ok/empty-string", "", []string{}, ""},
		{"ok/empty-list", []string{}, []string{}, ""},
		{"ok/five", "a,b,c,d,e", []string{"a", "b", "c", "d", "e"}, ""},
		{"fail/six", "a,b,c,d,e,f", nil, "capf_servers: 6 servers: a phone's capfList holds at most 5"},
		{"fail/duplicate", []string{"capf1.example", "Capf1.Example"}, nil, `capf_servers: entry 2 "Capf1.Example": the same server as entry 1`},
		{"fail/bad-host", "capf1.example,bad host", nil, `capf_servers: entry 2 "bad host": host "bad host": want a host name or IP address`},
		{"fail/bad-port", []string{"capf1.example:99999"}, nil, `capf_servers: entry 1 "capf1.example:99999": port "99999": want a port number from 1 to 65535`},
		{"fail/empty-entry", "a,,b", nil, `capf_servers: entry 2 "": empty`},
		{"fail/number", 3804, nil, "capf_servers: want a list of host[:port] strings, or one string of them separated by commas, got a number"},
		{"fail/list-of-numbers", []any{"a", 3804}, nil, "capf_servers: want a list of host[:port] strings, got a list with an entry that is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := map[string]any{}
			if tt.value != nil {
				set["capf_servers"] = tt.value
			}
			c, problems := DecodeOver(nil, set)
			if tt.err != "" {
				if len(problems) != 1 || !strings.Contains(problems[0], tt.err) {
					t.Fatalf("problems %q, want one with %q", problems, tt.err)
				}
				return
			}
			if len(problems) > 0 {
				t.Fatalf("problems: %q", problems)
			}
			if !slices.Equal([]string(c.CAPFServers), tt.want) {
				t.Errorf("capf_servers = %q, want %q", c.CAPFServers, tt.want)
			}
			// It is stored and shown as a list, never as null.
			b, err := json.Marshal(c.CAPFServers)
			if err != nil || b[0] != '[' {
				t.Errorf("capf_servers marshals as %s, %v; want a list", b, err)
			}
		})
	}
	if !IsFleet("capf_servers") {
		t.Error("capf_servers is not a fleet parameter: every node must give phones the same list")
	}
}
