package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

func TestDefaultsAreValid(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParamsCoverEveryKey(t *testing.T) {
	all, _ := json.Marshal(Defaults())
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(all, &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(Params) {
		t.Errorf("Config has %d keys, Params lists %d", len(keys), len(Params))
	}
	for _, p := range Params {
		if _, ok := keys[p.Key]; !ok {
			t.Errorf("param %q has help text but is no key of Config", p.Key)
		}
	}
	for _, k := range FleetKeys {
		if !IsKey(k) {
			t.Errorf("fleet key %q is no parameter", k)
		}
	}
}

// TestNodeFileHoldsNodeSettings: the capf.json a first start writes holds
// every node setting and no fleet parameter, and loads back as the
// defaults.
func TestNodeFileHoldsNodeSettings(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteIfMissing(dir, Defaults()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("capf.json is not a JSON object: %v\n%s", err, b)
	}
	for _, p := range Params {
		if _, ok := got[p.Key]; ok == IsFleet(p.Key) {
			t.Errorf("capf.json has %q: %v; it is a fleet parameter: %v", p.Key, ok, IsFleet(p.Key))
		}
	}
	c, err := Load(dir)
	if err != nil || !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("Load of the written file = %+v, %v; want the defaults", c, err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr []string // substrings; empty means success
	}{
		{"ok/missing-file", "", nil},
		{"ok/partial", `{"certificate_validity_days": 365, "key_generation_max_time": "45m"}`, nil},
		{"fail/unknown-key", `{"validity": 5}`, []string{`unknown key "validity"`}},
		{"fail/syntax-with-position", "{\n  \"listen\": \":3804\",\n}", []string{"line 3, column 1"}},
		{"fail/not-an-object", `[1, 2]`, []string{"want a JSON object"}},
		{"fail/empty", ``, []string{"empty"}},
		{"fail/wrong-type", `{"certificate_validity_days": "365"}`, []string{`certificate_validity_days: want a whole number, got a string`}},
		{"fail/fraction", `{"key_generation_max_attempts": 2.5}`, []string{`key_generation_max_attempts: want a whole number`}},
		{"fail/bool", `{"allow_expired_mic": "yes"}`, []string{`allow_expired_mic: want true or false, got a string`}},
		{"fail/duration-number", `{"retry_delay": 60}`, []string{`retry_delay: want a duration string such as "90s" or "30m", got a number`}},
		{"fail/decode-and-value-problems-together", `{"message_timeout": "soon", "certificate_validity_days": 0, "bogus": 1, "log_level": "loud"}`,
			[]string{`message_timeout: "soon" is not a duration`, "certificate_validity_days 0", `unknown key "bogus"`, `log_level "loud"`}},
		{"fail/listen-no-port", `{"listen": "3804"}`, []string{`listen "3804": want host:port`}},
		{"fail/listen-port-range", `{"listen": ":99999"}`, []string{`listen ":99999": port "99999": want a number 0 to 65535`}},
		{"fail/listen-port-name", `{"listen": ":capf"}`, []string{`port "capf"`}},
		{"fail/metrics-listen", `{"metrics_listen": "localhost"}`, []string{`metrics_listen "localhost"`}},
		{"fail/admin-listen", `{"admin_listen": "8443"}`, []string{`admin_listen "8443": want host:port`}},
		{"ok/admin-listen-off", `{"admin_listen": ""}`, nil},
		{"ok/lsc-renew-before", `{"lsc_renew_before": "720h"}`, nil},
		{"ok/reset-ami", `{"reset_ami_address": "127.0.0.1:5038", "reset_ami_user": "capf", "reset_ami_secret_file": "ami-secret"}`, nil},
		{"ok/reset-command", `{"reset_command": ["/usr/local/bin/capf-reset", "--event", "{device}"], "reset_endpoint": "cisco-{device}"}`, nil},
		{"fail/reset-ami-incomplete", `{"reset_ami_address": "127.0.0.1:5038"}`, []string{`reset_ami_user "": reset_ami_address needs`, `reset_ami_secret_file "": reset_ami_address needs`}},
		{"ok/reset-ami-tls", `{"reset_ami_address": "pbx.example:5039", "reset_ami_user": "capf", "reset_ami_secret_file": "ami-secret", "reset_ami_ca_file": "pbx-ca.pem"}`, nil},
		{"fail/reset-ami-ca-without-address", `{"reset_ami_ca_file": "pbx-ca.pem"}`, []string{`reset_ami_ca_file "pbx-ca.pem": only with reset_ami_address`}},
		{"fail/reset-both", `{"reset_ami_address": "127.0.0.1:5038", "reset_ami_user": "capf", "reset_ami_secret_file": "s", "reset_command": ["/bin/true"]}`, []string{`reset_command: give reset_ami_address or reset_command, not both`}},
		{"fail/reset-command-relative", `{"reset_command": ["capf-reset"]}`, []string{`reset_command "capf-reset": the program must be an absolute path`}},
		{"fail/reset-endpoint", `{"reset_endpoint": "phone"}`, []string{`reset_endpoint "phone": want a template with {device} in it`}},
		{"fail/reset-bounds", `{"reset_timeout": "10m", "reset_per_second": 0}`, []string{`reset_timeout 10m0s: want 1s to 20s`, `reset_per_second 0: want 1 to 50`}},
		{"ok/lsc-renew-before-off", `{"lsc_renew_before": "0s"}`, nil},
		{"fail/lsc-renew-before-short", `{"lsc_renew_before": "10m"}`, []string{`lsc_renew_before 10m0s: want 0s (off) or at least 1h`}},
		{"fail/lsc-renew-before-validity", `{"lsc_renew_before": "48h", "certificate_validity_days": 2}`, []string{`lsc_renew_before 48h0m0s: must be shorter than the LSC validity`}},
		{"ok/crl-listen", `{"crl_listen": "127.0.0.1:8080"}`, nil},
		{"fail/crl-listen", `{"crl_listen": "8080"}`, []string{`crl_listen "8080": want host:port`}},
		{"ok/crl-url", `{"crl_url": "http://capf.example.com:8080/crl"}`, nil},
		{"fail/crl-url-https", `{"crl_url": "https://capf.example.com/crl"}`, []string{`crl_url "https://capf.example.com/crl": want an http:// URL`}},
		{"fail/crl-url-relative", `{"crl_url": "/crl"}`, []string{`crl_url "/crl": want an http:// URL`}},
		{"fail/crl-url-no-host", `{"crl_url": "http:///crl"}`, []string{`want a host`}},
		{"fail/crl-url-user", `{"crl_url": "http://u:p@capf/crl"}`, []string{`no user information`}},
		{"fail/crl-url-space", `{"crl_url": "http://capf/c rl"}`, []string{`visible ASCII`}},
		{"fail/all-problems-at-once", `{"certificate_validity_days": 0, "tls_profile": "old", "key_generation_max_attempts": 0}`,
			[]string{"certificate_validity_days 0", `tls_profile "old"`, "key_generation_max_attempts 0"}},
		{"fail/legacy-with-ec", `{"tls_profile": "legacy", "capf_key": "ec256"}`, []string{"needs an RSA CAPF key"}},
		{"fail/bad-duration", `{"message_timeout": "soon"}`, []string{"message_timeout"}},
		{"fail/trailing", `{} {}`, []string{"data after"}},
		{"ok/sudi-required", `{"sudi_verification": "required"}`, nil},
		{"ok/sudi-off", `{"sudi_verification": "off"}`, nil},
		{"fail/sudi-unknown", `{"sudi_verification": "always"}`, []string{`sudi_verification "always": want when-trusted, required or off`}},
		{"ok/max-connections", `{"max_connections": 5000}`, nil},
		{"ok/max-connections-derived", `{"max_connections": 0}`, nil},
		{"fail/max-connections-negative", `{"max_connections": -1}`, []string{"max_connections -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" || strings.HasPrefix(tt.name, "fail/") {
				if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(dir)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			for _, goName := range []string{"Go value", "config.", "int", "time.Duration"} {
				// Whole words: "int" is Go, "reset_endpoint" is not.
				if err != nil && regexp.MustCompile(`\b`+regexp.QuoteMeta(goName)).MatchString(err.Error()) && regexp.MustCompile(regexp.QuoteMeta(goName)+`\b`).MatchString(err.Error()) {
					t.Errorf("error %q speaks Go (%q), not JSON", err, goName)
				}
			}
			if err == nil {
				t.Fatalf("Load = %+v, want error", c)
			}
			if !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("error kind = %v, want invalid", fault.KindOf(err))
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// TestLoadKeepsTheFileValues checks that what the file says is what Load
// returns, key by key, and that keys the file leaves out keep their
// defaults.
func TestLoadKeepsTheFileValues(t *testing.T) {
	dir := t.TempDir()
	file := `{"listen": "127.0.0.1:4804", "tls_profile": "legacy", "certificate_validity_days": 365,
		"key_generation_max_time": "45m", "allow_expired_mic": true, "maintenance_windows": ["Mon-Fri 22:00-06:00"],
		"max_connections_per_address": 0, "metrics_listen": "[::1]:9804"}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Listen = "127.0.0.1:4804"
	want.TLSProfile = "legacy"
	want.CertificateValidityDays = 365
	want.KeyGenerationMaxTime = Duration(45 * time.Minute)
	want.AllowExpiredMIC = true
	want.MaintenanceWindows = []string{"Mon-Fri 22:00-06:00"}
	want.MaxConnsPerAddress = 0
	want.MetricsListen = "[::1]:9804"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLineCol(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		off       int64
		line, col int
	}{
		{"start", "abc", 0, 1, 1},
		{"first-line", "abc", 2, 1, 2},
		{"second-line", "ab\ncd", 5, 2, 2},
		{"past-end", "ab", 9, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, c := lineCol([]byte(tt.doc), tt.off); l != tt.line || c != tt.col {
				t.Errorf("lineCol(%q, %d) = %d:%d, want %d:%d", tt.doc, tt.off, l, c, tt.line, tt.col)
			}
		})
	}
}
