package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/view"
)

func TestBulkAndCampaigns(t *testing.T) {
	e := newEnv(t)
	w := e.do(asAdmin, http.MethodPost, Prefix+"/bulk", map[string]any{
		"criteria": map[string]any{"name": "SEP00", "lsc_status": "none", "where": []string{"description:contains:lobby"}},
		"change":   map[string]any{"operation": "install", "auth_mode": "string", "generate_string": true, "key": "rsa2048"},
	})
	c := decode[device.Campaign](t, w, http.StatusCreated)
	if c.ID != 1 || c.Actor != "api:ops" || c.Operation != device.OpInstall || w.Header().Get("Location") != Prefix+"/campaigns/1" {
		t.Errorf("campaign %+v, Location %q", c, w.Header().Get("Location"))
	}
	crit, ch := e.campaigns.criteria[0], e.campaigns.changes[0]
	if crit.Name != "SEP00" || crit.LSCStatus != "none" || !slices.Equal(crit.Where, []string{"description:contains:lobby"}) {
		t.Errorf("criteria %+v", crit)
	}
	if ch.Operation == nil || *ch.Operation != device.OpInstall || ch.AuthMode == nil || *ch.AuthMode != device.AuthString || !ch.GenerateString || ch.Key == nil {
		t.Errorf("change %+v", ch)
	}

	tests := []struct {
		name     string
		body     any
		detail   string
		location string
	}{
		{"no-operation", map[string]any{"criteria": map[string]any{"name": "SEP"}, "change": map[string]any{"description": "x"}}, "operation", "body.change.operation"},
		{"bad-criteria", map[string]any{"criteria": map[string]any{"security_profile": "paranoid"}, "change": map[string]any{"operation": "install"}}, "paranoid", "body.criteria.security_profile"},
		{"bad-where", map[string]any{"criteria": map[string]any{"where": []string{"x"}}, "change": map[string]any{"operation": "install"}}, "FIELD:MATCH:VALUE", "body.criteria.where"},
		{"bad-change", map[string]any{"criteria": map[string]any{}, "change": map[string]any{"operation": "install", "key": "rsa1"}}, "rsa1", "body.change.key"},
		{"no-match", map[string]any{"criteria": map[string]any{"name": "NOMATCH"}, "change": map[string]any{"operation": "install"}}, "no phone matches", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/bulk", tt.body), http.StatusUnprocessableEntity)
			locs := p.locations()
			if !strings.Contains(p.Detail, tt.detail) || tt.location != "" && !slices.Equal(locs, []string{tt.location}) || tt.location == "" && len(locs) != 0 {
				t.Errorf("problem %+v, want detail with %q at %q", p, tt.detail, tt.location)
			}
		})
	}
	if len(e.campaigns.campaigns) != 1 {
		t.Errorf("%d campaigns after refused ones, want 1", len(e.campaigns.campaigns))
	}

	cs := decode[[]device.Campaign](t, e.do(asViewer, http.MethodGet, Prefix+"/campaigns?limit=10", nil), http.StatusOK)
	if len(cs) != 1 || cs[0].ID != 1 {
		t.Errorf("campaigns %+v", cs)
	}
	pr := decode[device.CampaignProgress](t, e.do(asViewer, http.MethodGet, Prefix+"/campaigns/1", nil), http.StatusOK)
	if pr.ID != 1 || pr.Done != 1 || len(pr.Failures) != 1 || pr.PerMinute == nil {
		t.Errorf("progress %+v", pr)
	}
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/campaigns/7", nil), http.StatusNotFound)
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/campaigns/x", nil), http.StatusUnprocessableEntity)
}

func TestDashboard(t *testing.T) {
	e := newEnv(t)
	until := testNow.Add(10 * 24 * time.Hour)
	e.campaigns.dashboard = device.Dashboard{
		Devices: 3, ByStatus: []device.Count{{Value: "None", Count: 2}, {Value: device.StatusInProgress, Count: 1}},
		ByLSC: []device.Count{{Value: "valid", Count: 1}}, ExpiringSoon: 1, ExpiringWeek: 1, RenewalsWaiting: 4,
		Expiring:       []device.Device{{Name: "SEP000000000001", LSC: &device.Certificate{Serial: "01", NotAfter: until}}},
		InProgress:     []device.Device{{Name: "SEP000000000002", Status: device.StatusInProgress}},
		RecentFailures: []device.Attempt{{Device: "SEP000000000003", StartedAt: testNow, Result: "Upgrade Failed: Invalid Authentication String", Reason: "wrong string"}},
		Unknown: device.UnknownNames{Count: 7, Malformed: 2, Since: testNow.Add(-time.Hour),
			Latest: []device.UnknownName{{Name: "SEP0000000000FF", At: testNow, Remote: "192.0.2.4"}}},
	}
	d := decode[view.Dashboard](t, e.do(asViewer, http.MethodGet, Prefix+"/dashboard", nil), http.StatusOK)
	if u := d.Unconfigured; u.Count != 7 || u.Malformed != 2 || u.Since == nil || len(u.Latest) != 1 || u.Latest[0].Name != "SEP0000000000FF" || u.Latest[0].Remote != "192.0.2.4" {
		t.Errorf("phones that asked but are not configured: %+v", u)
	}
	if d.ExpiringWeek != 1 || d.RenewalsWaiting != 4 {
		t.Errorf("expiring within 7 days %d, renewals waiting %d; want 1, 4", d.ExpiringWeek, d.RenewalsWaiting)
	}
	if d.Devices != 3 || len(d.ByStatus) != 2 || d.ExpiringSoon != 1 || len(d.Expiring) != 1 || d.Expiring[0].LSCStatus != "valid" ||
		len(d.InProgress) != 1 || len(d.RecentFailures) != 1 || d.RecentFailures[0].Device != "SEP000000000003" || d.RecentFailures[0].Reason != "wrong string" {
		t.Errorf("dashboard %+v", d)
	}
}

func TestParametersAndActivation(t *testing.T) {
	e := newEnv(t)
	ps := decode[[]system.Parameter](t, e.do(asViewer, http.MethodGet, Prefix+"/parameters", nil), http.StatusOK)
	if len(ps) != 2 || ps[0].Name != "certificate_validity_days" {
		t.Errorf("parameters %+v", ps)
	}
	ps = decode[[]system.Parameter](t, e.do(asAdmin, http.MethodPatch, Prefix+"/parameters", map[string]any{"values": map[string]any{"certificate_validity_days": 30}}), http.StatusOK)
	if ps[0].Value != float64(30) {
		t.Errorf("after PATCH %+v", ps)
	}
	tests := []struct {
		name     string
		body     any
		status   int
		location string
	}{
		{"out-of-range", map[string]any{"values": map[string]any{"certificate_validity_days": 0}}, 422, "body.values.certificate_validity_days"},
		{"unknown", map[string]any{"values": map[string]any{"colour": "red"}}, 422, "body.values.colour"},
		{"empty", map[string]any{"values": map[string]any{}}, 422, "body.values"},
		{"no-values", map[string]any{}, 422, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(asAdmin, http.MethodPatch, Prefix+"/parameters", tt.body), tt.status)
			if locs := p.locations(); len(locs) == 0 || locs[0] != tt.location {
				t.Errorf("locations %v, want %s", locs, tt.location)
			}
		})
	}
	if ps, _ := e.system.Parameters(t.Context()); ps[0].Value != float64(30) {
		t.Errorf("a refused update changed a parameter: %+v", ps[0])
	}

	a := decode[system.Activation](t, e.do(asViewer, http.MethodGet, Prefix+"/service", nil), http.StatusOK)
	if !a.Active {
		t.Errorf("activation %+v", a)
	}
	a = decode[system.Activation](t, e.do(asAdmin, http.MethodPut, Prefix+"/service", map[string]any{"active": false}), http.StatusOK)
	if a.Active || a.ChangedBy != "api:ops" {
		t.Errorf("after PUT %+v", a)
	}
	problem(t, e.do(asAdmin, http.MethodPut, Prefix+"/service", map[string]any{"active": "no"}), http.StatusUnprocessableEntity)
	if !slices.Equal(e.system.actors, []string{"api:ops", "api:ops"}) {
		t.Errorf("actors %v", e.system.actors)
	}
}

func TestAccountsAndTokens(t *testing.T) {
	e := newEnv(t)
	acc := decode[account.Account](t, e.do(asAdmin, http.MethodPost, Prefix+"/accounts", map[string]any{"name": "eve", "role": "viewer", "password": "correct horse"}), http.StatusCreated)
	if acc.Name != "eve" || acc.Role != account.RoleViewer {
		t.Errorf("created %+v", acc)
	}
	list := decode[[]account.Account](t, e.do(asAdmin, http.MethodGet, Prefix+"/accounts", nil), http.StatusOK)
	if len(list) != 2 {
		t.Errorf("accounts %+v", list)
	}
	acc = decode[account.Account](t, e.do(asAdmin, http.MethodPatch, Prefix+"/accounts/eve", map[string]any{"role": "admin", "password": "battery staple"}), http.StatusOK)
	if acc.Role != account.RoleAdmin {
		t.Errorf("patched %+v", acc)
	}
	acc = decode[account.Account](t, e.do(asAdmin, http.MethodPatch, Prefix+"/accounts/eve", map[string]any{"password": "another one"}), http.StatusOK)
	if acc.Name != "eve" {
		t.Errorf("password change returned %+v", acc)
	}
	w := e.do(asAdmin, http.MethodPatch, Prefix+"/accounts/eve", map[string]any{"disabled": true})
	acc = decode[account.Account](t, w, http.StatusOK)
	if !acc.Disabled() || !strings.Contains(w.Body.String(), `"disabled_at"`) {
		t.Errorf("disabled: %s", w.Body.String())
	}
	acc = decode[account.Account](t, e.do(asAdmin, http.MethodPatch, Prefix+"/accounts/eve", map[string]any{"disabled": false}), http.StatusOK)
	if w := e.do(asAdmin, http.MethodGet, Prefix+"/accounts", nil); acc.Disabled() || strings.Contains(w.Body.String(), "disabled_at") {
		t.Errorf("enabled: %+v; listing %s", acc, w.Body.String())
	}

	tests := []struct {
		name, method, path string
		body               any
		status             int
		location           string
	}{
		{"bad-role", "POST", "/accounts", map[string]any{"name": "x", "role": "root", "password": "correct horse"}, 422, "body.role"},
		{"short-password", "POST", "/accounts", map[string]any{"name": "x", "role": "admin", "password": "short"}, 422, "body.password"},
		{"exists", "POST", "/accounts", map[string]any{"name": "eve", "role": "admin", "password": "correct horse"}, 409, ""},
		{"patch-nothing", "PATCH", "/accounts/eve", map[string]any{}, 422, ""},
		{"patch-bad-role", "PATCH", "/accounts/eve", map[string]any{"role": "root", "password": "never set"}, 422, "body.role"},
		{"patch-short-password", "PATCH", "/accounts/eve", map[string]any{"password": "short"}, 422, "body.password"},
		{"patch-absent", "PATCH", "/accounts/bob", map[string]any{"role": "admin"}, 404, ""},
		{"last-admin", "DELETE", "/accounts/admin", nil, 409, ""},
		{"disable-last-admin", "PATCH", "/accounts/admin", map[string]any{"disabled": true}, 409, ""},
		{"disable-absent", "PATCH", "/accounts/bob", map[string]any{"disabled": true}, 404, ""},
		{"disable-not-bool", "PATCH", "/accounts/eve", map[string]any{"disabled": "yes"}, 422, "body.disabled"},
		{"delete-absent", "DELETE", "/accounts/bob", nil, 404, ""},
		{"token-bad-expiry", "POST", "/tokens", map[string]any{"name": "ci", "role": "admin", "expires": "soon"}, 422, "body.expires"},
		{"token-bad-role", "POST", "/tokens", map[string]any{"name": "ci", "role": "god", "expires": "0"}, 422, "body.role"},
		{"revoke-absent", "DELETE", "/tokens/none", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(asAdmin, tt.method, Prefix+tt.path, tt.body), tt.status)
			locs := p.locations()
			if tt.location == "" && len(locs) != 0 || tt.location != "" && !slices.Equal(locs, []string{tt.location}) {
				t.Errorf("locations %v, want %q (%s)", locs, tt.location, p.Detail)
			}
		})
	}
	// Two good password changes and the short one reached the service; the
	// PATCH with a bad role did not set its password.
	passwd := 0
	for _, c := range e.accounts.calls {
		if c == "passwd api:ops eve" {
			passwd++
		}
	}
	if passwd != 3 {
		t.Errorf("%d password changes, want 3: %v", passwd, e.accounts.calls)
	}

	w = e.do(asAdmin, http.MethodPost, Prefix+"/tokens", map[string]any{"name": "ci", "role": "viewer", "expires": "90d"})
	tok := decode[NewToken](t, w, http.StatusCreated)
	if tok.Token != "capf_secret_ci" || tok.Name != "ci" || tok.Role != "viewer" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(testNow.Add(90*24*time.Hour)) {
		t.Errorf("token %+v", tok)
	}
	tok = decode[NewToken](t, e.do(asAdmin, http.MethodPost, Prefix+"/tokens", map[string]any{"name": "forever", "role": "admin", "expires": "0"}), http.StatusCreated)
	if tok.ExpiresAt != nil || strings.Contains(w.Body.String(), "expires_at\":\"0001") {
		t.Errorf("a token that never expires: %+v", tok)
	}
	toks := decode[[]account.Token](t, e.do(asAdmin, http.MethodGet, Prefix+"/tokens", nil), http.StatusOK)
	if len(toks) != 2 || strings.Contains(fmt.Sprint(toks), "secret") {
		t.Errorf("tokens %+v", toks)
	}
	if w := e.do(asAdmin, http.MethodDelete, Prefix+"/tokens/ci", nil); w.Code != http.StatusNoContent {
		t.Errorf("revoke: %d %s", w.Code, w.Body)
	}
	if w := e.do(asAdmin, http.MethodDelete, Prefix+"/accounts/eve", nil); w.Code != http.StatusNoContent {
		t.Errorf("remove: %d %s", w.Code, w.Body)
	}
	for _, c := range e.accounts.calls {
		if !strings.Contains(c, " api:ops ") {
			t.Errorf("call %q not by the principal", c)
		}
	}
}

// The one error mapping: kinds to statuses, Internal errors hidden from
// the client and logged, Retry-After for a throttled request.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		err        error
		status     int
		detail     string
		retryAfter string
	}{
		{"internal", fmt.Errorf("list: %w", errors.New("disk /var/lib/capf/capf.db: I/O error")), 500, "internal error; see the server log", ""},
		{"throttled", &throttledError{wait: 1500 * time.Millisecond}, 429, "too many attempts; wait 90s", "2"},
		{"throttled-unknown-wait", &throttledError{}, 429, "too many attempts; wait 90s", ""},
		{"unavailable", unavailable("accounts are"), 503, "accounts are not available on this server", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.accounts.fail = tt.err
			w := e.do(asAdmin, http.MethodGet, Prefix+"/accounts", nil)
			p := problem(t, w, tt.status)
			if p.Detail != tt.detail || w.Header().Get("Retry-After") != tt.retryAfter {
				t.Errorf("detail %q Retry-After %q, want %q %q", p.Detail, w.Header().Get("Retry-After"), tt.detail, tt.retryAfter)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "I/O error") {
		t.Errorf("the internal error is not in the log: %s", e.logs)
	}
	if strings.Contains(e.logs.String(), "wait 90s") {
		t.Errorf("a client error went to the error log: %s", e.logs)
	}
}

// Without the sibling services, their routes answer 503 and the device
// routes still work.
func TestMissingServices(t *testing.T) {
	e := newEnv(t)
	s := newServer(Options{Devices: e.devices})
	h := withTestPrincipal(s.mux)
	for _, path := range []string{"/accounts", "/tokens", "/parameters", "/service", "/campaigns", "/dashboard", "/capf-certificate", "/capf-certificate/file"} {
		e2 := *e
		e2.h = h
		problem(t, e2.do(asAdmin, http.MethodGet, Prefix+path, nil), http.StatusServiceUnavailable)
	}
	e.h = h
	decode[view.DeviceList](t, e.do(asAdmin, http.MethodGet, Prefix+"/devices", nil), http.StatusOK)
}
