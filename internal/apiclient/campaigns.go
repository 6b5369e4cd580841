package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/capf-server/capf/internal/device"
)

// MaxCampaigns is the most campaigns GET /campaigns gives in one call.
const MaxCampaigns = 1000

// Campaigns returns the bulk operations, newest first; a limit of 0 (or
// more than MaxCampaigns) asks for MaxCampaigns.
func (c *Client) Campaigns(ctx context.Context, limit int) ([]device.Campaign, error) {
	if limit <= 0 || limit > MaxCampaigns {
		limit = MaxCampaigns
	}
	cs := []device.Campaign{}
	err := c.call(ctx, request{method: http.MethodGet, path: "/campaigns", query: url.Values{"limit": {strconv.Itoa(limit)}}}, &cs)
	return cs, err
}

// CancelCampaign cancels the campaign id and returns what that did; the
// server records the token's name as the actor.
func (c *Client) CancelCampaign(ctx context.Context, id int64) (device.CampaignCancel, error) {
	var r device.CampaignCancel
	err := c.call(ctx, request{method: http.MethodPost, path: "/campaigns/" + strconv.FormatInt(id, 10) + "/cancel"}, &r)
	return r, err
}

// Campaign returns where the campaign id stands now.
func (c *Client) Campaign(ctx context.Context, id int64) (device.CampaignProgress, error) {
	var p device.CampaignProgress
	err := c.call(ctx, request{method: http.MethodGet, path: "/campaigns/" + strconv.FormatInt(id, 10)}, &p)
	return p, err
}
