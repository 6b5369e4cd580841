package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/view"
)

// TestPhoneConfig: a phone's configuration snippet names the address and
// port the service really listens on (what Options.Phones says), for any
// principal; an unknown phone is 404, and a server that does not know its
// phone listener says so (503) rather than invent a port.
func TestPhoneConfig(t *testing.T) {
	e := newEnv(t)
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": phone, "auth_mode": "null", "security_profile": "authenticated"}), http.StatusCreated)
	e.srv.o.Phones = func() (string, string) { return "capf.example.net", "43804" }
	e.srv = newServer(e.srv.o)
	e.h = withTestPrincipal(e.srv.mux)

	c := decode[PhoneConfig](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+strings.ToLower(phone)+"/phone-config", nil), http.StatusOK)
	for _, want := range []string{"<capfAuthMode>2</capfAuthMode>", "<phonePort>43804</phonePort>", "<processNodeName>capf.example.net</processNodeName>", "<deviceSecurityMode>2</deviceSecurityMode>"} {
		if !strings.Contains(c.Config, want) {
			t.Errorf("config lacks %s:\n%s", want, c.Config)
		}
	}
	if c.Device != phone || c.Host != "capf.example.net" || c.Port != "43804" {
		t.Errorf("phone-config %+v", c)
	}
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/SEP0000000000FF/phone-config", nil), http.StatusNotFound)

	e.srv.o.Phones = nil
	e.srv = newServer(e.srv.o)
	e.h = withTestPrincipal(e.srv.mux)
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/phone-config", nil), http.StatusServiceUnavailable)
}
