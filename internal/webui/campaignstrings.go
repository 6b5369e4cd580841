package webui

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// campaignStrings returns the strings of the campaign in the path for p,
// shown as how: administrators only (a viewer is refused before anything
// is read), audited by the service before they are returned.
func (u *ui) campaignStrings(r *http.Request, p account.Principal, how string) (device.CampaignStrings, error) {
	if err := p.RequireWrite(); err != nil {
		return device.CampaignStrings{}, err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return device.CampaignStrings{}, fault.NotFoundf("no campaign %q", r.PathValue("id"))
	}
	return u.o.Devices.CampaignStrings(r.Context(), p.Actor(), id, how)
}

// campaignStringsPage shows a campaign's strings as a printable page.
func (u *ui) campaignStringsPage(w http.ResponseWriter, r *http.Request, p account.Principal) {
	got, err := u.campaignStrings(r, p, "a printable page in the web UI")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	u.render(w, r, p, http.StatusOK, "campaign_strings.html", fmt.Sprintf("Campaign %d: Authentication Strings", got.Campaign), "phones", got)
}

// campaignStringsCSV downloads a campaign's strings as CSV: device name
// and string, one phone a line.
func (u *ui) campaignStringsCSV(w http.ResponseWriter, r *http.Request, p account.Principal) {
	got, err := u.campaignStrings(r, p, "CSV from the web UI")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="campaign-%d-strings.csv"`, got.Campaign))
	cw := csv.NewWriter(w)
	// Device names and strings are validated (letters and digits): no
	// cell starts a spreadsheet formula.
	_ = cw.Write([]string{"Device Name", "Authentication String"})
	for _, s := range got.Strings {
		_ = cw.Write([]string{s.Device, s.AuthString})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		u.log.Debug("webui: campaign strings CSV", "campaign", got.Campaign, "err", err)
	}
}
