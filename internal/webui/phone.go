package webui

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/overview"
)

// deadlineLayout is the value format of <input type="datetime-local">.
const deadlineLayout = "2006-01-02T15:04"

// maxFormBytes bounds a form body.
const maxFormBytes = 256 << 10

// phoneForm is the Phone Configuration form as text, so that a refused
// save shows what was entered. Its fields are named like the JSON fields.
type phoneForm struct {
	Name            string
	Description     string
	SecurityProfile string
	AuthMode        string
	AuthString      string
	Operation       string
	Key             string
	Deadline        string
	// LoadedOperation is the Certificate Operation when the form was
	// shown: Save re-arms an operation only if the administrator chose it
	// now, or it is still the one on record (so a form opened before the
	// phone finished does not arm the finished operation again).
	LoadedOperation string
}

func (u *ui) formOf(d device.Device) phoneForm {
	f := phoneForm{
		Name: d.Name, Description: d.Description, SecurityProfile: string(d.SecurityProfile),
		AuthMode: string(d.AuthMode), AuthString: d.AuthString, Operation: string(d.Operation),
		Key: string(d.Key), LoadedOperation: string(d.Operation),
	}
	if !d.Deadline.IsZero() {
		f.Deadline = d.Deadline.In(u.loc).Format(deadlineLayout)
	}
	return f
}

func readPhoneForm(r *http.Request) phoneForm {
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return phoneForm{
		Name: g("name"), Description: r.PostFormValue("description"), SecurityProfile: g("security_profile"),
		AuthMode: g("auth_mode"), AuthString: g("auth_string"), Operation: g("operation"), Key: g("key"),
		Deadline: g("deadline"), LoadedOperation: g("loaded_operation"),
	}
}

// fetchedView is a Troubleshoot certificate as listed.
type fetchedView struct {
	Index     int
	Type      string
	FetchedAt time.Time
	Subject   string
	Serial    string
	NotAfter  time.Time
}

// phoneData is the Phone Configuration page's content.
type phoneData struct {
	New      bool
	Form     phoneForm
	Errors   formErrors
	Notice   string
	Saved    bool
	Device   device.Device
	LSCState string
	// Warning says why the armed operation will fail to authenticate as
	// configured (device.Device.AuthWarning); "" when nothing does.
	Warning    string
	Profiles   []option
	Modes      []option
	Operations []option
	Keys       []option
	History    []device.Attempt
	Fetched    []fetchedView
	Issued     []issuedView
	Inventory  bool // the UI has the inventory of issued LSCs: list Issued
	Events     string
	Confirm    bool // the delete confirmation
	// Snippet is the phone's configuration snippet, as capf phone-config
	// prints it; SnippetError says why there is none.
	Snippet, SnippetError string
	// Servers are the snippet's capfList, host:port in the order phones
	// try them.
	Servers []string
	// LastReset is the phone's latest reset (zero: none); ResetDone says
	// the page follows a reset just asked for ("ok" or "failed").
	LastReset device.Reset
	ResetDone string
}

func (u *ui) phoneData(f phoneForm, d *device.Device) phoneData {
	pd := phoneData{Form: f, Errors: formErrors{}, New: d == nil}
	pd.Profiles = optionsOf(profiles, device.SecurityProfile.Label, f.SecurityProfile)
	pd.Modes = optionsOf(authModes, device.AuthMode.Label, f.AuthMode)
	// Delete and Troubleshoot are offered only when the phone has a
	// certificate on record (or one of them is already scheduled).
	var ops []device.Operation
	for _, o := range operations {
		if o == device.OpDelete || o == device.OpTroubleshoot {
			if (d == nil || d.LSC == nil) && string(o) != f.Operation && (d == nil || d.Operation != o) {
				continue
			}
		}
		ops = append(ops, o)
	}
	pd.Operations = optionsOf(ops, device.Operation.Label, f.Operation)
	pd.Keys = optionsOf(keys, keyLabel, f.Key)
	if d != nil {
		pd.Device = *d
		pd.LSCState = d.LSCState(u.o.Devices.Now())
		pd.Warning = d.AuthWarning(u.o.Devices.Now())
		pd.Events = "/phones/" + url.PathEscape(d.Name) + "/events"
	}
	return pd
}

// issuedView is one LSC issued to the phone, as its page lists it.
type issuedView struct {
	Serial    string
	Status    string
	IssuedAt  time.Time
	NotAfter  time.Time
	RevokedAt time.Time
	Reason    string
	RevokedBy string
}

// phoneHistory is how many attempts the phone page lists.
const phoneHistory = 20

// loadPhone fills the read-only parts of the page from the phone's
// composed detail: history, the LSCs issued to the phone, Troubleshoot
// certificates, the latest reset and the configuration snippet.
func (u *ui) loadPhone(r *http.Request, pd *phoneData) error {
	dt, err := u.compose.DetailOf(r.Context(), pd.Device, phoneHistory)
	if err != nil {
		return err
	}
	u.showDetail(r, pd, dt)
	return nil
}

// showDetail puts the read-only parts of dt on the page.
func (u *ui) showDetail(r *http.Request, pd *phoneData, dt overview.Detail) {
	pd.LSCState, pd.Inventory, pd.History = dt.LSCState, dt.Inventory, dt.History
	for _, rec := range dt.Issued {
		v := issuedView{Serial: rec.Serial, Status: string(rec.Status(dt.At)), IssuedAt: rec.IssuedAt, NotAfter: rec.NotAfter}
		if rec.Revoked() {
			v.RevokedAt, v.Reason, v.RevokedBy = rec.RevokedAt, rec.Reason.String(), rec.RevokedBy
		}
		pd.Issued = append(pd.Issued, v)
	}
	u.showReset(r, pd, dt.LastReset)
	for i, fc := range dt.Fetched {
		fv := fetchedView{Index: i, Type: fc.Type, FetchedAt: fc.FetchedAt}
		if c, err := x509.ParseCertificate(fc.DER); err == nil {
			fv.Subject, fv.Serial, fv.NotAfter = c.Subject.String(), fmt.Sprintf("%X", c.SerialNumber.Bytes()), c.NotAfter
		} else {
			fv.Subject = "(not a parsable certificate)"
		}
		pd.Fetched = append(pd.Fetched, fv)
	}
	pd.Snippet = dt.Snippet
	for _, s := range dt.Servers {
		pd.Servers = append(pd.Servers, s.String())
	}
	if dt.SnippetError != nil {
		pd.SnippetError = fault.ProblemOf(dt.SnippetError).Detail
	}
}

func (u *ui) renderPhone(w http.ResponseWriter, r *http.Request, p account.Principal, status int, pd phoneData) {
	title := "Phone Configuration: " + pd.Device.Name
	if pd.New {
		title = "Phone Configuration (new phone)"
	} else if err := u.loadPhone(r, &pd); err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.render(w, r, p, status, "phone.html", title, "phones", pd)
}

func (u *ui) phoneShow(w http.ResponseWriter, r *http.Request, p account.Principal) {
	dt, err := u.compose.Detail(r.Context(), u.audience(p), r.PathValue("name"), phoneHistory)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	pd := u.phoneData(u.formOf(dt.Device), &dt.Device)
	pd.Saved = r.URL.Query().Get("saved") == "1"
	u.showDetail(r, &pd, dt)
	u.render(w, r, p, http.StatusOK, "phone.html", "Phone Configuration: "+dt.Device.Name, "phones", pd)
}

func (u *ui) phoneNew(w http.ResponseWriter, r *http.Request, p account.Principal) {
	f := phoneForm{SecurityProfile: string(device.NonSecure), AuthMode: string(device.AuthNull), Operation: string(device.OpNone)}
	u.renderPhone(w, r, p, http.StatusOK, u.phoneData(f, nil))
}

// generate fills in a new authentication string (Generate String): the
// form is shown again with it, unsaved, as CallManager does.
func (u *ui) generate(f *phoneForm) (string, error) {
	s, err := device.GenerateAuthString(u.rand, device.GeneratedStringLen)
	if err != nil {
		return "", err
	}
	f.AuthString = s
	notice := "A new authentication string was generated. Save to keep it."
	if f.AuthMode != string(device.AuthString) {
		f.AuthMode = string(device.AuthString)
		notice = "A new authentication string was generated and Authentication Mode set to By Authentication String. Save to keep them."
	}
	return notice, nil
}

func (u *ui) phoneSave(w http.ResponseWriter, r *http.Request, p account.Principal) {
	d, err := u.o.Devices.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	f := readPhoneForm(r)
	f.Name = d.Name
	pd := u.phoneData(f, &d)
	if r.PostFormValue("generate_string") != "" {
		notice, err := u.generate(&pd.Form)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		pd = u.phoneData(pd.Form, &d)
		pd.Notice = notice
		u.renderPhone(w, r, p, http.StatusOK, pd)
		return
	}
	ch, err := u.changeOf(f, d)
	if err == nil {
		_, err = u.o.Devices.Change(r.Context(), p.Actor(), d.Name, ch)
	}
	if err != nil {
		status := u.formError(pd.Errors, err)
		if status == http.StatusNotFound {
			u.fail(w, r, p, err)
			return
		}
		u.renderPhone(w, r, p, status, pd)
		return
	}
	http.Redirect(w, r, "/phones/"+url.PathEscape(d.Name)+"?saved=1", http.StatusSeeOther)
}

func (u *ui) phoneCreate(w http.ResponseWriter, r *http.Request, p account.Principal) {
	f := readPhoneForm(r)
	if r.PostFormValue("generate_string") != "" {
		notice, err := u.generate(&f)
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		pd := u.phoneData(f, nil)
		pd.Notice = notice
		u.renderPhone(w, r, p, http.StatusOK, pd)
		return
	}
	nd, err := u.deviceOf(f)
	if err == nil {
		nd, err = u.o.Devices.Add(r.Context(), p.Actor(), nd, false)
	}
	if err != nil {
		pd := u.phoneData(f, nil)
		status := u.formError(pd.Errors, err)
		if fault.KindOf(err) == fault.Conflict {
			pd.Errors["name"], pd.Errors[""] = pd.Errors[""], ""
		}
		u.renderPhone(w, r, p, status, pd)
		return
	}
	http.Redirect(w, r, "/phones/"+url.PathEscape(nd.Name)+"?saved=1", http.StatusSeeOther)
}

// changeOf is the form as a change of d, parsed by the one parser of
// device changes: every field the administrator set, the authentication
// string only if it was edited (so a string left in the box does not block
// a change of mode), the deadline only if it differs. Every field that is
// wrong is named.
func (u *ui) changeOf(f phoneForm, d device.Device) (device.Change, error) {
	in := device.ChangeInput{
		Description: &f.Description, SecurityProfile: &f.SecurityProfile, AuthMode: &f.AuthMode,
		Operation: &f.Operation, Key: &f.Key, Deadline: &f.Deadline, Loc: u.loc,
	}
	if f.AuthString != d.AuthString {
		in.AuthString = &f.AuthString
	}
	c, err := in.Parse()
	if err != nil {
		return c, err
	}
	if op := *c.Operation; f.Operation == f.LoadedOperation && (op == device.OpNone || d.Operation != op) {
		c.Operation = nil
	}
	if c.Deadline.Equal(d.Deadline) {
		c.Deadline = nil
	}
	return c, nil
}

// deviceOf is the new-phone form as a device, parsed by the one parser of
// device changes; empty choices take the service's defaults.
func (u *ui) deviceOf(f phoneForm) (device.Device, error) {
	name, nameErr := device.NormalizeName(f.Name)
	given := func(s *string) *string {
		if *s == "" {
			return nil
		}
		return s
	}
	c, err := device.ChangeInput{
		Description: &f.Description, SecurityProfile: given(&f.SecurityProfile), AuthMode: given(&f.AuthMode),
		AuthString: given(&f.AuthString), Operation: given(&f.Operation), Key: given(&f.Key),
		Deadline: &f.Deadline, Loc: u.loc,
	}.Parse()
	if fe := (*device.FieldErrors)(nil); nameErr != nil && errors.As(err, &fe) {
		return device.Device{}, &device.FieldErrors{Errors: append([]error{nameErr}, fe.Errors...)}
	}
	if nameErr != nil {
		return device.Device{}, nameErr
	}
	if err != nil {
		return device.Device{}, err
	}
	d := device.Device{Name: name}
	c.Apply(&d)
	return d, nil
}

// phoneDelete asks for confirmation, then removes the phone.
func (u *ui) phoneDelete(w http.ResponseWriter, r *http.Request, p account.Principal) {
	d, err := u.o.Devices.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		u.render(w, r, p, http.StatusOK, "confirm_delete.html", "Delete phone "+d.Name+"?", "phones", d)
		return
	}
	if err := u.o.Devices.Remove(r.Context(), p.Actor(), d.Name); err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/phones", http.StatusSeeOther)
}

// revokeData is the revocation confirmation page's.
type revokeData struct {
	Device  string
	Serial  string
	Reason  string
	Reasons []option
}

// phoneRevoke revokes an LSC issued to the phone, after a confirmation
// page that names it and the reason.
func (u *ui) phoneRevoke(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.Certificates == nil {
		u.fail(w, r, p, fault.New(fault.Unavailable, "issued certificates are not available on this server"))
		return
	}
	name := r.PathValue("name")
	rec, err := u.o.Certificates.Get(r.Context(), r.PostFormValue("serial"))
	if err == nil && !strings.EqualFold(rec.Device, name) {
		err = fault.NotFoundf("phone %s has no LSC with serial %s", name, rec.Serial)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	reason := r.PostFormValue("reason")
	if r.PostFormValue("confirm") != "yes" {
		if reason == "" {
			reason = lsc.ReasonKeyCompromise.String()
		}
		var opts []option
		for _, rs := range lsc.AdminReasons {
			opts = append(opts, option{Value: rs.String(), Label: rs.String(), Selected: rs.String() == reason})
		}
		u.render(w, r, p, http.StatusOK, "confirm_revoke.html", "Revoke LSC "+rec.Serial+"?", "phones",
			revokeData{Device: rec.Device, Serial: rec.Serial, Reason: reason, Reasons: opts})
		return
	}
	if _, err := u.o.Certificates.Revoke(r.Context(), p.Actor(), rec.Serial, reason); err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/phones/"+url.PathEscape(rec.Device), http.StatusSeeOther)
}

// phoneCertificate downloads a Troubleshoot certificate, PEM or DER.
func (u *ui) phoneCertificate(w http.ResponseWriter, r *http.Request, p account.Principal) {
	name := r.PathValue("name")
	fs, err := u.o.Devices.Fetched(r.Context(), name)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || i < 0 || i >= len(fs) {
		u.fail(w, r, p, fault.NotFoundf("phone %s has no Troubleshoot certificate number %s", name, r.PathValue("index")))
		return
	}
	fc := fs[i]
	base := fmt.Sprintf("%s-%s-%d", fc.Device, strings.ToLower(fc.Type), i)
	writeCert(w, r, p, u, fc.DER, base, r.URL.Query().Get("format"))
}

// writeCert sends der as a download: format pem (the default) or der.
func writeCert(w http.ResponseWriter, r *http.Request, p account.Principal, u *ui, der []byte, base, format string) {
	switch format {
	case "", "pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", base+".pem"))
		_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	case "der":
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", base+".der"))
		_, _ = w.Write(der)
	default:
		u.fail(w, r, p, fault.InvalidField("format", "format %q: want pem or der", format))
	}
}
