package api

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/view"
)

// TestPhoneConfigCAPFServers: with capf_servers set, a phone's
// configuration lists every server in order (an entry without a port at
// the port this node listens on), in servers and in the snippet; host and
// port are the first server's. A list that does not resolve is refused
// with a problem naming capf_servers.
func TestPhoneConfigCAPFServers(t *testing.T) {
	e := newEnv(t)
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": phone, "auth_mode": "null", "security_profile": "authenticated"}), http.StatusCreated)
	servers := []string{"capf1.example.net", "capf2.example.net:3804", "[2001:db8::5]:5061"}
	e.srv.o.Phones = func() (string, string) { return "this-node.example.net", "43804" }
	e.srv.o.Servers = func() []string { return servers }
	e.srv = newServer(e.srv.o)
	e.h = withTestPrincipal(e.srv.mux)

	c := decode[PhoneConfig](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/phone-config", nil), http.StatusOK)
	want := []PhoneServer{{"capf1.example.net", "43804"}, {"capf2.example.net", "3804"}, {"2001:db8::5", "5061"}}
	if len(c.Servers) != len(want) {
		t.Fatalf("servers %+v, want %+v", c.Servers, want)
	}
	type xmlServer struct {
		Port string `xml:"phonePort"`
		Host string `xml:"processNodeName"`
	}
	var parsed struct {
		List []xmlServer `xml:"capfList>capf"`
	}
	if err := xml.Unmarshal([]byte("<device>"+c.Config+"</device>"), &parsed); err != nil {
		t.Fatalf("snippet inside <device> not well-formed: %v\n%s", err, c.Config)
	}
	for i, w := range want {
		if c.Servers[i] != w {
			t.Errorf("servers[%d] = %+v, want %+v", i, c.Servers[i], w)
		}
		if i >= len(parsed.List) || parsed.List[i].Host != w.Host || parsed.List[i].Port != w.Port {
			t.Errorf("snippet's capf %d = %+v, want %+v", i+1, parsed.List, w)
		}
	}
	if c.Host != "capf1.example.net" || c.Port != "43804" {
		t.Errorf("host/port %s/%s, want the first server's", c.Host, c.Port)
	}

	servers = []string{"capf1.example.net:43804", "capf1.example.net"}
	p := problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/phone-config", nil), http.StatusUnprocessableEntity)
	if !strings.Contains(p.Detail, `capf_servers: entry 2 "capf1.example.net:43804": the same server as entry 1`) {
		t.Errorf("problem %+v does not name the duplicate", p)
	}

	servers = nil
	c = decode[PhoneConfig](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/phone-config", nil), http.StatusOK)
	if len(c.Servers) != 1 || c.Servers[0] != (PhoneServer{"this-node.example.net", "43804"}) || c.Host != "this-node.example.net" {
		t.Errorf("without capf_servers: %+v, want this node alone", c)
	}
}
