package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
)

// cancelBody is what cancelling a campaign did.
type cancelBody struct {
	Campaign  device.Campaign `json:"campaign" doc:"the campaign, now cancelled"`
	Cancelled int             `json:"cancelled" doc:"phones back to No Pending Operation: they were still waiting for the campaign's operation"`
	Skipped   int             `json:"skipped" doc:"phones left alone although their operation had not finished: running + changed"`
	Running   int             `json:"running" doc:"phones a session holds now"`
	Changed   int             `json:"changed" doc:"phones someone changed since the campaign (an administrator, a later campaign)"`
	Finished  int             `json:"finished" doc:"phones that completed the operation or were removed: nothing to cancel"`
}

type cancelOutput struct{ Body cancelBody }

func (s *server) registerCampaignCancel() {
	add(s, writeAccess, huma.Operation{
		OperationID: "cancel-campaign", Method: http.MethodPost, Path: "/campaigns/{id}/cancel", Tags: []string{"bulk"},
		Summary: "Cancel a bulk operation",
		Description: "The campaign's phones still waiting for its operation return to No Pending Operation; phones a session " +
			"holds now, or that someone changed since, are left alone and counted. Audited. 409 if it was cancelled already.",
	}, s.cancelCampaign)
}

func (s *server) cancelCampaign(ctx context.Context, in *campaignInput) (*cancelOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.Campaigns == nil {
		return nil, s.fail(ctx, unavailable("bulk operations are"), "")
	}
	r, err := s.o.Campaigns.CancelCampaign(ctx, actor, in.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return &cancelOutput{Body: cancelBody{Campaign: r.Campaign, Cancelled: r.Cancelled, Skipped: r.Skipped(),
		Running: r.Running, Changed: r.Changed, Finished: r.Finished}}, nil
}
