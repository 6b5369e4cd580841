package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

// TestProblemSaysTheRuleOnce: for rule violations of a device change, an
// import row, a parameter change and an account change, the problem's
// detail is the rule's own message, once, with no "change device"/"update
// device" chain in the answer, its field as data; the chain goes to the
// log line that maps it.
func TestProblemSaysTheRuleOnce(t *testing.T) {
	e := newEnv(t)
	w := e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{
		"name": phone, "security_profile": "non-secure", "auth_mode": "string", "auth_string": "12345"})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	lastAdmin := fault.Conflictf("account %q is the last admin: give another account the admin role first", "bob")
	tests := []struct {
		name, method, path string
		body               any
		contentType        []string
		setup              func()
		status             int
		rule               string // the whole detail
		location           string // errors[0].location, "" for none
		chain              string // in the log line, with the rule
	}{
		{"device-change", http.MethodPatch, Prefix + "/devices/" + phone, map[string]any{"security_profile": "authenticated"}, nil, nil,
			422, "device " + phone + ": a phone in authenticated security mode never contacts CAPF before it registers, so it cannot use By Authentication String; use null, lsc or mic, or the non-secure profile",
			"body.auth_mode", "change device " + phone},
		{"import-row", http.MethodPost, Prefix + "/import", "Device Name,Authentication String\n" + phone + ",12ab\n", []string{"text/csv"}, nil,
			422, `line 2: column Authentication String: authentication string "12ab": must be 4 to 10 digits`, "line 2", ""},
		{"parameter", http.MethodPatch, Prefix + "/parameters", map[string]any{"values": map[string]any{"certificate_validity_days": 0}}, nil, nil,
			422, "certificate_validity_days: want a whole number of at least 1", "body.values.certificate_validity_days", "change the fleet parameters"},
		// As account.Service and its store wrap the last-admin rule.
		{"account-change", http.MethodPatch, Prefix + "/accounts/bob", map[string]any{"role": "viewer"}, nil,
			func() {
				e.accounts.fail = fmt.Errorf("set role of bob: %w", fmt.Errorf("update account bob: %w", lastAdmin))
			},
			409, `account "bob" is the last admin: give another account the admin role first`, "", "set role of bob: update account bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			e.logs.Reset()
			w := e.do(asAdmin, tt.method, tt.path, tt.body, tt.contentType...)
			p := problem(t, w, tt.status)
			if p.Detail != tt.rule {
				t.Errorf("detail %q, want the rule once: %q", p.Detail, tt.rule)
			}
			body := w.Body.String()
			for _, chain := range []string{"change device", "update device", "change the fleet", "set role of", "update account"} {
				if strings.Contains(body, chain) {
					t.Errorf("the answer holds the chain %q: %s", chain, body)
				}
			}
			if locs := p.locations(); tt.location != "" && (len(locs) == 0 || locs[0] != tt.location) {
				t.Errorf("locations %v, want %s first", locs, tt.location)
			}
			logs := e.logs.String()
			if tt.chain != "" && (!strings.Contains(logs, "api: request refused") || !strings.Contains(logs, tt.chain)) {
				t.Errorf("no log line with the chain %q: %s", tt.chain, logs)
			}
			if strings.Contains(logs, "level=ERROR") {
				t.Errorf("a refusal went to the error log: %s", logs)
			}
		})
	}
}
