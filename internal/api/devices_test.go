package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

const phone = "SEP001122334455"

// The life of one device through the API: create, read, change, list,
// audit, delete.
func TestDeviceLifecycle(t *testing.T) {
	e := newEnv(t)
	deadline := testNow.Add(48 * time.Hour).Format(time.RFC3339)
	w := e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{
		"name": strings.ToLower(phone), "description": "lobby", "security_profile": "Non Secure", "auth_mode": "string",
		"operation": "install", "key": "ec256", "deadline": deadline, "generate_string": true,
	})
	d := decode[view.Device](t, w, http.StatusCreated)
	for _, key := range []string{`"name"`, `"security_profile"`, `"auth_mode"`, `"auth_string"`, `"operation"`, `"deadline"`, `"status"`, `"lsc_status"`, `"created_at"`} {
		if !strings.Contains(w.Body.String(), key) {
			t.Errorf("the device JSON has no %s (the CLI's --json vocabulary): %s", key, w.Body)
		}
	}
	if got := w.Header().Get("Location"); got != Prefix+"/devices/"+phone {
		t.Errorf("Location %q", got)
	}
	if d.Name != phone || d.SecurityProfile != "non-secure" || d.Operation != "install" || d.Key != "ec256" ||
		d.Status != device.StatusPending || len(d.AuthString) != device.GeneratedStringLen || d.Deadline == nil {
		t.Errorf("created %+v", d)
	}

	detail := decode[view.DeviceDetail](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"?history=5", nil), http.StatusOK)
	if detail.Name != phone || detail.Description != "lobby" || detail.History == nil || detail.Fetched == nil {
		t.Errorf("detail %+v", detail)
	}

	// PATCH: only the fields given change; "" clears the deadline.
	d = decode[view.Device](t, e.do(asAdmin, http.MethodPatch, Prefix+"/devices/"+phone, map[string]any{"description": "hall", "deadline": ""}), http.StatusOK)
	if d.Description != "hall" || d.Deadline != nil || d.Key != "ec256" || d.Operation != "install" {
		t.Errorf("patched %+v", d)
	}
	d = decode[view.Device](t, e.do(asAdmin, http.MethodPatch, Prefix+"/devices/"+phone, map[string]any{"auth_string": "123456"}), http.StatusOK)
	if d.AuthString != "123456" {
		t.Errorf("auth string %q after PATCH", d.AuthString)
	}

	for _, n := range []string{"SEP00000000000A", "SEP00000000000B", "SEP00000000000C"} {
		decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": n, "description": "spare"}), http.StatusCreated)
	}
	tests := []struct {
		name  string
		query string
		total int
		names []string
	}{
		{"all", "", 4, []string{"SEP00000000000A", "SEP00000000000B", "SEP00000000000C", phone}},
		{"page", "?limit=2&offset=1", 4, []string{"SEP00000000000B", "SEP00000000000C"}},
		{"sort-desc", "?sort=name&desc=true&limit=1", 4, []string{phone}},
		{"description", "?description=spare", 3, []string{"SEP00000000000A", "SEP00000000000B", "SEP00000000000C"}},
		{"name-and-operation", "?name=SEP0011&operation=install", 1, []string{phone}},
		{"profile", "?security_profile=Non%20Secure&name=SEP0011", 1, []string{phone}},
		{"status", "?status=pending", 1, []string{phone}},
		{"lsc", "?lsc_status=none&limit=1", 4, []string{"SEP00000000000A"}},
		{"where", "?where=name:ends-with:B&where=description:equals:spare", 1, []string{"SEP00000000000B"}},
		{"where-empty", "?where=auth-string:is-not-empty", 1, []string{phone}},
		{"auth-string", "?auth_string=123456", 1, []string{phone}},
		{"expires-before", "?expires_before=720h", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := asViewer
			if strings.Contains(tt.query, "auth") {
				role = asAdmin // a viewer may not search by string (TestViewerSeesNoStrings)
			}
			l := decode[view.DeviceList](t, e.do(role, http.MethodGet, Prefix+"/devices"+tt.query, nil), http.StatusOK)
			var names []string
			for _, d := range l.Devices {
				names = append(names, d.Name)
			}
			if l.Total != tt.total || !slices.Equal(names, tt.names) || l.Devices == nil {
				t.Errorf("total %d %v, want %d %v", l.Total, names, tt.total, tt.names)
			}
		})
	}

	evs := decode[[]view.AuditEvent](t, e.do(asViewer, http.MethodGet, Prefix+"/audit?target="+phone+"&limit=10", nil), http.StatusOK)
	if len(evs) != 3 || evs[2].Action != device.AuditDeviceCreate || evs[0].Actor != "api:ops" || evs[0].From != "192.0.2.7" {
		t.Errorf("audit %+v", evs)
	}
	if evs := decode[[]view.AuditEvent](t, e.do(asViewer, http.MethodGet, Prefix+"/audit?limit=2", nil), http.StatusOK); len(evs) != 2 {
		t.Errorf("audit limit 2: %d events", len(evs))
	}

	w = e.do(asAdmin, http.MethodDelete, Prefix+"/devices/"+phone, nil)
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("DELETE: %d %s", w.Code, w.Body)
	}
	p := problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone, nil), http.StatusNotFound)
	if !strings.Contains(p.Detail, phone) {
		t.Errorf("404 detail %q", p.Detail)
	}
	problem(t, e.do(asAdmin, http.MethodDelete, Prefix+"/devices/"+phone, nil), http.StatusNotFound)
}

// Bad input is a problem that says what is wrong and which field, and
// changes nothing.
func TestDeviceValidation(t *testing.T) {
	e := newEnv(t)
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": phone}), http.StatusCreated)
	past := testNow.Add(-time.Hour).Format(time.RFC3339)
	tests := []struct {
		name, method, path string
		body               any
		status             int
		detail             string // a part of the detail
		location           string // the first error's location; "" for none
	}{
		{"bad-auth-string", "POST", "/devices", map[string]any{"name": "SEP0000000000AA", "auth_mode": "string", "auth_string": "12"}, 422, "4 to 10 digits", "body.auth_string"},
		{"letters-in-auth-string", "PATCH", "/devices/" + phone, map[string]any{"auth_string": "12ab56"}, 422, "4 to 10 digits", "body.auth_string"},
		{"unknown-security-profile", "POST", "/devices", map[string]any{"name": "SEP0000000000AA", "security_profile": "paranoid"}, 422, `security profile "paranoid"`, "body.security_profile"},
		{"unknown-auth-mode", "PATCH", "/devices/" + phone, map[string]any{"auth_mode": "psk"}, 422, "authentication mode", "body.auth_mode"},
		{"unknown-operation", "PATCH", "/devices/" + phone, map[string]any{"operation": "reboot"}, 422, "certificate operation", "body.operation"},
		{"unknown-key", "PATCH", "/devices/" + phone, map[string]any{"key": "dsa1024"}, 422, `key "dsa1024"`, "body.key"},
		{"bad-deadline", "PATCH", "/devices/" + phone, map[string]any{"deadline": "tomorrow"}, 422, "RFC 3339", "body.deadline"},
		{"past-deadline", "PATCH", "/devices/" + phone, map[string]any{"operation": "install", "deadline": past}, 422, "in the past", "body.deadline"},
		{"string-and-generate", "PATCH", "/devices/" + phone, map[string]any{"auth_mode": "string", "auth_string": "1234", "generate_string": true}, 422, "not both", "body.generate_string"},
		{"bad-name", "POST", "/devices", map[string]any{"name": "SEP12"}, 422, "SEP followed by", "body.name"},
		{"bad-path-name", "PATCH", "/devices/SEP12", map[string]any{"description": "x"}, 422, "SEP followed by", "path.name"},
		{"missing-name", "POST", "/devices", map[string]any{"description": "x"}, 422, "required property name", "body"},
		{"unknown-body-field", "PATCH", "/devices/" + phone, map[string]any{"auth_strng": "1234"}, 422, "unexpected property", "body.auth_strng"},
		{"wrong-type", "PATCH", "/devices/" + phone, map[string]any{"description": 7}, 422, "expected string", "body.description"},
		{"not-json", "POST", "/devices", "{", 400, "", "body"},
		{"duplicate", "POST", "/devices", map[string]any{"name": phone}, 409, "exists", ""},
		{"absent-device", "PATCH", "/devices/SEP0000000000AA", map[string]any{"description": "x"}, 404, "SEP0000000000AA", ""},
		{"bad-sort", "GET", "/devices?sort=colour", nil, 422, `sort "colour"`, "query.sort"},
		{"bad-where", "GET", "/devices?where=name", nil, 422, "FIELD:MATCH:VALUE", "query.where"},
		{"where-unknown-field", "GET", "/devices?where=colour:equals:red", nil, 422, "colour", "query.where"},
		{"bad-expires-before", "GET", "/devices?expires_before=soon", nil, 422, "expires-before", "query.expires_before"},
		{"bad-query-profile", "GET", "/devices?security_profile=paranoid", nil, 422, "paranoid", "query.security_profile"},
		{"bad-lsc-status", "GET", "/devices?lsc_status=shiny", nil, 422, "shiny", "query.lsc_status"},
		{"limit-too-big", "GET", "/devices?limit=5000", nil, 422, "query.limit", "query.limit"},
		{"negative-offset", "GET", "/devices?offset=-1", nil, 422, "query.offset", "query.offset"},
		{"unknown-query-parameter", "GET", "/devices?nmae=SEP", nil, 422, "unknown query parameter", "query.nmae"},
		{"history-limit", "GET", "/devices/" + phone + "/history?limit=0", nil, 422, "query.limit", "query.limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(asAdmin, tt.method, Prefix+tt.path, tt.body), tt.status)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, tt.detail)
			}
			locs := p.locations()
			if tt.location == "" && len(locs) != 0 || tt.location != "" && (len(locs) == 0 || locs[0] != tt.location) {
				t.Errorf("locations %v, want %q", locs, tt.location)
			}
			for _, er := range p.Errors {
				if strings.HasPrefix(er.Location, "body") && er.Value != nil {
					t.Errorf("the problem echoes a body value: %+v", er)
				}
			}
		})
	}
	d, err := e.devices.Get(t.Context(), phone)
	if err != nil || d.Description != "" || d.Operation != device.OpNone || d.AuthString != "" {
		t.Errorf("a refused change changed the device: %+v %v", d, err)
	}
	if l := decode[view.DeviceList](t, e.do(asViewer, http.MethodGet, Prefix+"/devices", nil), http.StatusOK); l.Total != 1 {
		t.Errorf("%d devices after refused creations, want 1", l.Total)
	}
}

// TestViewerSeesNoStrings: an authentication string is a credential; a
// viewer gets it blanked everywhere and cannot search or sort by it (a
// "begins with" search would reveal it digit by digit).
func TestViewerSeesNoStrings(t *testing.T) {
	e := newEnv(t)
	const phone = "SEP001122334455"
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": phone, "auth_mode": "string", "auth_string": "123456", "operation": "install"}), http.StatusCreated)
	if d := decode[view.DeviceDetail](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone, nil), http.StatusOK); d.AuthString != "" {
		t.Errorf("GET /devices/%s as viewer: auth_string %q", phone, d.AuthString)
	}
	if d := decode[view.DeviceDetail](t, e.do(asAdmin, http.MethodGet, Prefix+"/devices/"+phone, nil), http.StatusOK); d.AuthString != "123456" {
		t.Errorf("GET /devices/%s as admin: auth_string %q", phone, d.AuthString)
	}
	if l := decode[view.DeviceList](t, e.do(asViewer, http.MethodGet, Prefix+"/devices", nil), http.StatusOK); len(l.Devices) != 1 || l.Devices[0].AuthString != "" {
		t.Errorf("GET /devices as viewer: %+v", l.Devices)
	}
	if w := e.do(asViewer, http.MethodGet, Prefix+"/report", nil); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "123456") {
		t.Errorf("GET /report as viewer: %d, string shown: %v", w.Code, strings.Contains(w.Body.String(), "123456"))
	}
	for _, q := range []string{"?auth_string=123456", "?where=auth-string:begins-with:1", "?sort=auth-string", "?where=auth-string:is-empty"} {
		if w := e.do(asViewer, http.MethodGet, Prefix+"/devices"+q, nil); w.Code != http.StatusForbidden {
			t.Errorf("GET /devices%s as viewer: status %d, want 403", q, w.Code)
		}
		if w := e.do(asViewer, http.MethodGet, Prefix+"/report"+q, nil); w.Code != http.StatusForbidden {
			t.Errorf("GET /report%s as viewer: status %d, want 403", q, w.Code)
		}
	}
}

// TestLastContact: a device's latest contact, a refusal before a session
// included, is in its JSON (detail and list) as last_contact; a device
// never in contact has none.
func TestLastContact(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{phone, "SEP00000000000A"} {
		decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": n, "operation": "install", "auth_mode": "null"}), http.StatusCreated)
	}
	reason := "outside the maintenance windows; next opens 2026-12-04T22:00:00Z (RETRY_LATER, retry in 3600 s)"
	if err := e.store.RecordContacts(t.Context(), []device.Contact{{Device: phone, At: testNow, Remote: "192.0.2.7:5000", Outcome: device.ContactRetryLater, Reason: reason}}); err != nil {
		t.Fatal(err)
	}
	w := e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone, nil)
	d := decode[view.DeviceDetail](t, w, http.StatusOK)
	if c := d.LastContact; c == nil || !c.At.Equal(testNow) || c.Remote != "192.0.2.7:5000" || c.Outcome != "retry-later" || c.Reason != reason {
		t.Fatalf("last_contact = %+v in %s", d.LastContact, w.Body)
	}
	list := decode[view.DeviceList](t, e.do(asViewer, http.MethodGet, Prefix+"/devices", nil), http.StatusOK)
	if len(list.Devices) != 2 || list.Devices[0].LastContact != nil || list.Devices[1].LastContact == nil {
		t.Errorf("list %+v: want the contact on %s only", list.Devices, phone)
	}
	if w := e.do(asViewer, http.MethodGet, Prefix+"/openapi.json", nil); !strings.Contains(w.Body.String(), `"last_contact"`) {
		t.Error("the OpenAPI document does not describe last_contact")
	}
}
