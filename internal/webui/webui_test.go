package webui_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

func TestAnonymousPagesRedirectToLogin(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/", "/phones?where=name%3Abegins-with%3ASEP", "/phones/SEP000000000001", "/system/parameters", "/audit", "/campaigns/7"} {
		t.Run(path, func(t *testing.T) {
			w := e.get(path, "")
			wantRedirect(t, w, "/login?next="+url.QueryEscape(path))
		})
	}
	t.Run("post", func(t *testing.T) {
		w := e.do(http.MethodPost, "/phones/new", "", url.Values{"name": {"SEP000000000001"}})
		wantRedirect(t, w, "/login")
	})
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		headers    map[string]string
		wantStatus int
		wantBody   string
		wantLoc    string
	}{
		{name: "ok", user: "alice", pass: "secret", wantStatus: http.StatusSeeOther, wantLoc: "/phones"},
		{name: "wrong password", user: "alice", pass: "nope", wantStatus: http.StatusUnauthorized, wantBody: "wrong username or password"},
		{name: "cross-site", user: "alice", pass: "secret", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: http.StatusForbidden, wantBody: "another site"},
		{name: "foreign origin", user: "alice", pass: "secret", headers: map[string]string{"Origin": "https://evil.example"}, wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"username": {tt.user}, "password": {tt.pass}, "next": {"/phones"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			checkHTML(t, "/login", w)
			wantStatus(t, w, tt.wantStatus)
			wantBody(t, w, tt.wantBody)
			if tt.wantLoc != "" {
				if got := w.Header().Get("Location"); got != tt.wantLoc {
					t.Errorf("Location %q, want %q", got, tt.wantLoc)
				}
				if c := w.Header().Get("Set-Cookie"); !strings.HasPrefix(c, webauth.CookieName+"=new-session") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "Secure") {
					t.Errorf("Set-Cookie %q", c)
				}
			} else if c := w.Header().Get("Set-Cookie"); c != "" {
				t.Errorf("a failed login set a cookie: %q", c)
			}
		})
	}
}

func TestLoginThrottledShowsWait(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.do(http.MethodPost, "/login", "", url.Values{"username": {"alice"}, "password": {"bad"}})
	}
	w := e.do(http.MethodPost, "/login", "", url.Values{"username": {"alice"}, "password": {"secret"}})
	wantStatus(t, w, http.StatusTooManyRequests)
	wantBody(t, w, `id="login-error"`, "try again in 42 seconds", `value="alice"`)
}

func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	w := e.get("/login?next=%2Fphones", "")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `name="username"`, `name="password"`, `name="next" value="/phones"`)
	// An offsite next is not followed.
	w = e.get("/login?next=%2F%2Fevil.example", "")
	wantBody(t, w, `name="next" value="/"`)
	// Logged in already: on to the page.
	w = e.get("/login?next=%2Faudit", "admin")
	wantRedirect(t, w, "/audit")
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	w := e.post("/logout", "admin", nil)
	wantRedirect(t, w, "/login")
	if len(e.accounts.logouts) != 1 || e.accounts.logouts[0] != "sess-admin" {
		t.Errorf("logouts %v", e.accounts.logouts)
	}
	if c := w.Header().Get("Set-Cookie"); !strings.Contains(c, "Max-Age=0") {
		t.Errorf("cookie not cleared: %q", c)
	}
}

// TestEveryPageRenders fetches every page as an admin and as a viewer;
// checkHTML checks each for inline script, labels and CSRF fields.
func TestEveryPageRenders(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Description: "lobby"}, device.Device{Name: "SEP000000000002", AuthMode: device.AuthString, Operation: device.OpInstall})
	e.giveLSC("SEP000000000002")
	if err := e.store.SaveFetchedCertificate(context.Background(), device.FetchedCertificate{Device: "SEP000000000002", Type: "MIC", FetchedAt: testNow, DER: e.cert.Raw}); err != nil {
		t.Fatal(err)
	}
	pages := []string{"/", "/phones", "/phones?where=name%3Abegins-with%3ASEP", "/phones/new", "/phones/SEP000000000001", "/phones/SEP000000000002",
		"/bulk?where=name%3Abegins-with%3ASEP", "/campaigns", "/campaigns/7", "/import", "/system/parameters", "/serviceability/activation",
		"/security/certificate", "/audit", "/audit?target=SEP000000000001"}
	for _, as := range []string{"admin", "viewer"} {
		for _, p := range pages {
			t.Run(as+p, func(t *testing.T) {
				w := e.get(p, as)
				wantStatus(t, w, http.StatusOK)
				wantBody(t, w, `<script src="/static/app.js" defer></script>`, `href="/static/app.css"`, `<nav aria-label="Main">`)
			})
		}
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	for path, ctype := range map[string]string{"/static/app.js": "text/javascript", "/static/app.css": "text/css"} {
		w := e.get(path, "")
		wantStatus(t, w, http.StatusOK)
		if !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) {
			t.Errorf("%s: Content-Type %q", path, w.Header().Get("Content-Type"))
		}
	}
	wantStatus(t, e.get("/static/", ""), http.StatusNotFound)
	wantStatus(t, e.get("/static/nope.js", ""), http.StatusNotFound)
}

func TestNotFoundPage(t *testing.T) {
	e := newEnv(t)
	w := e.get("/phones/SEP00000000FFFF", "admin")
	wantStatus(t, w, http.StatusNotFound)
	w = e.get("/nowhere", "admin")
	wantStatus(t, w, http.StatusNotFound)
	wantBody(t, w, "no page at /nowhere")
}

func rowNames(body string) []string {
	re := regexp.MustCompile(`data-status-for="([^"]+)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestFindAndListPhones(t *testing.T) {
	e := newEnv(t)
	e.add(
		device.Device{Name: "SEP000000000001", Description: "lobby east"},
		device.Device{Name: "SEP000000000002", Description: "lobby west", AuthMode: device.AuthString, AuthString: "1234", Operation: device.OpInstall},
		device.Device{Name: "SEP000000000003", Description: "office"},
		device.Device{Name: "CSFALICE", Description: "softphone"},
	)
	t.Run("find redirects to the carried condition", func(t *testing.T) {
		w := e.get("/phones?field=description&match=contains&value=lobby&find=1", "admin")
		wantRedirect(t, w, "/phones?where=description%3Acontains%3Alobby")
		w = e.get("/phones?where=description%3Acontains%3Alobby", "admin")
		wantStatus(t, w, http.StatusOK)
		wantBody(t, w, `data-total="2"`, `Description contains &#34;lobby&#34;`)
		if got := rowNames(w.Body.String()); strings.Join(got, ",") != "SEP000000000001,SEP000000000002" {
			t.Errorf("rows %v", got)
		}
	})
	t.Run("search within results adds a condition", func(t *testing.T) {
		w := e.get("/phones?where=description%3Acontains%3Alobby&field=description&match=ends-with&value=west&within=1", "admin")
		wantRedirect(t, w, "/phones?where=description%3Acontains%3Alobby&where=description%3Aends-with%3Awest")
		w = e.get(w.Header().Get("Location"), "admin")
		if got := rowNames(w.Body.String()); strings.Join(got, ",") != "SEP000000000002" {
			t.Errorf("rows %v", got)
		}
	})
	t.Run("find replaces the conditions", func(t *testing.T) {
		w := e.get("/phones?where=description%3Acontains%3Alobby&field=name&match=begins-with&value=CSF&find=1", "admin")
		wantRedirect(t, w, "/phones?where=name%3Abegins-with%3ACSF")
	})
	t.Run("empty value finds every phone", func(t *testing.T) {
		w := e.get("/phones?field=name&match=begins-with&value=&find=1", "admin")
		wantRedirect(t, w, "/phones")
	})
	t.Run("is empty takes no value", func(t *testing.T) {
		w := e.get("/phones?field=auth-string&match=is-not-empty&find=1", "admin")
		wantRedirect(t, w, "/phones?where=auth-string%3Ais-not-empty")
		w = e.get(w.Header().Get("Location"), "admin")
		if got := rowNames(w.Body.String()); strings.Join(got, ",") != "SEP000000000002" {
			t.Errorf("rows %v", got)
		}
	})
	t.Run("label values of a choice", func(t *testing.T) {
		w := e.get("/phones?field=operation&match=equals&value=Install%2FUpgrade&find=1", "admin")
		wantRedirect(t, w, "/phones?where=operation%3Aequals%3Ainstall")
	})
	t.Run("LSC expires before a date", func(t *testing.T) {
		w := e.get("/phones?field=lsc-expires&match=before&value=2027-01-01&find=1", "admin")
		wantRedirect(t, w, "/phones?where=lsc-expires%3Abefore%3A2027-01-01T00%3A00%3A00Z")
	})
	t.Run("bad row is shown next to the value", func(t *testing.T) {
		w := e.get("/phones?field=lsc-status&match=equals&value=shiny&find=1", "admin")
		wantStatus(t, w, http.StatusUnprocessableEntity)
		wantBody(t, w, `id="value-error"`, "want none, valid, expired or revoked", `value="shiny"`)
		w = e.get("/phones?field=lsc-expires&match=contains&value=x&find=1", "admin")
		wantStatus(t, w, http.StatusUnprocessableEntity)
		wantBody(t, w, `id="match-error"`)
	})
	t.Run("bad carried condition", func(t *testing.T) {
		w := e.get("/phones?where=bogus", "admin")
		wantStatus(t, w, http.StatusUnprocessableEntity)
		wantBody(t, w, `id="search-error"`, "FIELD:MATCH:VALUE")
	})
	t.Run("sort by column and reverse", func(t *testing.T) {
		w := e.get("/phones", "admin")
		wantBody(t, w, `href="/phones?sort=description"`, `aria-sort="ascending"`)
		w = e.get("/phones?sort=description", "admin")
		if got := strings.Join(rowNames(w.Body.String()), ","); got != "SEP000000000001,SEP000000000002,SEP000000000003,CSFALICE" {
			t.Errorf("rows %v", got)
		}
		wantBody(t, w, `href="/phones?desc=1&amp;sort=description"`)
		w = e.get("/phones?sort=description&desc=1", "admin")
		if got := strings.Join(rowNames(w.Body.String()), ","); got != "CSFALICE,SEP000000000003,SEP000000000002,SEP000000000001" {
			t.Errorf("rows %v", got)
		}
	})
	t.Run("paging", func(t *testing.T) {
		w := e.get("/phones?rows=3", "admin")
		wantBody(t, w, `data-total="4"`, "showing 1&ndash;3", "Page 1 of 2", `href="/phones?page=2&amp;rows=3"`)
		w = e.get("/phones?rows=3&page=2", "admin")
		wantBody(t, w, "showing 4&ndash;4", "Page 2 of 2", `rel="prev"`)
		if got := rowNames(w.Body.String()); strings.Join(got, ",") != "SEP000000000003" {
			t.Errorf("page 2 rows %v", got)
		}
	})
	t.Run("bulk and report links carry the search", func(t *testing.T) {
		w := e.get("/phones?where=description%3Acontains%3Alobby&sort=description&page=1", "admin")
		wantBody(t, w, `href="/bulk?where=description%3Acontains%3Alobby"`, `href="/report.csv?where=description%3Acontains%3Alobby"`)
	})
}

func phoneForm(d device.Device) url.Values {
	v := url.Values{
		"description": {d.Description}, "security_profile": {string(d.SecurityProfile)}, "auth_mode": {string(d.AuthMode)},
		"auth_string": {d.AuthString}, "operation": {string(d.Operation)}, "key": {string(d.Key)}, "loaded_operation": {string(d.Operation)},
		"save": {"1"},
	}
	if !d.Deadline.IsZero() {
		v.Set("deadline", d.Deadline.UTC().Format("2006-01-02T15:04"))
	}
	return v
}

func TestPhoneConfigurationSave(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Description: "lobby"})
	ctx := context.Background()
	d, _ := e.devices.Get(ctx, "SEP000000000001")

	w := e.get("/phones/SEP000000000001", "admin")
	wantBody(t, w, `id="status"`, `name="auth_string"`, `name="generate_string"`, `name="deadline" type="datetime-local"`,
		"Operation Completes By (UTC)", "Certificate Operation Status", "Key Size (Bits)", `<option value="rsa2048" selected>RSA 2048</option>`,
		`data-events="/phones/SEP000000000001/events"`)
	// No certificate on record: Delete and Troubleshoot are not offered.
	wantNoBody(t, w, `<option value="delete"`, `<option value="troubleshoot"`)

	f := phoneForm(d)
	f.Set("description", "front desk")
	f.Set("auth_mode", "string")
	f.Set("auth_string", "24680")
	f.Set("operation", "install")
	f.Set("key", "ec256")
	f.Set("deadline", "2026-12-01T18:30")
	w = e.post("/phones/SEP000000000001", "admin", f)
	wantRedirect(t, w, "/phones/SEP000000000001?saved=1")
	got, _ := e.devices.Get(ctx, "SEP000000000001")
	if got.Description != "front desk" || got.AuthMode != device.AuthString || got.AuthString != "24680" || got.Operation != device.OpInstall ||
		got.Key != device.EC256 || !got.Deadline.Equal(time.Date(2026, 12, 1, 18, 30, 0, 0, time.UTC)) || got.Status != device.StatusPending {
		t.Errorf("saved %+v", got)
	}
	w = e.get("/phones/SEP000000000001?saved=1", "admin")
	wantBody(t, w, `id="saved"`, `value="2026-12-01T18:30"`, "Operation Pending")

	// The audit names the web actor.
	evs, _ := e.devices.Audit(ctx, device.AuditQuery{Target: "SEP000000000001", Limit: 1})
	if len(evs) != 1 || evs[0].Actor.String() != "web:alice" || evs[0].Actor.Remote != "192.0.2.1" {
		t.Errorf("audit %+v", evs)
	}
}

func TestPhoneConfigurationErrors(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Description: "lobby"})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	tests := []struct {
		name    string
		set     map[string]string
		errID   string // the element of the field's message
		message string
		kept    string // the entered value the form shows again
	}{
		{name: "short string", set: map[string]string{"auth_mode": "string", "auth_string": "12"}, errID: "auth_string", message: "must be 4 to 10 digits", kept: `value="12"`},
		{name: "bad deadline", set: map[string]string{"deadline": "tomorrow"}, errID: "deadline", message: "want a date and time", kept: `value="tomorrow"`},
		{name: "past deadline", set: map[string]string{"operation": "install", "deadline": "2020-01-01T00:00"}, message: "is in the past", kept: `value="2020-01-01T00:00"`},
		{name: "string in secure mode", set: map[string]string{"security_profile": "encrypted", "auth_mode": "string", "operation": "install", "description": "kept text"},
			message: "cannot use By Authentication String", kept: `value="kept text"`},
		{name: "unknown key", set: map[string]string{"key": "rsa9"}, errID: "key", message: "want rsa512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := phoneForm(d)
			for k, v := range tt.set {
				f.Set(k, v)
			}
			w := e.post("/phones/SEP000000000001", "admin", f)
			wantStatus(t, w, http.StatusUnprocessableEntity)
			body := w.Body.String()
			if tt.errID != "" {
				// The message follows the field, before the next field.
				re := regexp.MustCompile(`(?s)id="` + tt.errID + `"[^>]*aria-invalid="true".*?<p class="field-error" role="alert">[^<]*` + regexp.QuoteMeta(tt.message))
				if !re.MatchString(body) {
					t.Errorf("no message %q next to %s:\n%s", tt.message, tt.errID, body)
				}
			} else {
				// The device service names no field for these (yet): the
				// message is the form's, or next to the field it names.
				if !regexp.MustCompile(`role="alert"[^>]*>[^<]*` + regexp.QuoteMeta(tt.message)).MatchString(body) {
					t.Errorf("no message %q:\n%s", tt.message, body)
				}
			}
			wantBody(t, w, tt.kept)
			got, _ := e.devices.Get(context.Background(), "SEP000000000001")
			if got.Description != "lobby" || got.Operation != device.OpNone {
				t.Errorf("a refused save changed the device: %+v", got)
			}
		})
	}
}

func TestGenerateString(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001"})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	f := phoneForm(d)
	f.Del("save")
	f.Set("generate_string", "1")
	f.Set("description", "typed")
	w := e.post("/phones/SEP000000000001", "admin", f)
	wantStatus(t, w, http.StatusOK)
	m := regexp.MustCompile(`id="auth_string" name="auth_string"[^>]*value="([0-9]{8})"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no generated string:\n%s", w.Body.String())
	}
	wantBody(t, w, `id="notice"`, `<option value="string" selected>`, `value="typed"`)
	got, _ := e.devices.Get(context.Background(), "SEP000000000001")
	if got.AuthString != "" || got.Description != "" {
		t.Errorf("Generate String saved: %+v", got)
	}
	// Save keeps it.
	f = phoneForm(d)
	f.Set("auth_mode", "string")
	f.Set("auth_string", m[1])
	f.Set("operation", "install")
	wantRedirect(t, e.post("/phones/SEP000000000001", "admin", f), "/phones/SEP000000000001?saved=1")
	got, _ = e.devices.Get(context.Background(), "SEP000000000001")
	if got.AuthString != m[1] || got.Status != device.StatusPending {
		t.Errorf("after save %+v", got)
	}
}

func TestCertificateOperationsWithLSC(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Operation: device.OpInstall})
	e.giveLSC("SEP000000000001")
	if err := e.store.SaveFetchedCertificate(context.Background(), device.FetchedCertificate{Device: "SEP000000000001", Type: "LSC", FetchedAt: testNow, DER: e.cert.Raw}); err != nil {
		t.Fatal(err)
	}
	w := e.get("/phones/SEP000000000001", "admin")
	wantBody(t, w, `<option value="delete">Delete</option>`, `<option value="troubleshoot">Troubleshoot</option>`,
		`id="lsc_serial" class="mono">ABCDEF01`, `id="lsc_status" aria-live="polite">valid`, "Upgrade Success",
		`href="/phones/SEP000000000001/certificates/0?format=pem"`, "CN=CAPF-test,O=Example", `id="history-table"`)
	w = e.get("/phones/SEP000000000001/certificates/0?format=pem", "viewer")
	wantStatus(t, w, http.StatusOK)
	if b, _ := pem.Decode(w.Body.Bytes()); b == nil || !bytes.Equal(b.Bytes, e.cert.Raw) {
		t.Errorf("PEM download %q", w.Body.String())
	}
	w = e.get("/phones/SEP000000000001/certificates/0?format=der", "viewer")
	if !bytes.Equal(w.Body.Bytes(), e.cert.Raw) || !strings.Contains(w.Header().Get("Content-Disposition"), "SEP000000000001-lsc-0.der") {
		t.Errorf("DER download: %q", w.Header())
	}
	wantStatus(t, e.get("/phones/SEP000000000001/certificates/5", "viewer"), http.StatusNotFound)
}

// TestStaleFormDoesNotRearm: a form opened while Install/Upgrade was
// pending, saved after the phone finished, does not arm it again.
func TestStaleFormDoesNotRearm(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Operation: device.OpInstall})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	f := phoneForm(d) // loaded_operation=install
	e.giveLSC("SEP000000000001")
	f.Set("description", "later edit")
	wantRedirect(t, e.post("/phones/SEP000000000001", "admin", f), "/phones/SEP000000000001?saved=1")
	got, _ := e.devices.Get(context.Background(), "SEP000000000001")
	if got.Operation != device.OpNone || got.Status != device.SuccessStatus(device.OpInstall) || got.Description != "later edit" {
		t.Errorf("stale form re-armed: %+v", got)
	}
}

func TestAddAndDeletePhone(t *testing.T) {
	e := newEnv(t)
	f := url.Values{"name": {"sep0000000000aa"}, "description": {"new one"}, "security_profile": {"non-secure"}, "auth_mode": {"null"}, "operation": {"none"}, "key": {""}, "save": {"1"}}
	wantRedirect(t, e.post("/phones/new", "admin", f), "/phones/SEP0000000000AA?saved=1")
	w := e.post("/phones/new", "admin", f)
	wantStatus(t, w, http.StatusConflict)
	wantBody(t, w, `value="sep0000000000aa"`)
	f.Set("name", "XYZ")
	w = e.post("/phones/new", "admin", f)
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "must start with SEP")

	w = e.post("/phones/SEP0000000000AA/delete", "admin", nil)
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "Delete phone SEP0000000000AA and its history?", `name="confirm" value="yes"`)
	if _, err := e.devices.Get(context.Background(), "SEP0000000000AA"); err != nil {
		t.Fatalf("deleted before confirmation: %v", err)
	}
	wantRedirect(t, e.post("/phones/SEP0000000000AA/delete", "admin", url.Values{"confirm": {"yes"}}), "/phones")
	if _, err := e.devices.Get(context.Background(), "SEP0000000000AA"); err == nil {
		t.Fatal("not deleted")
	}
}

func TestViewerCannotWrite(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Description: "lobby"})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	w := e.get("/phones/SEP000000000001", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantNoBody(t, w, `name="save"`, `name="generate_string"`, `id="delete"`, `id="reset"`)
	wantBody(t, w, "<fieldset disabled>")
	for _, p := range []string{"/phones", "/system/parameters", "/serviceability/activation", "/import"} {
		w := e.get(p, "viewer")
		wantNoBody(t, w, `name="save"`, `id="deactivate"`, `id="import"`, `id="add-phone"`, `id="bulk-link"`)
	}
	posts := map[string]url.Values{
		"/phones/SEP000000000001":          phoneForm(d),
		"/phones/new":                      {"name": {"SEP000000000009"}},
		"/phones/SEP000000000001/delete":   {"confirm": {"yes"}},
		"/phones/SEP000000000001/reset":    {"reset": {"1"}},
		"/bulk/reset":                      {"where": {"name:begins-with:SEP"}},
		"/bulk":                            {"operation": {"install"}, "confirm": {"yes"}},
		"/campaigns/7/cancel":              {"confirm": {"yes"}},
		"/system/parameters":               {"listen": {":1"}},
		"/serviceability/activation":       {"action": {"deactivate"}},
		"/import":                          {},
		"/security/trust-file":             {},
		"/security/certificate/regenerate": {"key_algorithm": {"ec256"}},
		"/security/certificate/activate":   {"id": {"0123456789abcdef"}},
		"/security/certificate/retire":     {"id": {"0123456789abcdef"}, "force": {"yes"}, "confirm": {"yes"}},
	}
	for path, f := range posts {
		t.Run(path, func(t *testing.T) {
			w := e.post(path, "viewer", f)
			wantStatus(t, w, http.StatusForbidden)
			wantBody(t, w, "victor has the viewer role")
		})
	}
	if got, _ := e.devices.Get(context.Background(), "SEP000000000001"); got.Description != "lobby" {
		t.Errorf("viewer changed the device")
	}
	if !e.system.active || len(e.campaigns.scheduled) != 0 || len(e.campaigns.cancelled) != 0 {
		t.Error("viewer changed the service")
	}
}

func TestWriteNeedsCSRFToken(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001"})
	w := e.post("/serviceability/activation", "admin", url.Values{"action": {"deactivate"}, webauth.CSRFField: {"wrong"}})
	wantStatus(t, w, http.StatusForbidden)
	wantBody(t, w, "anti-forgery token")
	if !e.system.active {
		t.Error("deactivated without a token")
	}
}

func TestLiveStatusEvents(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Operation: device.OpInstall})
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/phones/SEP000000000001/events", nil)
	req.Header.Set("X-Test-As", "viewer")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan map[string]string, 10)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && name == "status":
				var m map[string]string
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m) == nil {
					events <- m
				}
			}
		}
	}()
	next := func() map[string]string {
		t.Helper()
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return nil
	}
	if m := next(); m["status"] != device.StatusPending || m["operation"] != "install" {
		t.Fatalf("first event %v", m)
	}
	e.giveLSC("SEP000000000001")
	m := next()
	if m["status"] == device.StatusInProgress { // seen if a poll fell between claim and finish
		m = next()
	}
	if m["status"] != "Upgrade Success" || m["lsc_status"] != "valid" || m["lsc_serial"] != "ABCDEF01" || m["operation"] != "none" ||
		m["contact_outcome"] != "Operation succeeded" {
		t.Fatalf("after the upgrade: %v", m)
	}
	// A refusal before a session shows as the last contact, live.
	if err := e.store.RecordContacts(ctx, []device.Contact{{Device: "SEP000000000001", At: testNow.Add(time.Minute), Remote: "192.0.2.9:1",
		Outcome: device.ContactNoAction, Reason: "no certificate operation is pending"}}); err != nil {
		t.Fatal(err)
	}
	if m := next(); m["contact_outcome"] != "Nothing pending" || m["contact_reason"] != "no certificate operation is pending" || m["contact_remote"] != "192.0.2.9:1" {
		t.Fatalf("after a refusal: %v", m)
	}
	// Anonymous: refused, not redirected to a page.
	req2, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/phones/SEP000000000001/events", nil)
	req2.Header.Set("Accept", "text/event-stream")
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous stream: %d", resp2.StatusCode)
	}
}

func TestBulk(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001"}, device.Device{Name: "SEP000000000002"}, device.Device{Name: "SEP000000000003"}, device.Device{Name: "CSFBOB"})
	w := e.get("/bulk?where=name%3Abegins-with%3ASEP&sort=description&page=2", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="bulk-count">3<`, `Device Name begins with &#34;SEP&#34;`, `name="where" value="name:begins-with:SEP"`)

	f := url.Values{"where": {"name:begins-with:SEP"}, "operation": {"install"}, "auth_mode": {"string"}, "generate_string": {"1"}, "key": {"ec384"}, "deadline": {"2026-12-24T08:00"}}
	w = e.post("/bulk", "admin", f)
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "Schedule Install/Upgrade for 3 phones?", `name="confirm" value="yes"`, `name="generate_string" value="1"`)
	if len(e.campaigns.scheduled) != 0 {
		t.Fatal("scheduled before confirmation")
	}
	f.Set("confirm", "yes")
	wantRedirect(t, e.post("/bulk", "admin", f), "/campaigns/7")
	if len(e.campaigns.scheduled) != 1 {
		t.Fatalf("scheduled %d", len(e.campaigns.scheduled))
	}
	c, ch := e.campaigns.scheduled[0], e.campaigns.changes[0]
	if strings.Join(c.Where, "|") != "name:begins-with:SEP" || c.Limit != 0 {
		t.Errorf("criteria %+v", c)
	}
	if *ch.Operation != device.OpInstall || *ch.AuthMode != device.AuthString || !ch.GenerateString || *ch.Key != device.EC384 ||
		!ch.Deadline.Equal(time.Date(2026, 12, 24, 8, 0, 0, 0, time.UTC)) || ch.AuthString != nil {
		t.Errorf("change %+v", ch)
	}

	t.Run("no match", func(t *testing.T) {
		w := e.post("/bulk", "admin", url.Values{"where": {"name:begins-with:SEPFFFF"}, "operation": {"install"}})
		wantStatus(t, w, http.StatusUnprocessableEntity)
		wantBody(t, w, "no phone matches the search")
	})
	t.Run("bad deadline next to its field", func(t *testing.T) {
		w := e.post("/bulk", "admin", url.Values{"where": {"name:begins-with:SEP"}, "operation": {"install"}, "deadline": {"soon"}})
		wantStatus(t, w, http.StatusUnprocessableEntity)
		if !regexp.MustCompile(`(?s)id="deadline"[^>]*aria-invalid="true"[^>]*>\s*<p class="field-error" role="alert">Operation Completes By`).MatchString(w.Body.String()) {
			t.Errorf("no error next to the deadline:\n%s", w.Body.String())
		}
	})
}

func TestCampaignPage(t *testing.T) {
	e := newEnv(t)
	w := e.get("/campaigns/7", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="campaign-live" data-active="true"`, `id="campaign-percent">40% done<`,
		`id="progress-bar"`, `class="bar-done"`, `id="rate-chart"`, `<title>11:59: 3</title>`,
		`id="count-failed">2<`, "about 3 min", `href="/phones/SEP000000000001"`, "Upgrade Failed: Invalid Authentication String")
	wantStatus(t, e.get("/campaigns/8", "viewer"), http.StatusNotFound)
	wantStatus(t, e.get("/campaigns/x", "viewer"), http.StatusNotFound)
}

func multipartImport(t *testing.T, csv string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField(webauth.CSRFField, principals["admin"].CSRF); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("file", "phones.csv")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte(csv))
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestImport(t *testing.T) {
	e := newEnv(t)
	send := func(csv string) *httptest.ResponseRecorder {
		body, ctype := multipartImport(t, csv)
		r := httptest.NewRequest(http.MethodPost, "/import", body)
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("X-Test-As", "admin")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		checkHTML(t, "/import", w)
		return w
	}
	w := send("Device Name,Description,Authentication Mode\nSEP000000000001,one,null\nSEP00000000ZZZZ,bad,null\nSEP000000000003,three,By Guessing\n")
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, `id="import-error"`, "2 problems", `<tr><td>3</td><td>Device Name</td>`, `<tr><td>4</td><td>Authentication Mode</td><td>authentication mode &#34;By Guessing&#34;`)
	if p, _ := e.devices.List(context.Background(), device.Query{}); p.Total != 0 {
		t.Fatalf("a bad file imported %d phones", p.Total)
	}
	w = send("Device Name,Description,Authentication Mode\nSEP000000000001,one,null\nSEP000000000002,two,By Null String\n")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="import-created">2<`, `id="import-updated">0<`)

	// The report downloads and lists them.
	w = e.get("/report.csv", "viewer")
	wantStatus(t, w, http.StatusOK)
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") || !strings.Contains(w.Header().Get("Content-Disposition"), "capf-report.csv") {
		t.Errorf("report headers %v", w.Header())
	}
	wantBody(t, w, "SEP000000000001", "SEP000000000002")
	w = e.get("/report.csv?where=description%3Aequals%3Atwo", "viewer")
	wantNoBody(t, w, "SEP000000000001")
	wantBody(t, w, "SEP000000000002")

	// Imported back unchanged.
	w = send(e.get("/report.csv", "viewer").Body.String())
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="import-unchanged">2<`)

	w = send("")
	wantStatus(t, w, http.StatusUnprocessableEntity)
}

func TestServiceParameters(t *testing.T) {
	e := newEnv(t)
	w := e.get("/system/parameters", "admin")
	wantBody(t, w, `name="certificate_validity_days" type="text" value="1825"`, "Days an LSC is valid.", "Default: <code>1825</code>",
		"(restart)", `<textarea id="p-trusted_issuers" name="trusted_issuers"`, "a\nb</textarea>", `<option value="false" selected>False</option>`)

	all := url.Values{"certificate_validity_days": {"1825"}, "listen": {":3804"}, "require_sudi": {"false"}, "session_timeout": {"2m"}, "trusted_issuers": {"a\r\nb"}}
	wantRedirect(t, e.post("/system/parameters", "admin", all), "/system/parameters?saved=0")
	if len(e.system.updates) != 0 {
		t.Fatalf("unchanged save called UpdateParameters: %v", e.system.updates)
	}

	f := url.Values{}
	for k, v := range all {
		f[k] = v
	}
	f.Set("certificate_validity_days", "abc")
	f.Set("session_timeout", "forever")
	w = e.post("/system/parameters", "admin", f)
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, `value="abc"`, "want a whole number", `value="forever"`, "is not a duration")
	if !regexp.MustCompile(`(?s)id="param-certificate_validity_days".*?want a whole number.*?id="param-listen"`).MatchString(w.Body.String()) {
		t.Error("the error is not next to its field")
	}

	f.Set("certificate_validity_days", "9999")
	f.Set("session_timeout", "2m")
	w = e.post("/system/parameters", "admin", f)
	wantStatus(t, w, http.StatusUnprocessableEntity)
	if !regexp.MustCompile(`(?s)id="param-certificate_validity_days".*?above the maximum 3650.*?id="param-listen"`).MatchString(w.Body.String()) {
		t.Errorf("the service's error is not next to its field:\n%s", w.Body.String())
	}

	f.Set("certificate_validity_days", "730")
	f.Set("listen", ":3805")
	f.Set("trusted_issuers", "a\nb\nc\n")
	wantRedirect(t, e.post("/system/parameters", "admin", f), "/system/parameters?saved=1&restart=1")
	got := e.system.updates[0]
	if len(got) != 3 || got["certificate_validity_days"] != int64(730) || got["listen"] != ":3805" || strings.Join(got["trusted_issuers"].([]string), ",") != "a,b,c" {
		t.Errorf("update %v", got)
	}
	if e.system.actor.String() != "web:alice" {
		t.Errorf("actor %v", e.system.actor)
	}
	w = e.get("/system/parameters?saved=1&restart=1", "admin")
	wantBody(t, w, `id="saved"`, "next start")
}

func TestServiceActivation(t *testing.T) {
	e := newEnv(t)
	w := e.get("/serviceability/activation", "admin")
	wantBody(t, w, `id="service-status" class="st-ok">Activated<`, `name="action" value="deactivate"`)
	wantRedirect(t, e.post("/serviceability/activation", "admin", url.Values{"action": {"deactivate"}}), "/serviceability/activation")
	if e.system.active {
		t.Fatal("still active")
	}
	w = e.get("/serviceability/activation", "admin")
	wantBody(t, w, "Deactivated", `name="action" value="activate"`)
	wantStatus(t, e.post("/serviceability/activation", "admin", url.Values{"action": {"toggle"}}), http.StatusUnprocessableEntity)
}

func TestCAPFCertificate(t *testing.T) {
	e := newEnv(t)
	w := e.get("/security/certificate", "viewer")
	wantBody(t, w, "CN=CAPF-test,O=Example", `id="cert-serial" class="mono">1234<`, `id="cert-sha256"`, ".0</dd>")
	for _, tt := range []struct{ format, disp string }{{"pem", "capf.pem"}, {"der", "capf.der"}, {"hash", ".0"}} {
		w := e.get("/security/certificate/file?format="+tt.format, "viewer")
		wantStatus(t, w, http.StatusOK)
		if !strings.Contains(w.Header().Get("Content-Disposition"), tt.disp) {
			t.Errorf("%s: Content-Disposition %q", tt.format, w.Header().Get("Content-Disposition"))
		}
		der := w.Body.Bytes()
		if tt.format != "der" {
			b, _ := pem.Decode(der)
			if b == nil {
				t.Fatalf("%s: not PEM", tt.format)
			}
			der = b.Bytes
		}
		if !bytes.Equal(der, e.cert.Raw) {
			t.Errorf("%s: wrong certificate", tt.format)
		}
	}
	wantStatus(t, e.get("/security/certificate/file?format=p12", "viewer"), http.StatusUnprocessableEntity)
	evs, err := e.store.ListAudit(context.Background(), device.AuditQuery{Target: device.CAExportTarget})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Action != device.AuditCAExport || !strings.Contains(evs[0].Detail, ".0, sha256 ") ||
		!strings.Contains(evs[2].Detail, "as capf.pem,") || evs[2].Actor.Name != "victor" {
		t.Errorf("audit of the downloads: %+v, want 3 events (pem, der, hash) by the viewer victor", evs)
	}
	e.store.Close()
	w = e.get("/security/certificate/file?format=pem", "viewer")
	if w.Code == http.StatusOK || strings.Contains(w.Body.String(), "BEGIN CERTIFICATE") {
		t.Errorf("download without an audit: %d, want refused", w.Code)
	}
}

func TestAuditAndDashboard(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Description: "lobby"})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	f := phoneForm(d)
	f.Set("description", "hall")
	e.post("/phones/SEP000000000001", "admin", f)
	w := e.get("/audit?target=sep000000000001", "viewer")
	wantBody(t, w, "device.update", "web:alice", "192.0.2.1", "description: lobby &rarr; hall", "device.create")

	w = e.get("/", "viewer")
	wantBody(t, w, `id="dash-devices"`, "Upgrade Failed: Invalid LSC", "chain did not verify", `href="/campaigns/7"`,
		"LSCs expiring in 7 days", `id="dash-expiring-week"><a href="/phones?`, `lsc-expires%3Abefore%3A2`, `>5</a>`,
		`id="dash-renewals-waiting"><a href="/phones?where=operation%3Aequals%3Ainstall&amp;where=auth-mode%3Aequals%3Alsc">6</a>`)
	// The renewals link is a search the phone list takes: the phone armed
	// by its LSC, not the one armed by a null string.
	e.add(device.Device{Name: "SEP0000000000A1", AuthMode: device.AuthLSC, Operation: device.OpInstall})
	e.add(device.Device{Name: "SEP0000000000A2", AuthMode: device.AuthNull, Operation: device.OpInstall})
	w = e.get("/phones?where=operation%3Aequals%3Ainstall&where=auth-mode%3Aequals%3Alsc", "viewer")
	wantBody(t, w, "SEP0000000000A1")
	wantNoBody(t, w, "SEP0000000000A2")
}

// TestHTMLChecker makes sure the page checker every test applies catches
// what it is for.
func TestHTMLChecker(t *testing.T) {
	tests := []struct {
		name, page, want string
	}{
		{"clean", `<script src="/static/app.js" defer></script><label for="a">A</label><input id="a" name="a"><form method="post" action="/x"><input type="hidden" name="csrf" value="t"></form>`, ""},
		{"inline script", `<script>alert(1)</script>`, "<script> without src"},
		{"script body", `<script src="/a.js">x()</script>`, "<script> with a body"},
		{"handler", `<button onclick="x()">b</button>`, "has attribute onclick"},
		{"style attribute", `<p style="color:red">p</p>`, "has attribute style"},
		{"style element", `<style>p{}</style>`, "<style> element"},
		{"unlabelled", `<input name="q">`, `<input name="q"> has no label`},
		{"no csrf", `<form method="post" action="/x"><input name="a" aria-label="a"></form>`, "has no csrf field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(htmlProblems(tt.page), "; ")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogoutNeedsCSRFToken(t *testing.T) {
	e := newEnv(t)
	w := e.post("/logout", "admin", url.Values{webauth.CSRFField: {"forged"}})
	wantStatus(t, w, http.StatusForbidden)
	if len(e.accounts.logouts) != 0 {
		t.Errorf("logged out by a forged form: %v", e.accounts.logouts)
	}
}

// TestLiveStatusStopsWhenClientGoes: the stream's handler returns once the
// client's request ends, and after EventMaxAge.
func TestLiveStatusStopsWhenClientGoes(t *testing.T) {
	tests := []struct {
		name   string
		maxAge time.Duration
		cancel bool
	}{
		{name: "client goes", maxAge: time.Hour, cancel: true},
		{name: "max age", maxAge: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *webui.Options) { o.EventMaxAge = tt.maxAge })
			e.add(device.Device{Name: "SEP000000000001"})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/phones/SEP000000000001/events", nil)
			r.Header.Set("X-Test-As", "admin")
			done := make(chan struct{})
			w := httptest.NewRecorder()
			go func() {
				defer close(done)
				e.h.ServeHTTP(w, r)
			}()
			time.Sleep(50 * time.Millisecond)
			if tt.cancel {
				cancel()
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream did not end")
			}
			if !strings.Contains(w.Body.String(), "event: status\ndata: {") {
				t.Errorf("no first event: %q", w.Body.String())
			}
		})
	}
}

func TestTimeZoneOfForms(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	e := newEnv(t, func(o *webui.Options) { o.Location = jst })
	e.add(device.Device{Name: "SEP000000000001"})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	w := e.get("/phones/SEP000000000001", "admin")
	wantBody(t, w, "Operation Completes By (JST)")
	f := phoneForm(d)
	f.Set("deadline", "2026-12-01T09:00")
	wantRedirect(t, e.post("/phones/SEP000000000001", "admin", f), "/phones/SEP000000000001?saved=1")
	got, _ := e.devices.Get(context.Background(), "SEP000000000001")
	if !got.Deadline.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("deadline %v, want 09:00 JST", got.Deadline)
	}
	w = e.get("/phones/SEP000000000001", "admin")
	wantBody(t, w, `value="2026-12-01T09:00"`)
}

func TestSearchBounds(t *testing.T) {
	e := newEnv(t)
	q := url.Values{}
	for range 21 {
		q.Add("where", "name:begins-with:SEP")
	}
	w := e.get("/phones?"+q.Encode(), "admin")
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "at most 20 conditions")
	wantStatus(t, e.get("/report.csv?"+q.Encode(), "admin"), http.StatusUnprocessableEntity)
	wantStatus(t, e.get("/bulk?"+q.Encode(), "admin"), http.StatusUnprocessableEntity)
	// The find form carries rows per page.
	w = e.get("/phones?rows=25", "admin")
	wantBody(t, w, `<input type="hidden" name="rows" value="25">`)
	wantRedirect(t, e.get("/phones?rows=25&field=name&match=begins-with&value=SEP&find=1", "admin"), "/phones?rows=25&where=name%3Abegins-with%3ASEP")
}

func TestParametersSameValueWrittenDifferently(t *testing.T) {
	e := newEnv(t)
	f := url.Values{"trusted_issuers": {"a\r\nb\r\n\r\n"}, "certificate_validity_days": {" 1825 "}}
	wantRedirect(t, e.post("/system/parameters", "admin", f), "/system/parameters?saved=0")
	if len(e.system.updates) != 0 {
		t.Errorf("updates %v", e.system.updates)
	}
}

// TestLoginNextStaysOnSite: the page a login returns to is a path on this
// server or "/". Each attack string is one browsers resolve to another
// origin (control characters are stripped, a backslash is a slash) or that
// names a scheme or host; it goes to "/" both from the login page (already
// logged in) and from the login form.
func TestLoginNextStaysOnSite(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, next, want string
	}{
		{"ok/path", "/phones", "/phones"},
		{"ok/query", "/phones?where=name%3Abegins-with%3ASEP&page=2", "/phones?where=name%3Abegins-with%3ASEP&page=2"},
		{"ok/encoded-slash-in-segment", "/phones/SEP%2F1", "/phones/SEP%2F1"},
		{"bad/empty", "", "/"},
		{"bad/tab", "/\t/evil.example/", "/"},
		{"bad/newline", "/\n/evil.example/", "/"},
		{"bad/carriage-return", "/\r/evil.example/", "/"},
		{"bad/nul", "/\x00/evil.example/", "/"},
		{"bad/del", "/\x7f/evil.example/", "/"},
		{"bad/space", "/ /evil.example/", "/"},
		{"bad/nbsp", "/\u00a0/evil.example/", "/"},
		{"bad/protocol-relative", "//evil.example/", "/"},
		{"bad/triple-slash", "///evil.example/", "/"},
		{"bad/backslash", "/\\evil.example/", "/"},
		{"bad/backslashes", "\\\\evil.example/", "/"},
		{"bad/slash-backslash-later", "/a/\\evil", "/"},
		{"bad/encoded-slash", "/%2F/evil.example/", "/"},
		{"bad/encoded-double-slash", "/%2f%2fevil.example/", "/"},
		{"bad/scheme", "https://evil.example/", "/"},
		{"bad/javascript", "javascript:alert(1)", "/"},
		{"bad/relative", "evil.example", "/"},
		{"bad/userinfo", "//user@evil.example/", "/"},
		{"bad/too-long", "/" + strings.Repeat("a", 5000), "/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.get("/login?next="+url.QueryEscape(c.next), "admin")
			wantRedirect(t, w, c.want)
			e.accounts.failures = 0
			w = e.do(http.MethodPost, "/login", "", url.Values{"username": {"alice"}, "password": {"secret"}, "next": {c.next}})
			wantRedirect(t, w, c.want)
			if c.want == "/" {
				wantBody(t, e.get("/login?next="+url.QueryEscape(c.next), ""), `name="next" value="/"`)
			}
		})
	}
}

// TestLoginFromSameSiteRefused: a login form posted from a sibling site
// (Sec-Fetch-Site: same-site) is refused like a cross-site one, so a page
// on another host of the domain cannot log a browser in to an account of
// its choosing; the server's own page (same-origin) logs in.
func TestLoginFromSameSiteRefused(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		site string
		want int
	}{
		{"same-site", http.StatusForbidden},
		{"cross-site", http.StatusForbidden},
		{"same-origin", http.StatusSeeOther},
	} {
		t.Run(c.site, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"username": {"alice"}, "password": {"secret"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Sec-Fetch-Site", c.site)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			wantStatus(t, w, c.want)
			if got := w.Header().Get("Set-Cookie") != ""; got != (c.want == http.StatusSeeOther) {
				t.Errorf("session cookie set: %v", got)
			}
		})
	}
}
