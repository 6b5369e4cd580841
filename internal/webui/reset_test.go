package webui_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// recordingNotifier records the phones it notified; it fails for fail.
type recordingNotifier struct {
	mu   sync.Mutex
	got  []string
	fail string
}

func (n *recordingNotifier) Notify(_ context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, name)
	if name == n.fail {
		return errors.New("the PBX refused the NOTIFY to " + name + ": Unable to retrieve endpoint <b>x</b>")
	}
	return nil
}

// newResetEnv is newEnv with a device service that resets through n.
func newResetEnv(t *testing.T, n device.Notifier) *env {
	t.Helper()
	e := newEnv(t)
	e.devices = device.NewService(device.ServiceOptions{Store: e.store, Now: func() time.Time { return testNow }, Notifier: n})
	ui := webui.New(webui.Options{Devices: e.devices, Accounts: e.accounts, System: e.system, Campaigns: e.campaigns, Certificate: e.cert,
		EventInterval: 10 * time.Millisecond})
	e.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := principals[r.Header.Get("X-Test-As")]; ok {
			r = r.WithContext(webauth.WithPrincipal(r.Context(), p))
		}
		ui.ServeHTTP(w, r)
	})
	return e
}

func TestPhoneReset(t *testing.T) {
	n := &recordingNotifier{fail: "SEP000000000002"}
	e := newResetEnv(t, n)
	e.add(device.Device{Name: "SEP000000000001"}, device.Device{Name: "SEP000000000002"})

	// The Reset button sits beside Save in the phone form, posting to
	// the reset action with the form's anti-forgery token.
	w := e.get("/phones/SEP000000000001", "admin")
	wantBody(t, w, `id="save"`, `formaction="/phones/SEP000000000001/reset"`, `id="last-reset-none"`)

	w = e.post("/phones/SEP000000000001/reset", "admin", url.Values{"reset": {"1"}, "description": {"not saved"}})
	wantRedirect(t, w, "/phones/SEP000000000001?reset=ok")
	w = e.get("/phones/SEP000000000001?reset=ok", "admin")
	wantBody(t, w, `id="reset-done"`, `id="last-reset-outcome" class="st-ok">sent`, "web:alice")
	if d, _ := e.devices.Get(context.Background(), "SEP000000000001"); d.Description == "not saved" {
		t.Error("Reset saved the form")
	}

	w = e.post("/phones/SEP000000000002/reset", "admin", nil)
	wantRedirect(t, w, "/phones/SEP000000000002?reset=failed")
	w = e.get("/phones/SEP000000000002?reset=failed", "admin")
	wantBody(t, w, `id="reset-failed"`, "Unable to retrieve endpoint &lt;b&gt;x&lt;/b&gt;", `class="st-fail">failed`)
	wantNoBody(t, w, "<b>x</b>")

	// The viewer sees the outcome, not the button.
	w = e.get("/phones/SEP000000000002", "viewer")
	wantBody(t, w, `id="last-reset"`)
	wantNoBody(t, w, `id="reset"`)

	// A forged post (no or a wrong anti-forgery token) notifies nothing.
	w = e.post("/phones/SEP000000000001/reset", "admin", url.Values{webauth.CSRFField: {"wrong"}})
	wantStatus(t, w, http.StatusForbidden)
	if len(n.got) != 2 {
		t.Errorf("notified %v, want two phones", n.got)
	}
	w = e.post("/phones/SEP00000000FFFF/reset", "admin", nil)
	wantStatus(t, w, http.StatusNotFound)
}

func TestPhoneResetWithoutNotifier(t *testing.T) {
	e := newResetEnv(t, nil)
	e.add(device.Device{Name: "SEP000000000001"})
	w := e.post("/phones/SEP000000000001/reset", "admin", nil)
	wantStatus(t, w, http.StatusServiceUnavailable)
	if !strings.Contains(w.Body.String(), "no notifier is configured") {
		t.Errorf("body lacks how to configure a notifier:\n%s", w.Body)
	}
}

func TestBulkReset(t *testing.T) {
	n := &recordingNotifier{fail: "SEP000000000002"}
	e := newResetEnv(t, n)
	e.add(device.Device{Name: "SEP000000000001"}, device.Device{Name: "SEP000000000002"}, device.Device{Name: "CSFJDOE"})

	w := e.get("/bulk?where=name:begins-with:SEP", "admin")
	wantBody(t, w, `action="/bulk/reset"`, `id="bulk-reset"`, "Reset 2 phones")
	wantNoBody(t, e.get("/bulk?where=name:begins-with:SEP", "viewer"), `id="bulk-reset"`)

	w = e.post("/bulk/reset", "admin", url.Values{"where": {"name:begins-with:SEP"}})
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "1 of 2 phones reset, 1 failed", `<a href="/phones/SEP000000000002">SEP000000000002</a></td><td class="st-fail">failed`)
	if strings.Join(n.got, ",") != "SEP000000000001,SEP000000000002" {
		t.Errorf("notified %v", n.got)
	}

	w = e.post("/bulk/reset", "admin", url.Values{"where": {"name:begins-with:SEP"}, webauth.CSRFField: {"wrong"}})
	wantStatus(t, w, http.StatusForbidden)
	if len(n.got) != 2 {
		t.Errorf("a forged bulk reset notified %v", n.got)
	}
}
