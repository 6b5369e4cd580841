package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/overview"
)

// PhoneConfig is a phone's configuration snippet: the CAPF part of its
// SEP<MAC>.cnf.xml, naming the servers phones try (capf_servers, or the
// address and port this node listens on for phones), as capf
// phone-config prints it.
type PhoneConfig struct {
	Device string `json:"device" doc:"device name"`
	Host   string `json:"host" doc:"the address phones reach the service at first (processNodeName of the first server; the only one unless capf_servers lists several)"`
	Port   string `json:"port" doc:"the port of the first server (phonePort): where the service really listens on for phones unless capf_servers gives another"`
	// Servers are the capfList, in the order phones try them.
	Servers []PhoneServer `json:"servers" doc:"the capfList: the CAPF servers phones try, in order (capf_servers when set, else this node alone)"`
	Config  string        `json:"config" doc:"capfAuthMode, capfList and deviceSecurityMode, to paste inside <device>"`
}

// PhoneServer is one server of a phone's capfList.
type PhoneServer struct {
	Host string `json:"host" doc:"processNodeName: a host name or IP address"`
	Port string `json:"port" doc:"phonePort"`
}

type phoneConfigInput struct{ DeviceName }

type phoneConfigOutput struct{ Body PhoneConfig }

func (s *server) registerPhoneConfig() {
	add(s, readAccess, huma.Operation{
		OperationID: "device-phone-config", Method: http.MethodGet, Path: "/devices/{name}/phone-config", Tags: []string{"devices"},
		Summary: "A phone's configuration snippet, with the port the service really listens on",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.phoneConfig)
}

func (s *server) phoneConfig(ctx context.Context, in *phoneConfigInput) (*phoneConfigOutput, error) {
	if s.o.Phones == nil {
		return nil, s.fail(ctx, unavailable("the phone listener's address is"), "")
	}
	name, err := in.normalized()
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	d, err := s.o.Devices.Get(ctx, name)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	var entries []string
	if s.o.Servers != nil {
		entries = s.o.Servers()
	}
	host, port := s.o.Phones()
	servers, snippet, err := overview.PhoneSnippet(d, entries, host, port)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := PhoneConfig{Device: d.Name, Host: servers[0].Host, Port: servers[0].Port, Servers: make([]PhoneServer, len(servers)), Config: snippet}
	for i, sv := range servers {
		out.Servers[i] = PhoneServer{Host: sv.Host, Port: sv.Port}
	}
	return &phoneConfigOutput{Body: out}, nil
}
