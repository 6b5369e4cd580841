package webui

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// campaignsShown is how many campaigns the list shows, newest first.
const campaignsShown = 200

// campaignRow is one campaign of the list.
type campaignRow struct {
	device.Campaign
	OpLabel string
}

// campaignsData is the campaigns list's content.
type campaignsData struct {
	Rows  []campaignRow
	Limit int
}

// campaigns lists the bulk operations, newest first.
func (u *ui) campaigns(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.Campaigns == nil {
		u.fail(w, r, p, notConfigured("campaigns"))
		return
	}
	cs, err := u.o.Campaigns.Campaigns(r.Context(), campaignsShown)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	cd := campaignsData{Limit: campaignsShown}
	for _, c := range cs {
		cd.Rows = append(cd.Rows, campaignRow{Campaign: c, OpLabel: c.Operation.Label()})
	}
	u.render(w, r, p, http.StatusOK, "campaigns.html", "Bulk Operations", "campaigns", cd)
}

// campaignID is the {id} of the path, or a NotFound error.
func campaignID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fault.NotFoundf("no campaign %q", r.PathValue("id"))
	}
	return id, nil
}

// campaignCancel asks to confirm, then cancels the campaign: its phones
// still waiting return to No Pending Operation, and the campaign page
// shows what was cancelled and what was left alone.
func (u *ui) campaignCancel(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.Campaigns == nil {
		u.fail(w, r, p, notConfigured("campaigns"))
		return
	}
	id, err := campaignID(r)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		cp, err := u.o.Campaigns.Campaign(r.Context(), id)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		if cp.Cancelled() {
			u.fail(w, r, p, fault.Conflictf("campaign %d was cancelled already", id))
			return
		}
		u.render(w, r, p, http.StatusOK, "campaign_cancel.html", fmt.Sprintf("Cancel Campaign %d", id), "campaigns", campaignView(cp, u.loc))
		return
	}
	res, err := u.o.Campaigns.CancelCampaign(r.Context(), p.Actor(), id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	cp, err := u.o.Campaigns.Campaign(r.Context(), id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	cd := campaignView(cp, u.loc)
	cd.Result = &res
	u.render(w, r, p, http.StatusOK, "campaign.html", fmt.Sprintf("Campaign %d: %s", cp.ID, cp.Operation.Label()), "campaigns", cd)
}
