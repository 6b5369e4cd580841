package webui

import (
	"net/http"
	"net/url"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// showReset puts the phone's latest reset on the page, and whether the
// page follows one just asked for.
func (u *ui) showReset(r *http.Request, pd *phoneData, rs device.Reset) {
	pd.LastReset = rs
	switch r.URL.Query().Get("reset") {
	case "ok", "failed":
		pd.ResetDone = r.URL.Query().Get("reset")
	}
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

// bulkResetData is the bulk reset's outcome page's.
type bulkResetData struct {
	SearchText string
	SearchHref string
	Result     device.BulkReset
	OK         int // the resets that were sent
}

// bulkReset resets every phone of a search result (at most
// device.MaxBulkReset, paced by the notifier) and lists each outcome.
func (u *ui) bulkReset(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, p, fault.Invalidf("bulk reset form: %v", err))
		return
	}
	s := search{Where: r.PostForm["where"], Rows: defaultRows, Page: 1}
	b, err := u.o.Devices.ResetMatching(r.Context(), p.Actor(), s.criteria(true))
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := bulkResetData{SearchText: searchText(s, u.loc), SearchHref: s.href("/phones"), Result: b, OK: len(b.Resets) - b.Failed()}
	u.render(w, r, p, http.StatusOK, "bulk_reset.html", "Bulk Reset", "phones", d)
}
