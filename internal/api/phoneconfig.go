package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
)

// PhoneConfig is a phone's configuration snippet: the CAPF part of its
// SEP<MAC>.cnf.xml, naming the address and port the service listens on
// for phones, as capf phone-config prints it.
type PhoneConfig struct {
	Device string `json:"device" doc:"device name"`
	Host   string `json:"host" doc:"the address phones reach the service at (processNodeName)"`
	Port   string `json:"port" doc:"the port the service really listens on for phones (phonePort)"`
	Config string `json:"config" doc:"capfAuthMode, capfList and deviceSecurityMode, to paste inside <device>"`
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
	host, port := s.o.Phones()
	snippet, err := device.PhoneConfig(d, host, port)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &phoneConfigOutput{Body: PhoneConfig{Device: d.Name, Host: host, Port: port, Config: snippet}}, nil
}
