package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

// criteriaBody is a Find Phone search in a request body: the filters of
// GET /devices.
type criteriaBody struct {
	Name            string   `json:"name,omitempty" maxLength:"256" doc:"device name begins with"`
	Description     string   `json:"description,omitempty" maxLength:"256" doc:"description contains"`
	AuthString      string   `json:"auth_string,omitempty" maxLength:"256" doc:"authentication string is exactly"`
	SecurityProfile string   `json:"security_profile,omitempty" maxLength:"256" doc:"security profile is"`
	LSCStatus       string   `json:"lsc_status,omitempty" maxLength:"256" doc:"LSC status is: none, valid, expired or revoked"`
	Operation       string   `json:"operation,omitempty" maxLength:"256" doc:"pending operation is"`
	Status          string   `json:"status,omitempty" maxLength:"256" doc:"Operation Status contains"`
	ExpiresBefore   string   `json:"expires_before,omitempty" maxLength:"256" doc:"LSC expires before: an RFC 3339 time or a duration from now"`
	Where           []string `json:"where,omitempty" maxItems:"32" doc:"FIELD:MATCH:VALUE conditions, as in GET /devices"`
}

func (c criteriaBody) criteria() device.Criteria {
	return device.Criteria{
		Name: c.Name, Description: c.Description, AuthString: c.AuthString, SecurityProfile: c.SecurityProfile,
		LSCStatus: c.LSCStatus, Operation: c.Operation, Status: c.Status, ExpiresBefore: c.ExpiresBefore, Where: c.Where,
	}
}

type bulkInput struct {
	Body struct {
		Criteria criteriaBody `json:"criteria" doc:"the phones: every one this search matches"`
		Change   DeviceFields `json:"change" doc:"what to schedule for each of them; operation is required"`
	}
}

type campaignOutput struct {
	Location string `header:"Location" doc:"the campaign's progress"`
	Body     device.Campaign
}

type campaignsInput struct {
	Limit int `query:"limit" default:"50" minimum:"1" maximum:"1000" doc:"at most this many, newest first"`
}

type campaignsOutput struct{ Body []device.Campaign }

type campaignInput struct {
	ID int64 `path:"id" minimum:"1" doc:"campaign id"`
}

type campaignProgressOutput struct{ Body device.CampaignProgress }

type dashboardOutput struct{ Body view.Dashboard }

func (s *server) registerBulk() {
	tags := []string{"bulk"}
	add(s, writeAccess, huma.Operation{
		OperationID: "bulk-schedule", Method: http.MethodPost, Path: "/bulk", Tags: tags, DefaultStatus: http.StatusCreated,
		Summary:     "Schedule one operation for every phone a search matches",
		Description: "Each phone gets its own generated authentication string when generate_string is set; one transaction.",
	}, s.bulk)
	add(s, readAccess, huma.Operation{
		OperationID: "list-campaigns", Method: http.MethodGet, Path: "/campaigns", Tags: tags,
		Summary: "Bulk operations, newest first",
	}, s.campaigns)
	add(s, readAccess, huma.Operation{
		OperationID: "get-campaign", Method: http.MethodGet, Path: "/campaigns/{id}", Tags: tags,
		Summary: "A bulk operation's progress",
	}, s.campaign)
	add(s, readAccess, huma.Operation{
		OperationID: "dashboard", Method: http.MethodGet, Path: "/dashboard", Tags: []string{"overview"},
		Summary: "The fleet at a glance: counts, LSCs expiring soon, operations in progress, recent failures",
	}, s.dashboard)
}

func (s *server) bulk(ctx context.Context, in *bulkInput) (*campaignOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.Campaigns == nil {
		return nil, s.fail(ctx, unavailable("bulk operations are"), "")
	}
	crit := in.Body.Criteria.criteria()
	if _, err := criteriaQuery(crit, s.o.Devices.Now()); err != nil {
		return nil, s.fail(ctx, err, "body.criteria")
	}
	ch, err := in.Body.Change.change()
	if err != nil {
		return nil, s.fail(ctx, err, "body.change")
	}
	c, err := s.o.Campaigns.Schedule(ctx, actor, crit, ch)
	if err != nil {
		return nil, s.fail(ctx, err, "body.change")
	}
	return &campaignOutput{Location: Prefix + "/campaigns/" + itoa(c.ID), Body: c}, nil
}

func (s *server) campaigns(ctx context.Context, in *campaignsInput) (*campaignsOutput, error) {
	if s.o.Campaigns == nil {
		return nil, s.fail(ctx, unavailable("bulk operations are"), "")
	}
	cs, err := s.o.Campaigns.Campaigns(ctx, in.Limit)
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	if cs == nil {
		cs = []device.Campaign{}
	}
	return &campaignsOutput{Body: cs}, nil
}

func (s *server) campaign(ctx context.Context, in *campaignInput) (*campaignProgressOutput, error) {
	if s.o.Campaigns == nil {
		return nil, s.fail(ctx, unavailable("bulk operations are"), "")
	}
	p, err := s.o.Campaigns.Campaign(ctx, in.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	if p.PerMinute == nil {
		p.PerMinute = []device.MinuteCount{}
	}
	if p.Failures == nil {
		p.Failures = []device.FailureGroup{}
	}
	return &campaignProgressOutput{Body: p}, nil
}

func (s *server) dashboard(ctx context.Context, _ *struct{}) (*dashboardOutput, error) {
	if s.o.Campaigns == nil {
		return nil, s.fail(ctx, unavailable("the dashboard is"), "")
	}
	d, err := s.dashboardOf(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &dashboardOutput{Body: d}, nil
}
