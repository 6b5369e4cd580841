package device

import (
	"context"
	"fmt"
	"strconv"
)

// AuditCampaignStrings is the audit action of each time a campaign's
// authentication strings are shown or downloaded.
const AuditCampaignStrings = "campaign.strings-shown"

// CampaignString is a phone of a campaign and the authentication string
// an administrator enters on it.
type CampaignString struct {
	Device     string
	AuthString string
}

// CampaignStrings are the authentication strings of a campaign's phones.
type CampaignStrings struct {
	Campaign int64
	// Strings lists the phones still at the configuration the campaign
	// left them at that have a string, in name order.
	Strings []CampaignString
	// Skipped counts the campaign's phones removed or changed since (by
	// an administrator or a later campaign): their string, if any, is on
	// their own page.
	Skipped int
}

// CampaignStrings returns the authentication strings of campaign id (as
// after a bulk Generate String), for actor to see as how ("page", "CSV").
// Each call is audited (AuditCampaignStrings, target "campaign ID", the
// count but never a string) before the strings are returned: a showing
// that cannot be audited is refused. NotFound if there is no such
// campaign. Only an administrator may call it: the edges check.
func (s *Service) CampaignStrings(ctx context.Context, actor Actor, id int64, how string) (CampaignStrings, error) {
	list, skipped, err := s.store.CampaignStrings(ctx, id)
	if err != nil {
		return CampaignStrings{}, fmt.Errorf("campaign %d strings: %w", id, err)
	}
	ev := AuditEvent{At: s.now().UTC(), Actor: actor, Action: AuditCampaignStrings, Target: "campaign " + strconv.FormatInt(id, 10),
		Detail: fmt.Sprintf("%d authentication strings shown as %s", len(list), how)}
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return CampaignStrings{}, fmt.Errorf("audit the showing of campaign %d's strings: %w", id, err)
	}
	if list == nil {
		list = []CampaignString{}
	}
	return CampaignStrings{Campaign: id, Strings: list, Skipped: skipped}, nil
}
