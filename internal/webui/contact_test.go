package webui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webui"
)

// closedFor is a maintenance schedule closed until a time.
type closedFor struct{ until time.Time }

func (c closedFor) Open(t time.Time) bool { return !t.Before(c.until) }
func (c closedFor) NextOpen(t time.Time) time.Time {
	if c.Open(t) {
		return t
	}
	return c.until
}

// TestPhonePageShowsLastContact: the phone page says why the phone has not
// enrolled: when it last called, from where, the outcome and the reason;
// and that it never called, when it has not.
func TestPhonePageShowsLastContact(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP001122334455", Operation: device.OpInstall, AuthMode: device.AuthNull},
		device.Device{Name: "SEP0011223344FF"})
	reason := "outside the maintenance windows; next opens 2026-11-25T22:00:00Z (RETRY_LATER, retry in 3600 s)"
	if err := e.store.RecordContacts(context.Background(), []device.Contact{{Device: "SEP001122334455", At: testNow,
		Remote: "192.0.2.50:51000", Outcome: device.ContactRetryLater, Reason: reason}}); err != nil {
		t.Fatal(err)
	}
	body := e.get("/phones/SEP001122334455", "viewer").Body.String()
	for _, want := range []string{`id="last-contact-at">2026-11-25 12:00:00 UTC<`, `id="last-contact-remote" class="mono">192.0.2.50:51000<`,
		"Told to retry later (RETRY_LATER)", `id="last-contact-reason">` + reason + "<"} {
		if !strings.Contains(body, want) {
			t.Errorf("phone page lacks %q", want)
		}
	}
	if strings.Contains(body, `<p id="last-contact-none">`) || strings.Contains(body, `<dl class="kv" id="last-contact" hidden>`) {
		t.Error("a phone in contact says it never was")
	}
	if body := e.get("/phones/SEP0011223344FF", "viewer").Body.String(); !strings.Contains(body, `<p id="last-contact-none">No contact on record`) ||
		!strings.Contains(body, `<dl class="kv" id="last-contact" hidden>`) {
		t.Error("a phone never in contact does not say so")
	}
}

// TestBanners: the dashboard and the phone list say when no maintenance
// window is open (and when the next opens) and when the service is
// deactivated; with a window open and the service active they say
// nothing.
func TestBanners(t *testing.T) {
	var windows webui.Windows = closedFor{testNow.Add(90 * time.Minute)}
	e := newEnv(t, func(o *webui.Options) { o.Windows = func() webui.Windows { return windows } })
	e.system.active = false
	for _, page := range []string{"/", "/phones"} {
		body := e.get(page, "viewer").Body.String()
		for _, want := range []string{`id="banner-window"`, "No maintenance window is open", "opens Wed 2026-11-25 13:30 UTC (in 1h30m0s)",
			`id="banner-deactivated"`, "The CAPF service is deactivated"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", page, want)
			}
		}
	}
	windows = closedFor{testNow}
	e.system.active = true
	for _, page := range []string{"/", "/phones"} {
		if body := e.get(page, "viewer").Body.String(); strings.Contains(body, "banner-") {
			t.Errorf("%s shows a banner with the window open and the service active", page)
		}
	}
}

// TestDashboardUnconfiguredPhones: the names strangers asked for are
// counted and the latest listed, escaped.
func TestDashboardUnconfiguredPhones(t *testing.T) {
	e := newEnv(t)
	e.campaigns.unknown = device.UnknownNames{Count: 42, Malformed: 3, Since: testNow.Add(-time.Hour),
		Latest: []device.UnknownName{{Name: "SEP0000000000AB", At: testNow, Remote: "192.0.2.77"}, {Name: "<script>alert(1)</script>", At: testNow, Remote: "192.0.2.78"}}}
	body := e.get("/", "viewer").Body.String()
	for _, want := range []string{"Phones that asked but are not configured", `id="dash-unconfigured">42<`, "3 with a name that is not a device name",
		"SEP0000000000AB", "192.0.2.77", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("a stranger's name reached the page unescaped")
	}
}

// TestPhonePageSnippet: the phone page gives the configuration snippet
// that capf phone-config prints, with the port the service listens on.
func TestPhonePageSnippet(t *testing.T) {
	e := newEnv(t, func(o *webui.Options) { o.Phones = func() (string, string) { return "capf.example.net", "13804" } })
	e.add(device.Device{Name: "SEP001122334455", SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC})
	body := e.get("/phones/SEP001122334455", "viewer").Body.String()
	want, err := device.PhoneConfig(device.Device{Name: "SEP001122334455", SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC}, []capflist.Server{{Host: "capf.example.net", Port: "13804"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"&lt;phonePort&gt;13804&lt;/phonePort&gt;", "&lt;processNodeName&gt;capf.example.net&lt;/processNodeName&gt;",
		"&lt;capfAuthMode&gt;3&lt;/capfAuthMode&gt;", "&lt;deviceSecurityMode&gt;2&lt;/deviceSecurityMode&gt;"} {
		if !strings.Contains(body, w) || !strings.Contains(want, strings.NewReplacer("&lt;", "<", "&gt;", ">").Replace(w)) {
			t.Errorf("snippet lacks %q", w)
		}
	}
	e2 := newEnv(t, func(o *webui.Options) { o.Phones = func() (string, string) { return "h", "0" } })
	e2.add(device.Device{Name: "SEP001122334455"})
	if body := e2.get("/phones/SEP001122334455", "viewer").Body.String(); !strings.Contains(body, `id="phone-config-error"`) {
		t.Error("an ephemeral port is not explained")
	}
}
