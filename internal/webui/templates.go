package webui

import (
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// parsePages parses every page with the layout. A template error is a bug
// caught by the tests, so it panics.
func parsePages(funcs template.FuncMap) map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		t := template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
		pages[base] = t
	}
	return pages
}

// funcs are the helpers the templates use.
func (u *ui) funcs() template.FuncMap {
	return template.FuncMap{
		"when":         u.when,
		"whenShort":    u.whenShort,
		"opLabel":      func(o device.Operation) string { return o.Label() },
		"modeLabel":    func(m device.AuthMode) string { return m.Label() },
		"profLabel":    func(p device.SecurityProfile) string { return p.Label() },
		"keyLabel":     keyLabel,
		"add":          func(a, b int) int { return a + b },
		"statusClass":  statusClass,
		"contactLabel": contactLabel,
		"contactClass": contactClass,
		"upper":        strings.ToUpper,
	}
}

// contactLabel names the outcome of a phone's contact in words.
func contactLabel(outcome string) string {
	switch outcome {
	case device.ContactInProgress:
		return "Session in progress"
	case device.ContactSuccess:
		return "Operation succeeded"
	case device.ContactFailed:
		return "Failed"
	case device.ContactRetryLater:
		return "Told to retry later (RETRY_LATER)"
	case device.ContactNoAction:
		return "Nothing pending"
	case device.ContactRefused:
		return "Refused"
	}
	return outcome
}

// contactClass is the CSS class of a contact's outcome.
func contactClass(outcome string) string {
	switch outcome {
	case device.ContactSuccess:
		return "st-ok"
	case device.ContactFailed, device.ContactRefused:
		return "st-fail"
	case device.ContactInProgress, device.ContactRetryLater:
		return "st-busy"
	}
	return "st-none"
}

// when formats t in the UI's zone, or "" for the zero time.
func (u *ui) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(u.loc).Format("2006-01-02 15:04:05 MST")
}

// whenShort formats t to the minute.
func (u *ui) whenShort(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(u.loc).Format("2006-01-02 15:04")
}

// keyLabel names a key spec as Key Size (Bits) does: "RSA 2048", "EC P-256".
func keyLabel(k device.KeySpec) string { return k.Label() }

// statusClass is the CSS class of an Operation Status: ok, fail, busy or
// "".
func statusClass(s string) string {
	switch {
	case strings.Contains(s, "Success"):
		return "st-ok"
	case strings.Contains(s, "Failed"):
		return "st-fail"
	case s == device.StatusPending || s == device.StatusInProgress:
		return "st-busy"
	}
	return "st-none"
}

// The choices of the device selects, in CallManager's order.
var (
	profiles   = []device.SecurityProfile{device.NonSecure, device.Authenticated, device.Encrypted}
	authModes  = []device.AuthMode{device.AuthString, device.AuthNull, device.AuthLSC, device.AuthMIC}
	operations = []device.Operation{device.OpNone, device.OpInstall, device.OpDelete, device.OpTroubleshoot}
	keys       = []device.KeySpec{device.RSA512, device.RSA1024, device.RSA2048, device.RSA3072, device.RSA4096, device.EC256, device.EC384, device.EC521}
)

// option is one <option> of a select.
type option struct {
	Value, Label string
	Selected     bool
}

func optionsOf[T ~string](vals []T, label func(T) string, selected string) []option {
	out := make([]option, 0, len(vals))
	for _, v := range vals {
		out = append(out, option{Value: string(v), Label: label(v), Selected: string(v) == selected})
	}
	return out
}
