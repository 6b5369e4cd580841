package webui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
)

// paramRow is one Service Parameter as the form shows it.
type paramRow struct {
	system.Parameter
	Text        string // the value as the form holds it
	DefaultText string
	Multiline   bool
	Boolean     bool
	Error       string
	// Options are the select's, for a parameter with a fixed set of
	// values (Choices); nil otherwise.
	Options []option
	// InUse says what the running service uses when that is not the
	// value shown (a flag or environment variable overrides the file, or
	// the file changed since the start); "" when it is the value shown.
	InUse string
}

// paramsData is the Service Parameters page's content.
type paramsData struct {
	Rows    []paramRow
	Error   string
	Saved   bool
	Restart bool // a saved parameter takes effect at the next start
	Nothing bool // the save changed nothing
}

// paramText is a parameter value as form text: a list one item a line.
func paramText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []string:
		return strings.Join(x, "\n")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = paramText(e)
		}
		return strings.Join(parts, "\n")
	}
	return fmt.Sprint(v)
}

// sameValue reports whether two JSON-native values are equal as JSON
// (so an integer equals the float64 a decoder made of it).
func sameValue(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

func (u *ui) rowsOf(ps []system.Parameter) []paramRow {
	rows := make([]paramRow, len(ps))
	for i, p := range ps {
		rows[i] = paramRow{Parameter: p, Text: paramText(p.Value), DefaultText: paramText(p.Default),
			Multiline: p.Type == system.TypeList, Boolean: p.Type == system.TypeBoolean}
		rows[i].Options = choiceOptions(p.Choices, rows[i].Text)
		rows[i].InUse = u.inUseNote(p, rows[i].Text)
	}
	return rows
}

func (u *ui) parameters(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.System == nil {
		u.fail(w, r, p, notConfigured("Service Parameters"))
		return
	}
	ps, err := u.o.System.Parameters(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	q := r.URL.Query()
	d := paramsData{Rows: u.rowsOf(ps), Saved: q.Get("saved") == "1", Restart: q.Get("restart") == "1", Nothing: q.Get("saved") == "0"}
	u.render(w, r, p, http.StatusOK, "parameters.html", "Service Parameter Configuration", "parameters", d)
}

// parametersSave saves the parameters whose text changed, all or none.
func (u *ui) parametersSave(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.System == nil {
		u.fail(w, r, p, notConfigured("Service Parameters"))
		return
	}
	ps, err := u.o.System.Parameters(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	parse := u.o.ParseParam
	if parse == nil {
		parse = system.ParseParamValue
	}
	rows := u.rowsOf(ps)
	set := map[string]any{}
	restart, bad := false, false
	for i := range rows {
		row := &rows[i]
		vals, ok := r.PostForm[row.Name]
		if !ok {
			continue // not on the form: unchanged
		}
		text := strings.ReplaceAll(vals[0], "\r\n", "\n")
		if text == row.Text {
			continue
		}
		row.Text = text
		v, err := parse(row.Parameter, text)
		if err != nil {
			row.Error, bad = fault.ProblemOf(err).Detail, true
			continue
		}
		if sameValue(v, row.Value) {
			continue // written differently, the same value
		}
		set[row.Name] = v
		restart = restart || row.Restart
	}
	d := paramsData{Rows: rows}
	status := http.StatusUnprocessableEntity
	if !bad {
		if len(set) == 0 {
			http.Redirect(w, r, "/system/parameters?saved=0", http.StatusSeeOther)
			return
		}
		_, err := u.o.System.UpdateParameters(r.Context(), p.Actor(), set)
		if err == nil {
			target := "/system/parameters?saved=1"
			if restart {
				target += "&restart=1"
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		pr := u.problem("update parameters", err)
		status = pr.Status
		placed := false
		for i := range d.Rows {
			if pr.Field != "" && d.Rows[i].Name == pr.Field {
				d.Rows[i].Error, placed = pr.Detail, true
			}
		}
		if !placed {
			d.Error = pr.Detail
		}
	}
	u.render(w, r, p, status, "parameters.html", "Service Parameter Configuration", "parameters", d)
}

// activationData is the Service Activation page's content.
type activationData struct {
	system.Activation
	Error string
}

func (u *ui) activation(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.System == nil {
		u.fail(w, r, p, notConfigured("Service Activation"))
		return
	}
	a, err := u.o.System.Activation(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.render(w, r, p, http.StatusOK, "activation.html", "Service Activation", "activation", activationData{Activation: a})
}

func (u *ui) activationSave(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.System == nil {
		u.fail(w, r, p, notConfigured("Service Activation"))
		return
	}
	var active bool
	switch r.PostFormValue("action") {
	case "activate":
		active = true
	case "deactivate":
	default:
		u.fail(w, r, p, fault.InvalidField("action", "action %q: want activate or deactivate", r.PostFormValue("action")))
		return
	}
	if _, err := u.o.System.SetActive(r.Context(), p.Actor(), active); err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/serviceability/activation", http.StatusSeeOther)
}

// certificateFile downloads the CAPF certificate (the active one, or the
// CA of the set ?id= names): PEM, DER, or the PEM named by its subject
// hash (<hash>.0) for an OpenSSL certificate directory.
func (u *ui) certificateFile(w http.ResponseWriter, r *http.Request, p account.Principal) {
	c, err := u.capfCert(r.Context(), r.URL.Query().Get("id"))
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	format := r.URL.Query().Get("format")
	name := "capf." + format
	switch format {
	case "", "pem":
		name = "capf.pem"
	case "der":
	case "hash":
		if name, err = ca.HashFileName(c); err != nil {
			u.fail(w, r, p, err)
			return
		}
	default:
		u.fail(w, r, p, fault.InvalidField("format", "format %q: want pem, der or hash", format))
		return
	}
	// Every download is audited; one that cannot be is refused.
	sum := sha256.Sum256(c.Raw)
	detail := fmt.Sprintf("downloaded from the web UI as %s, sha256 %s", name, hex.EncodeToString(sum[:]))
	if err := u.o.Devices.RecordCAExport(r.Context(), p.Actor(), detail); err != nil {
		u.fail(w, r, p, err)
		return
	}
	if format != "hash" {
		writeCert(w, r, p, u, c.Raw, "capf", format)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// auditData is the Audit page's content.
type auditData struct {
	Target string
	Limit  int
	Events []device.AuditEvent
}

func (u *ui) audit(w http.ResponseWriter, r *http.Request, p account.Principal) {
	q := r.URL.Query()
	d := auditData{Target: strings.TrimSpace(q.Get("target")), Limit: 100}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		d.Limit = min(n, 1000)
	}
	evs, err := u.o.Devices.Audit(r.Context(), device.AuditQuery{Target: d.Target, Limit: d.Limit})
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d.Events = evs
	u.render(w, r, p, http.StatusOK, "audit.html", "Audit", "audit", d)
}

// dashboardData is the dashboard's content.
type dashboardData struct {
	device.Dashboard
	Campaigns    []device.Campaign
	ExpiringHref string // the search for the LSCs that expire within 30 days
	// ExpiringWeekHref is the search for those that expire within 7 days.
	ExpiringWeekHref string
	Error            string
	Banners          []banner
}

func (u *ui) dashboard(w http.ResponseWriter, r *http.Request, p account.Principal) {
	var d dashboardData
	soon := u.o.Devices.Now().Add(device.ExpiringWithin).UTC().Format(time.RFC3339)
	d.ExpiringHref = search{Where: []string{"lsc-status:equals:valid", "lsc-expires:before:" + soon}, Rows: defaultRows, Page: 1}.href("/phones")
	week := u.o.Devices.Now().Add(device.ExpiringUrgent).UTC().Format(time.RFC3339)
	d.ExpiringWeekHref = search{Where: []string{"lsc-status:equals:valid", "lsc-expires:before:" + week}, Rows: defaultRows, Page: 1}.href("/phones")
	if u.o.Campaigns == nil {
		d.Error = notConfigured("the dashboard").Error()
		d.Banners = u.banners(r.Context())
	} else {
		db, err := u.compose.Dashboard(r.Context(), u.audience(p))
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		d.Dashboard, d.Banners = db.Dashboard, u.bannersOf(db.Notices)
		cs, err := u.o.Campaigns.Campaigns(r.Context(), 10)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		d.Campaigns = cs
	}
	u.render(w, r, p, http.StatusOK, "dashboard.html", "Dashboard", "dashboard", d)
}
