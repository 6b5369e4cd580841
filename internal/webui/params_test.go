package webui_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/webui"
)

// TestParameterSelectsAndValuesInUse: a parameter with a fixed set of
// values is a select with its labels (a hand-edited value outside the set
// stays selected, so a save does not change it unseen), and a node
// setting whose value in force is not the one shown says so: overridden
// by a flag, or the file changed since the start.
func TestParameterSelectsAndValuesInUse(t *testing.T) {
	e := newEnv(t, func(o *webui.Options) {
		o.InUse = map[string]webui.InUse{
			"log_level":  {Value: "debug", Source: "the --log-level flag"},
			"listen":     {Value: ":3805"},
			"log_format": {Value: "text"},
		}
	})
	e.system.params = append(e.system.params,
		system.Parameter{Name: "log_level", Value: "info", Default: "info", Type: system.TypeString, Restart: true, Choices: system.ChoicesOf("log_level")},
		system.Parameter{Name: "log_format", Value: "verbose", Default: "text", Type: system.TypeString, Restart: true, Choices: system.ChoicesOf("log_format")},
		system.Parameter{Name: "default_key", Value: "rsa2048", Default: "rsa2048", Type: system.TypeString, Choices: system.ChoicesOf("default_key")},
	)
	w := e.get("/system/parameters", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w,
		`<select id="p-log_level" name="log_level"`, `<option value="info" selected>Info</option>`, `<option value="debug">Debug</option>`,
		`<select id="p-default_key" name="default_key"`, `<option value="rsa2048" selected>RSA 2048</option>`, `<option value="ec256">EC P-256</option>`,
		`<option value="verbose" selected>verbose (not one of the choices)</option>`,
		"In use on this node: Debug, set by the --log-level flag, which overrides capf.json.",
		"In use on this node: :3805, as capf.json was when capf serve started; the value above applies at the next start.",
		"In use on this node: Text (key=value lines), as capf.json was")
	wantNoBody(t, w, `name="log_level" type="text"`, `name="default_key" type="text"`)

	// The select's value is what is saved.
	wantRedirect(t, e.post("/system/parameters", "admin", url.Values{"log_level": {"warn"}, "default_key": {"ec256"}}), "/system/parameters?saved=1&restart=1")
	if got := e.system.updates[0]; len(got) != 2 || got["log_level"] != "warn" || got["default_key"] != "ec256" {
		t.Errorf("update %v", got)
	}
	// No note when the value in force is the one shown, nor for a fleet
	// parameter.
	e2 := newEnv(t, func(o *webui.Options) { o.InUse = map[string]webui.InUse{"listen": {Value: ":3804"}} })
	wantNoBody(t, e2.get("/system/parameters", "admin"), "In use on this node")
}

// TestHostOnlyParameterReadOnly: a node setting only the host may set
// (the database, the trust-file directory, the reset notifier …) is shown
// read-only and without a form name, so the page never sends it; a save
// of the other fields leaves it out.
func TestHostOnlyParameterReadOnly(t *testing.T) {
	e := newEnv(t)
	e.system.params = append(e.system.params,
		system.Parameter{Name: "trust_file_dir", Value: "tftp", Default: "", Type: system.TypeString, Restart: true, HostOnly: true},
	)
	w := e.get("/system/parameters", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `<input id="p-trust_file_dir" type="text" value="tftp" readonly`, "A node setting only the host's administrator sets")
	wantNoBody(t, w, `name="trust_file_dir"`)
	wantRedirect(t, e.post("/system/parameters", "admin", url.Values{"listen": {":3805"}}), "/system/parameters?saved=1&restart=1")
	if got := e.system.updates[0]; len(got) != 1 || got["trust_file_dir"] != nil {
		t.Errorf("update %v, want listen alone", got)
	}
}
