package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webui"
)

// viewerRoutes are the UI's routes a viewer may call, as webui.New
// registers them (the live-status stream aside: it takes no search). Keep
// it in step with New: a page added there that reads a search belongs
// here too.
var viewerRoutes = []struct {
	method, path string
	// takes lists the kinds of search (where, sort, form) the route
	// reads: naming the string in one of them must be 403.
	takes string
}{
	{"GET", "/", ""},
	{"GET", "/phones", "where sort form"},
	{"GET", "/phones/new", ""},
	{"GET", "/phones/SEP000000000001", ""},
	{"GET", "/phones/SEP000000000001/certificates/0", ""},
	{"GET", "/bulk", "where"},
	{"POST", "/bulk", "where sort form"}, // a write: refused to a viewer whatever it carries
	{"GET", "/campaigns", ""},
	{"POST", "/bulk/reset", "where sort form"},
	{"GET", "/campaigns/7", ""},
	{"POST", "/campaigns/7/cancel", ""},     // a write: refused to a viewer
	{"GET", "/campaigns/7/strings", ""},     // refused to a viewer
	{"GET", "/campaigns/7/strings.csv", ""}, // refused to a viewer
	{"GET", "/import", ""},
	{"GET", "/report.csv", "where sort"},
	{"GET", "/system/parameters", ""},
	{"GET", "/serviceability/activation", ""},
	{"GET", "/serviceability/backup", ""},
	{"GET", "/security/certificate", ""},
	{"GET", "/security/certificate/file", ""},
	{"POST", "/security/certificate/regenerate", ""}, // a write: refused to a viewer
	{"POST", "/security/certificate/activate", ""},
	{"POST", "/security/certificate/retire", ""},
	{"POST", "/security/certificate/import", ""}, // a write: refused to a viewer
	{"POST", "/security/certificate/csr", ""},
	{"GET", "/security/certificate/pending.csr", ""}, // refused to a viewer
	{"POST", "/security/certificate/install-signed", ""},
	{"POST", "/security/certificate/pending/discard", ""},
	{"POST", "/security/certificate/issuer", ""},
	{"POST", "/security/certificate/issuer/import", ""},
	{"POST", "/security/certificate/issuer/remove", ""},
	{"POST", "/security/certificate/issuer/forget", ""},
	{"GET", "/security/trust-file", ""},
	{"GET", "/security/trust-file/ITLFile.tlv", ""},
	{"GET", "/audit", ""},
}

// TestViewerCannotSearchByString walks every route a viewer may call with
// every way a search can name the authentication string (a condition, a
// sort, the Find form), once with the device's real string and once with
// a wrong one: a route that takes a search refuses it (403), and no route
// answers differently for the right string than for a wrong one, so
// neither a list, a count, a total nor a preview is an oracle. Before the
// fix, GET /bulk counted "auth-string:equals:N" as 1 or 0 for a viewer.
func TestViewerCannotSearchByString(t *testing.T) {
	e := newEnv(t)
	const secret, wrong = "73519046", "73519047"
	e.add(
		device.Device{Name: "SEP000000000001", AuthMode: device.AuthString, AuthString: secret, Operation: device.OpInstall},
		device.Device{Name: "SEP000000000002", AuthMode: device.AuthString, AuthString: "11112222", Operation: device.OpInstall},
	)
	searches := []struct {
		name, kind string
		query      func(s string) url.Values
	}{
		{"equals", "where", func(s string) url.Values { return url.Values{"where": {"auth-string:equals:" + s}} }},
		{"begins-with", "where", func(s string) url.Values { return url.Values{"where": {"auth-string:begins-with:" + s[:7]}} }},
		{"ends-with", "where", func(s string) url.Values { return url.Values{"where": {"auth-string:ends-with:" + s[len(s)-1:]}} }},
		{"within", "where", func(s string) url.Values {
			return url.Values{"where": {"name:begins-with:SEP", "auth-string:contains:" + s[4:]}}
		}},
		{"sort", "sort", func(string) url.Values { return url.Values{"sort": {"auth-string"}} }},
		{"find-form", "form", func(s string) url.Values {
			return url.Values{"field": {"auth-string"}, "match": {"equals"}, "value": {s}}
		}},
	}
	normalize := func(w *http.Response, body, s string) string {
		return w.Status + "\n" + strings.ReplaceAll(w.Header.Get("Location"), s, "S") + "\n" + strings.ReplaceAll(body, s, "S")
	}
	for _, rt := range viewerRoutes {
		for _, sc := range searches {
			t.Run(rt.method+rt.path+"/"+sc.name, func(t *testing.T) {
				answer := func(s string) (string, int) {
					t.Helper()
					q := sc.query(s)
					var w interface {
						Result() *http.Response
					}
					var body string
					if rt.method == http.MethodPost {
						q.Set("operation", string(device.OpInstall))
						q.Set("confirm", "yes")
						rec := e.post(rt.path, "viewer", q)
						w, body = rec, rec.Body.String()
					} else {
						rec := e.get(rt.path+"?"+q.Encode(), "viewer")
						w, body = rec, rec.Body.String()
					}
					res := w.Result()
					// A redirect (the Find form's, which carries what the
					// viewer typed) is followed, as a browser would.
					if loc := res.Header.Get("Location"); res.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/phones?") {
						rec := e.get(loc, "viewer")
						res, body = rec.Result(), rec.Body.String()
					}
					if strings.Contains(body, secret) {
						t.Errorf("%s %s?%s shows the string", rt.method, rt.path, q.Encode())
					}
					return normalize(res, body, s), res.StatusCode
				}
				right, code := answer(secret)
				other, _ := answer(wrong)
				if right != other {
					t.Errorf("the answer for the right string differs from a wrong one's:\nright:\n%.600s\nwrong:\n%.600s", right, other)
				}
				if strings.Contains(rt.takes, sc.kind) && code != http.StatusForbidden {
					t.Errorf("status %d, want 403 for a viewer's search by string", code)
				}
			})
		}
	}
	// The admin may: the count is the oracle the viewer must not have.
	w := e.get("/bulk?where=auth-string:equals:"+secret, "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="bulk-count">1<`)
}

// TestDashboardHidesStringsFromViewers runs the dashboard over the real
// device service, with a phone whose operation is in progress and one
// with an LSC, both with a string: the viewer's page lists the phone in
// progress and shows neither string (the page blanks them through the
// viewer's device.Reader, so a template that showed one would not leak).
func TestDashboardHidesStringsFromViewers(t *testing.T) {
	e := newEnv(t, func(o *webui.Options) { o.Campaigns = o.Devices.(*device.Service) })
	const busy, expiring = "SEP0000000000B1", "SEP0000000000E1"
	const busyString, expiringString = "31415926", "27182818"
	e.add(
		device.Device{Name: busy, AuthMode: device.AuthString, AuthString: busyString, Operation: device.OpInstall},
		device.Device{Name: expiring, AuthMode: device.AuthString, AuthString: expiringString, Operation: device.OpInstall},
	)
	e.giveLSC(expiring)
	ctx := context.Background()
	s := expiringString
	if _, err := e.devices.Change(ctx, device.CLIActor("test"), expiring, device.Change{AuthString: &s}); err != nil {
		t.Fatal(err)
	}
	d, err := e.devices.Get(ctx, busy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StartAttempt(ctx, device.Attempt{Device: busy, Operation: d.Operation, Node: "n1", Rev: d.Rev, StartedAt: testNow}); err != nil {
		t.Fatal(err)
	}
	w := e.get("/", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, busy)
	wantNoBody(t, w, busyString, expiringString)
	wantBody(t, e.get("/", "admin"), busy)
}
