package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

// TestViewerCannotSearchByString walks every route the API registers, as a
// viewer, with every way a request can name the authentication string (a
// filter, a where condition, a sort; in a bulk body, the criteria), once
// with the device's real string and once with a wrong one. The routes that
// take a search refuse it (403); no route answers differently for the
// right string than for a wrong one, so no list, count, total or preview
// is an oracle; and none shows the string. A route added later is walked
// too: s.routes is the list huma serves.
func TestViewerCannotSearchByString(t *testing.T) {
	e := newEnv(t)
	const phone, secret, wrong = "SEP001122334455", "73519046", "73519047"
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": phone, "auth_mode": "string", "auth_string": secret, "operation": "install"}), http.StatusCreated)
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": "SEP00112233445A", "auth_mode": "string", "auth_string": "11112222", "operation": "install"}), http.StatusCreated)

	searches := map[string]func(s string) url.Values{
		"auth_string": func(s string) url.Values { return url.Values{"auth_string": {s}} },
		"equals":      func(s string) url.Values { return url.Values{"where": {"auth-string:equals:" + s}} },
		"begins-with": func(s string) url.Values { return url.Values{"where": {"auth-string:begins-with:" + s[:7]}} },
		"within": func(s string) url.Values {
			return url.Values{"where": {"name:begins-with:SEP", "auth-string:contains:" + s[4:]}}
		},
		"sort": func(string) url.Values { return url.Values{"sort": {"auth-string"}} },
	}
	// takesSearch are the routes whose query is a search: a string in it
	// must be refused as such (403), not merely ignored.
	takesSearch := map[string]bool{"GET /devices": true, "GET /report": true}
	fill := strings.NewReplacer("{name}", phone, "{id}", "1", "{index}", "0")
	for _, rt := range e.srv.routes {
		for name, q := range searches {
			t.Run(rt.Method+rt.Path+"/"+name, func(t *testing.T) {
				answer := func(s string) (string, int) {
					t.Helper()
					var body any
					if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
						// Every body that takes criteria gets them; others
						// ignore or refuse the field.
						body = map[string]any{"criteria": map[string]any{"auth_string": s}, "change": map[string]any{"operation": "install"}}
					}
					w := e.do(asViewer, rt.Method, Prefix+fill.Replace(rt.Path)+"?"+q(s).Encode(), body)
					if strings.Contains(w.Body.String(), secret) {
						t.Errorf("%s %s shows the string", rt.Method, rt.Path)
					}
					return w.Result().Status + "\n" + strings.ReplaceAll(w.Body.String(), s, "S"), w.Code
				}
				right, code := answer(secret)
				other, _ := answer(wrong)
				if right != other {
					t.Errorf("the answer for the right string differs from a wrong one's:\nright: %.400s\nwrong: %.400s", right, other)
				}
				if code < 400 {
					t.Errorf("status %d: a viewer's request naming the string was served", code)
				}
				if takesSearch[rt.Method+" "+rt.Path] && code != http.StatusForbidden {
					t.Errorf("status %d, want 403", code)
				}
			})
		}
	}
	// The admin may search by string: that is the oracle the viewer must
	// not have.
	if l := decode[view.DeviceList](t, e.do(asAdmin, http.MethodGet, Prefix+"/devices?auth_string="+secret, nil), http.StatusOK); l.Total != 1 {
		t.Errorf("admin's search by string: total %d, want 1", l.Total)
	}
}

// TestDashboardHidesStringsFromViewers runs the dashboard over the real
// device service with one phone whose operation is in progress and one
// whose LSC expires soon, both with a string: the viewer sees both phones
// and neither string; the admin sees the strings.
func TestDashboardHidesStringsFromViewers(t *testing.T) {
	e := newEnv(t)
	e.srv = newServer(Options{Devices: e.devices, Campaigns: e.devices})
	e.h = withTestPrincipal(e.srv.mux)
	ctx := context.Background()
	const busy, expiring = "SEP0000000000B1", "SEP0000000000E1"
	const busyString, expiringString = "31415926", "27182818"
	actor := device.CLIActor("test")
	for _, d := range []device.Device{
		{Name: busy, AuthMode: device.AuthString, AuthString: busyString, Operation: device.OpInstall},
		{Name: expiring, AuthMode: device.AuthString, AuthString: expiringString, Operation: device.OpInstall},
	} {
		if _, err := e.devices.Add(ctx, actor, d, false); err != nil {
			t.Fatal(err)
		}
	}
	start := func(name string) int64 {
		t.Helper()
		d, err := e.devices.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		claim, err := e.store.StartAttempt(ctx, device.Attempt{Device: name, Operation: d.Operation, Node: "n1", Rev: d.Rev, StartedAt: testNow})
		if err != nil {
			t.Fatal(err)
		}
		return claim.AttemptID
	}
	id := start(expiring)
	if err := e.store.FinishAttempt(ctx, device.Outcome{AttemptID: id, Node: "n1", Device: expiring, FinishedAt: testNow,
		Result: device.SuccessStatus(device.OpInstall), Completed: true,
		SetLSC: &device.Certificate{Serial: "0A", Issuer: "CN=CAPF-test", NotBefore: testNow, NotAfter: testNow.Add(5 * 24 * time.Hour), DER: e.cert.Raw}}); err != nil {
		t.Fatal(err)
	}
	// The string survives a completed install only if the administrator
	// set one again; set it, so that the expiring phone has one.
	s := expiringString
	if _, err := e.devices.Change(ctx, actor, expiring, device.Change{AuthString: &s}); err != nil {
		t.Fatal(err)
	}
	start(busy)

	for _, role := range []string{asViewer, asAdmin} {
		w := e.do(role, http.MethodGet, Prefix+"/dashboard", nil)
		d := decode[view.Dashboard](t, w, http.StatusOK)
		if len(d.InProgress) != 1 || d.InProgress[0].Name != busy || len(d.Expiring) != 1 || d.Expiring[0].Name != expiring {
			t.Fatalf("%s: dashboard in progress %+v, expiring %+v; want %s and %s", role, d.InProgress, d.Expiring, busy, expiring)
		}
		shows := strings.Contains(w.Body.String(), busyString) || strings.Contains(w.Body.String(), expiringString)
		if role == asViewer && shows {
			t.Errorf("the viewer's dashboard shows a string: %s", w.Body)
		}
		if role == asAdmin && (d.InProgress[0].AuthString != busyString || d.Expiring[0].AuthString != expiringString) {
			t.Errorf("the admin's dashboard lacks the strings: %s", w.Body)
		}
	}
}
