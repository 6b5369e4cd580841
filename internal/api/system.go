package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/view"
)

type parametersOutput struct{ Body []system.Parameter }

type updateParametersInput struct {
	Body struct {
		Values map[string]any `json:"values" minProperties:"1" maxProperties:"256" doc:"parameter name → new value (JSON-native: string, number, boolean or list of strings); all or nothing"`
	}
}

type activationOutput struct{ Body system.Activation }

type setActivationInput struct {
	Body struct {
		Active bool `json:"active" doc:"true activates the CAPF service (the phone listener accepts), false deactivates it"`
	}
}

type auditInput struct {
	Target string `query:"target" maxLength:"256" doc:"only the events of this target (a device name, an account, …)"`
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"1000" doc:"at most this many, newest first"`
}

type auditOutput struct{ Body []view.AuditEvent }

func (s *server) registerSystem() {
	add(s, readAccess, huma.Operation{
		OperationID: "list-parameters", Method: http.MethodGet, Path: "/parameters", Tags: []string{"system"},
		Summary: "The service parameters, with their values, defaults and help",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.parameters)
	add(s, writeAccess, huma.Operation{
		OperationID: "update-parameters", Method: http.MethodPatch, Path: "/parameters", Tags: []string{"system"},
		Summary:     "Change service parameters",
		Description: "Every value is validated before anything is written; the first bad one rejects the change (errors[].location body.values.NAME). Fleet parameters (restart false) are written to the database with their audit event in one transaction, only the keys given, and apply to new sessions on every node within seconds; node settings (restart true) are written to the serving node's capf.json and apply at its next start.",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.updateParameters)
	add(s, readAccess, huma.Operation{
		OperationID: "get-service", Method: http.MethodGet, Path: "/service", Tags: []string{"system"},
		Summary: "Service Activation: whether the CAPF service is active",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.activation)
	add(s, writeAccess, huma.Operation{
		OperationID: "set-service", Method: http.MethodPut, Path: "/service", Tags: []string{"system"},
		Summary:     "Activate or deactivate the CAPF service",
		Description: "Deactivated, the phone listener stops accepting; the administration keeps working.",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.setActivation)
}

func (s *server) registerAudit() {
	add(s, readAccess, huma.Operation{
		OperationID: "list-audit", Method: http.MethodGet, Path: "/audit", Tags: []string{"audit"},
		Summary: "The audit stream: every administrative change (who, when, from where, what, old → new), newest first",
	}, s.audit)
}

func (s *server) parameters(ctx context.Context, _ *struct{}) (*parametersOutput, error) {
	if s.o.System == nil {
		return nil, s.fail(ctx, unavailable("service parameters are"), "")
	}
	ps, err := s.o.System.Parameters(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &parametersOutput{Body: nonNil(ps)}, nil
}

func (s *server) updateParameters(ctx context.Context, in *updateParametersInput) (*parametersOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.System == nil {
		return nil, s.fail(ctx, unavailable("service parameters are"), "")
	}
	ps, err := s.o.System.UpdateParameters(ctx, actor, in.Body.Values)
	if err != nil {
		return nil, s.fail(ctx, err, "body.values")
	}
	return &parametersOutput{Body: nonNil(ps)}, nil
}

func (s *server) activation(ctx context.Context, _ *struct{}) (*activationOutput, error) {
	if s.o.System == nil {
		return nil, s.fail(ctx, unavailable("service activation is"), "")
	}
	a, err := s.o.System.Activation(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &activationOutput{Body: a}, nil
}

func (s *server) setActivation(ctx context.Context, in *setActivationInput) (*activationOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.System == nil {
		return nil, s.fail(ctx, unavailable("service activation is"), "")
	}
	a, err := s.o.System.SetActive(ctx, actor, in.Body.Active)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return &activationOutput{Body: a}, nil
}

func (s *server) audit(ctx context.Context, in *auditInput) (*auditOutput, error) {
	evs, err := s.o.Devices.Audit(ctx, device.AuditQuery{Target: in.Target, Limit: in.Limit})
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	return &auditOutput{Body: view.Audit(evs)}, nil
}

// nonNil returns xs, or an empty slice for nil, so that JSON says [].
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
