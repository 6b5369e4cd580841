package webui

import (
	"net/http"
	"net/url"

	"github.com/capf-server/capf/internal/account"
)

// loadReset fills in the phone's latest reset, and whether the page
// follows one just asked for.
func (u *ui) loadReset(r *http.Request, pd *phoneData) error {
	rs, err := u.o.Devices.LastReset(r.Context(), pd.Device.Name)
	if err != nil {
		return err
	}
	pd.LastReset = rs
	switch r.URL.Query().Get("reset") {
	case "ok", "failed":
		pd.ResetDone = r.URL.Query().Get("reset")
	}
	return nil
}

// phoneReset asks the PBX to restart the phone (Save, then Reset) and
// shows the phone page with the outcome. A reset that could not be sent
// at all (no notifier configured, an unknown phone) is an error page that
// says why; one that was sent and failed is recorded, and the page shows
// its reason.
func (u *ui) phoneReset(w http.ResponseWriter, r *http.Request, p account.Principal) {
	rs, err := u.o.Devices.Reset(r.Context(), p.Actor(), r.PathValue("name"))
	if rs.IsZero() {
		u.fail(w, r, p, err)
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	http.Redirect(w, r, "/phones/"+url.PathEscape(rs.Device)+"?reset="+outcome, http.StatusSeeOther)
}
