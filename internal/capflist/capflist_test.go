package capflist

import (
	"slices"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []string // String of each server
		err     string
	}{
		{"ok/none", nil, []string{}, ""},
		{"ok/name-and-port", []string{"capf1.example:3804", "capf2.example"}, []string{"capf1.example:3804", "capf2.example"}, ""},
		{"ok/addresses", []string{"192.0.2.1", "192.0.2.2:5061", "2001:db8::1", "[2001:db8::2]", "[2001:db8::3]:3804"},
			[]string{"192.0.2.1", "192.0.2.2:5061", "[2001:db8::1]", "[2001:db8::2]", "[2001:db8::3]:3804"}, ""},
		{"ok/underscore-and-final-dot", []string{"capf_1.corp.", "x"}, []string{"capf_1.corp.", "x"}, ""},
		{"ok/five", []string{"a", "b", "c", "d", "e"}, []string{"a", "b", "c", "d", "e"}, ""},
		{"fail/six", []string{"a", "b", "c", "d", "e", "f"}, nil, "6 servers: a phone's capfList holds at most 5"},
		{"fail/duplicate", []string{"capf1.example", "capf2.example", "CAPF1.example"}, nil, `entry 3 "CAPF1.example": the same server as entry 1`},
		{"fail/duplicate-with-port", []string{"a:3804", "a:3804"}, nil, `entry 2 "a:3804": the same server as entry 1`},
		{"fail/duplicate-ip-spelling", []string{"2001:db8::1", "[2001:db8:0::1]"}, nil, "the same server as entry 1"},
		{"fail/empty-entry", []string{"a", ""}, nil, `entry 2 "": empty`},
		{"fail/bad-host", []string{"a", "b c"}, nil, `entry 2 "b c": host "b c": want a host name or IP address`},
		{"fail/markup", []string{"<script>"}, nil, `entry 1 "<script>": host`},
		{"fail/url", []string{"http://capf.example"}, nil, `entry 1 "http://capf.example"`},
		{"fail/port-zero", []string{"a:0"}, nil, `entry 1 "a:0": port "0": want a port number from 1 to 65535`},
		{"fail/port-big", []string{"a:65536"}, nil, "1 to 65535"},
		{"fail/port-signed", []string{"a:+80"}, nil, "1 to 65535"},
		{"fail/port-empty", []string{"a:"}, nil, "1 to 65535"},
		{"fail/label-too-long", []string{strings.Repeat("a", 64) + ".example"}, nil, "want a host name or IP address"},
		{"fail/name-too-long", []string{strings.Repeat("a.", 127) + "aa"}, nil, "longer than 253"},
		{"fail/hyphen", []string{"-a.example"}, nil, "want a host name or IP address"},
		{"fail/ipv4-in-brackets", []string{"[192.0.2.1]"}, nil, "not an IPv6 address in brackets"},
		{"fail/control", []string{"a\nb"}, nil, `entry 1 "a\nb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.entries)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("Parse(%q) = %v, %v; want Invalid %q", tt.entries, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.entries, err)
			}
			if s := Strings(got); !slices.Equal(s, tt.want) {
				t.Errorf("Parse(%q) = %q, want %q", tt.entries, s, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name       string
		entries    []string
		host, port string
		want       []Server
		err        string
	}{
		{"ok/this-node", nil, "capf.example", "3804", []Server{{"capf.example", "3804"}}, ""},
		{"ok/default-port", []string{"capf1.example:13804", "capf2.example", "192.0.2.3"}, "ignored", "5061",
			[]Server{{"capf1.example", "13804"}, {"capf2.example", "5061"}, {"192.0.2.3", "5061"}}, ""},
		{"fail/same-after-default-port", []string{"a:3804", "a"}, "h", "3804", nil, `entry 2 "a:3804": the same server as entry 1`},
		{"ok/this-node-taken-as-it-is", nil, "capf<x>", "3804", []Server{{"capf<x>", "3804"}}, ""},
		{"fail/this-node-no-host", nil, "", "3804", nil, "server 1: no host"},
		{"fail/ephemeral-port", []string{"a"}, "h", "0", nil, "the service listens on an ephemeral port?"},
		{"fail/bad-entry", []string{"a", "b:x"}, "h", "3804", nil, `entry 2 "b:x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.entries, tt.host, tt.port)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Resolve = %v, %v; want %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Resolve = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	six := []Server{{"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}, {"e", "1"}, {"f", "1"}}
	tests := []struct {
		name string
		ss   []Server
		err  string
	}{
		{"ok/one", six[:1], ""},
		{"ok/five", six[:5], ""},
		{"fail/none", nil, "needs at least one"},
		{"fail/six", six, "at most 5"},
		{"fail/no-port", []Server{{"a", ""}}, "want a port number"},
		{"fail/dup", []Server{{"a.example", "1"}, {"A.example.", "1"}}, "the same server as entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.ss)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Check(%v) = %v, want %q", tt.ss, err, tt.err)
			}
		})
	}
}
