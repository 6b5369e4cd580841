package webui

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// bulkForm is the bulk form as text.
type bulkForm struct {
	Operation, AuthMode, Key, Deadline string
	GenerateString                     bool
}

// bulkData is the bulk page's (and its confirmation's) content.
type bulkData struct {
	Where      []string
	SearchText string
	SearchHref string
	Count      int
	Skipped    int // phones the search matches that the operation skips (no LSC on record)
	Form       bulkForm
	Errors     formErrors
	Operations []option
	Modes      []option
	Keys       []option
	OpLabel    string // the confirmation's operation, in CallManager's words
	// Deadline is the confirmation's Operation Completes By as read, in
	// the page's zone; "" for none.
	Deadline string
	MaxReset int // the most phones a bulk reset takes
}

func (u *ui) bulkData(s search, f bulkForm) bulkData {
	bd := bulkData{Where: s.Where, SearchText: searchText(s, u.loc), SearchHref: s.href("/phones"), Form: f, Errors: formErrors{}, MaxReset: device.MaxBulkReset}
	bd.Operations = optionsOf(operations, device.Operation.Label, f.Operation)
	bd.Modes = append([]option{{Value: "", Label: "Keep each phone's mode", Selected: f.AuthMode == ""}},
		optionsOf(authModes, device.AuthMode.Label, f.AuthMode)...)
	bd.Keys = append([]option{{Value: "", Label: "Keep each phone's key", Selected: f.Key == ""}},
		optionsOf(keys, keyLabel, f.Key)...)
	return bd
}

func (u *ui) bulkForm(w http.ResponseWriter, r *http.Request, p account.Principal) {
	s := parseSearch(r.URL.Query()).criteriaOnly()
	bd := u.bulkData(s, bulkForm{Operation: string(device.OpInstall)})
	n, err := u.countPhones(r, p, s)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	bd.Count = n
	u.render(w, r, p, http.StatusOK, "bulk.html", "Bulk Certificate Operation", "phones", bd)
}

// changeOfBulk is the bulk form as the change every phone gets, parsed by
// the one parser of device changes; an empty choice is not given.
func (u *ui) changeOfBulk(f bulkForm) (device.Change, error) {
	if f.Operation == "" {
		return device.Change{}, fault.InvalidField("operation", "choose a Certificate Operation")
	}
	given := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	c, err := device.ChangeInput{
		Operation: &f.Operation, AuthMode: given(f.AuthMode), Key: given(f.Key), Deadline: given(f.Deadline),
		GenerateString: f.GenerateString, Loc: u.loc,
	}.Parse()
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// bulkSubmit shows the confirmation naming the count, then schedules.
func (u *ui) bulkSubmit(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, p, fault.Invalidf("bulk form: %v", err))
		return
	}
	s := search{Where: r.PostForm["where"], Rows: defaultRows, Page: 1}
	f := bulkForm{
		Operation: r.PostFormValue("operation"), AuthMode: r.PostFormValue("auth_mode"), Key: r.PostFormValue("key"),
		Deadline: r.PostFormValue("deadline"), GenerateString: r.PostFormValue("generate_string") != "",
	}
	bd := u.bulkData(s, f)
	n, err := u.countPhones(r, p, s)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	bd.Count = n
	ch, err := u.changeOfBulk(f)
	if err == nil && n == 0 {
		err = fault.Invalidf("no phone matches the search")
	}
	if err == nil && device.NeedsLSC(*ch.Operation) && u.o.Campaigns != nil {
		// Delete and Troubleshoot act only on phones with an LSC on record.
		bd.Count, bd.Skipped, err = u.o.Campaigns.CountForBulk(r.Context(), s.criteria(true), *ch.Operation)
		if err == nil && bd.Count == 0 {
			err = device.NoLSCError(bd.Skipped, *ch.Operation)
		}
	}
	if err == nil && r.PostFormValue("confirm") == "yes" {
		if u.o.Campaigns == nil {
			err = notConfigured("bulk scheduling")
		} else {
			var c device.Campaign
			c, err = u.o.Campaigns.Schedule(r.Context(), p.Actor(), s.criteria(true), ch)
			if err == nil {
				http.Redirect(w, r, "/campaigns/"+strconv.FormatInt(c.ID, 10), http.StatusSeeOther)
				return
			}
		}
	}
	if err != nil {
		status := u.formError(bd.Errors, err)
		u.render(w, r, p, status, "bulk.html", "Bulk Certificate Operation", "phones", bd)
		return
	}
	bd.OpLabel = ch.Operation.Label()
	if ch.Deadline != nil {
		bd.Deadline = u.when(*ch.Deadline)
	}
	u.render(w, r, p, http.StatusOK, "bulk_confirm.html", "Confirm Bulk Certificate Operation", "phones", bd)
}

// segment is one part of the campaign's progress bar.
type segment struct {
	Class, Label string
	Count        int
	X, Width     float64
}

// bar is a bar of the per-minute chart.
type bar struct {
	X, Y, Width, Height float64
	Title               string
}

// campaignData is the campaign page's content.
type campaignData struct {
	device.CampaignProgress
	OpLabel   string
	Active    bool
	Segments  []segment
	Bars      []bar
	ChartMax  int
	ChartFrom time.Time
	ChartTo   time.Time
	TimeLeft  string
	Percent   int
	// Result is what a cancel just did, on the page that answers it.
	Result *device.CampaignCancel
}

// Chart geometry, in the SVG's user units.
const (
	chartW, chartH = 1000.0, 200.0
	chartMinutes   = 180 // the chart shows at most the last 3 hours
)

func (u *ui) campaign(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.Campaigns == nil {
		u.fail(w, r, p, notConfigured("campaign progress"))
		return
	}
	id, err := campaignID(r)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	cp, err := u.o.Campaigns.Campaign(r.Context(), id)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.render(w, r, p, http.StatusOK, "campaign.html", fmt.Sprintf("Campaign %d: %s", cp.ID, cp.Operation.Label()), "campaigns", campaignView(cp, u.loc))
}

// campaignView lays out the progress bar and the chart.
func campaignView(cp device.CampaignProgress, loc *time.Location) campaignData {
	cd := campaignData{CampaignProgress: cp, OpLabel: cp.Operation.Label(), Active: cp.Pending+cp.InProgress > 0}
	total := cp.Done + cp.InProgress + cp.Pending + cp.Failed + cp.Other
	if total > 0 {
		cd.Percent = cp.Done * 100 / total
	}
	x := 0.0
	for _, s := range []segment{
		{Class: "bar-done", Label: "Done", Count: cp.Done},
		{Class: "bar-progress", Label: "In progress", Count: cp.InProgress},
		{Class: "bar-pending", Label: "Pending", Count: cp.Pending},
		{Class: "bar-failed", Label: "Failed", Count: cp.Failed},
		{Class: "bar-other", Label: "Other", Count: cp.Other},
	} {
		if total > 0 {
			s.X, s.Width = x, chartW*float64(s.Count)/float64(total)
			x += s.Width
		}
		cd.Segments = append(cd.Segments, s)
	}
	pm := cp.PerMinute
	if len(pm) > chartMinutes {
		pm = pm[len(pm)-chartMinutes:]
	}
	completions := 0
	for _, m := range pm {
		completions += m.Count
	}
	// No chart of empty minutes before the first completion.
	if completions > 0 {
		cd.ChartFrom, cd.ChartTo = pm[0].Minute, pm[len(pm)-1].Minute
		for _, m := range pm {
			cd.ChartMax = max(cd.ChartMax, m.Count)
		}
		bw := chartW / float64(len(pm))
		for i, m := range pm {
			h := 0.0
			if cd.ChartMax > 0 {
				h = (chartH - 20) * float64(m.Count) / float64(cd.ChartMax)
			}
			cd.Bars = append(cd.Bars, bar{
				X: float64(i) * bw, Width: max(bw*0.85, 0.5), Y: chartH - h, Height: h,
				Title: fmt.Sprintf("%s: %d", m.Minute.In(loc).Format("15:04"), m.Count),
			})
		}
	}
	switch {
	case !cd.Active:
		cd.TimeLeft = "finished"
	case cp.RemainingKnown:
		cd.TimeLeft = "about " + roundDuration(cp.Remaining) + " at the rate of the last 15 minutes"
	default:
		cd.TimeLeft = "unknown until phones complete"
	}
	return cd
}

// roundDuration is d in minutes (or seconds when short).
func roundDuration(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h == 0 {
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}
