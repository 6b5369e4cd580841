package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/view"
)

// closedUntil is a maintenance schedule closed until a time.
type closedUntil struct{ until time.Time }

func (c closedUntil) Open(t time.Time) bool { return !t.Before(c.until) }
func (c closedUntil) NextOpen(t time.Time) time.Time {
	if c.Open(t) {
		return t
	}
	return c.until
}

// TestDashboardNotices: the dashboard says, as the web UI's banners do,
// what stops phones from enrolling right now (the API used to leave it
// out): the service deactivated, no maintenance window open and when the
// next opens; and nothing while the service is active and a window open.
func TestDashboardNotices(t *testing.T) {
	opens := testNow.Add(90 * time.Minute)
	for _, tc := range []struct {
		name      string
		active    bool
		windows   Windows
		wantKinds []string
	}{
		{name: "active, no windows", active: true, wantKinds: []string{}},
		{name: "active, window open", active: true, windows: closedUntil{testNow.Add(-time.Hour)}, wantKinds: []string{}},
		{name: "deactivated, window closed", windows: closedUntil{opens}, wantKinds: []string{"deactivated", "window-closed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.system.act = system.Activation{Active: tc.active}
			o := e.srv.o
			if tc.windows != nil {
				o.Windows = func() Windows { return tc.windows }
			}
			e.srv = newServer(o)
			e.h = withTestPrincipal(e.srv.mux)
			d := decode[view.Dashboard](t, e.do(asViewer, http.MethodGet, Prefix+"/dashboard", nil), http.StatusOK)
			if d.Notices == nil {
				t.Fatal("notices missing; want a list, empty or not")
			}
			var kinds []string
			for _, n := range d.Notices {
				kinds = append(kinds, n.Kind)
				if n.Message == "" {
					t.Errorf("notice %s without a message", n.Kind)
				}
				if n.Kind == "window-closed" {
					if n.NextOpen == nil || !n.NextOpen.Equal(opens) || !strings.Contains(n.Message, "opens Mon 2026-06-01 13:30 UTC (in 1h30m0s)") {
						t.Errorf("window notice %+v (next %v); want the next window at %v", n, n.NextOpen, opens)
					}
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.wantKinds, ",") {
				t.Errorf("notices %v; want %v", kinds, tc.wantKinds)
			}
		})
	}
}
