package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/view"
)

type resetOutput struct{ Body view.Reset }

type bulkResetInput struct {
	Body struct {
		Criteria criteriaBody `json:"criteria" doc:"the phones: every one this search matches (at most 50)"`
	}
}

type bulkResetOutput struct{ Body view.BulkReset }

func (s *server) registerResets() {
	tags := []string{"devices"}
	add(s, writeAccess, huma.Operation{
		OperationID: "reset-device", Method: http.MethodPost, Path: "/devices/{name}/reset", Tags: tags,
		Summary: "Reset a phone (Save, then Reset)",
		Description: "Asks the PBX to send the phone a SIP NOTIFY with Event: check-sync, through the configured notifier, " +
			"so that it restarts and contacts the CAPF. The request and its outcome are audited and the outcome is kept " +
			"as the phone's last_reset. 503 when no notifier is configured or the notification failed (the detail says why), " +
			"429 when resets arrive faster than reset_per_second allows.",
		Errors: []int{http.StatusNotFound, http.StatusServiceUnavailable, http.StatusTooManyRequests},
	}, s.resetDevice)
	add(s, writeAccess, huma.Operation{
		OperationID: "reset-devices", Method: http.MethodPost, Path: "/devices/reset", Tags: tags,
		Summary: "Reset every phone a search matches",
		Description: "At most 50 phones (a search matching more is refused with the count), one after the other at " +
			"reset_per_second; after 3 failures in a row the rest are skipped and listed. Each reset is audited and kept " +
			"as its phone's last_reset.",
		Errors: []int{http.StatusServiceUnavailable},
	}, s.resetDevices)
}

func (s *server) resetDevice(ctx context.Context, in *DeviceName) (*resetOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, err
	}
	name, err := in.normalized()
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	r, err := s.o.Devices.Reset(ctx, actor, name)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return &resetOutput{Body: *view.ResetOf(r)}, nil
}

func (s *server) resetDevices(ctx context.Context, in *bulkResetInput) (*bulkResetOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, err
	}
	b, err := s.o.Devices.ResetMatching(ctx, actor, in.Body.Criteria.criteria())
	if err != nil {
		return nil, s.fail(ctx, err, "body.criteria")
	}
	return &bulkResetOutput{Body: view.BulkResetOf(b)}, nil
}
