package device_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// onePhoneConfig is the snippet of one server as PhoneConfig wrote it
// before capfList took several: a single server's output must not change.
const onePhoneConfig = `<!-- CAPF settings of SEP001122334455: paste into its SEP<MAC>.cnf.xml, inside <device> -->
<capfAuthMode>3</capfAuthMode>
<capfList>
  <capf>
    <phonePort>3804</phonePort>
    <processNodeName>capf.example.net</processNodeName>
  </capf>
</capfList>
<deviceSecurityMode>2</deviceSecurityMode>
`

// snippetDevice is the <device> element a snippet is pasted into.
type snippetDevice struct {
	AuthMode int `xml:"capfAuthMode"`
	List     []struct {
		Port string `xml:"phonePort"`
		Host string `xml:"processNodeName"`
	} `xml:"capfList>capf"`
	SecurityMode int `xml:"deviceSecurityMode"`
}

func TestPhoneConfigServers(t *testing.T) {
	phone := device.Device{Name: "SEP001122334455", SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC}
	servers := []capflist.Server{
		{Host: "capf1.example.net", Port: "3804"}, {Host: "192.0.2.2", Port: "13804"}, {Host: "2001:db8::3", Port: "3804"},
		{Host: "capf4.example.net", Port: "5061"}, {Host: "capf5.example.net.", Port: "3804"}, {Host: "capf6.example.net", Port: "3804"},
	}
	tests := []struct {
		name    string
		d       device.Device
		servers []capflist.Server
		err     string
	}{
		{"ok/one", phone, servers[:1], ""},
		{"ok/three", phone, servers[:3], ""},
		{"ok/five", phone, servers[:5], ""},
		{"fail/six", phone, servers, "capfList: 6 servers: a phone's capfList holds at most 5"},
		{"fail/none", phone, nil, "capfList: no CAPF server"},
		{"fail/duplicate", phone, []capflist.Server{servers[0], servers[1], servers[0]}, `entry 3 "capf1.example.net:3804": the same server as entry 1`},
		{"fail/ephemeral-port", phone, []capflist.Server{{Host: "h", Port: "0"}}, "1 to 65535 (the service listens on an ephemeral port?)"},
		{"ok/escaped-host", phone, []capflist.Server{{Host: "capf<x>&", Port: "3804"}}, ""},
		{"fail/no-auth-mode", device.Device{Name: "SEP001122334455", SecurityProfile: device.Authenticated}, servers[:1], "has no capfAuthMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := device.PhoneConfig(tt.d, tt.servers)
			if tt.err != "" {
				if err == nil || fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("PhoneConfig = %q, %v; want Invalid %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var dev snippetDevice
			if err := xml.Unmarshal([]byte("<device>"+got+"</device>"), &dev); err != nil {
				t.Fatalf("the snippet inside <device> is not well-formed XML: %v\n%s", err, got)
			}
			if dev.AuthMode != 3 || dev.SecurityMode != 2 || len(dev.List) != len(tt.servers) {
				t.Fatalf("snippet read back as %+v\n%s", dev, got)
			}
			for i, s := range tt.servers {
				if dev.List[i].Host != s.Host || dev.List[i].Port != s.Port {
					t.Errorf("capf %d = %+v, want %v (in order)", i+1, dev.List[i], s)
				}
			}
		})
	}
	one, err := device.PhoneConfig(phone, []capflist.Server{{Host: "capf.example.net", Port: "3804"}})
	if err != nil || one != onePhoneConfig {
		t.Errorf("one server:\n%s%v\nwant, byte for byte:\n%s", one, err, onePhoneConfig)
	}
}
