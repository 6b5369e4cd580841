package cli

import (
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/system"
)

// TestParameterRestartMatchesSessions checks system's Restart flags
// against what the sessions read live (sessionConfig): a parameter without
// Restart changes the sessions' configuration, one with Restart does not.
func TestParameterRestartMatchesSessions(t *testing.T) {
	// A valid value other than the default for every parameter; the base
	// has a maintenance window so that its time zone matters.
	other := map[string]any{
		"listen": ":3805", "tls_profile": "legacy", "capf_key": "rsa3072", "certificate_validity_days": 365,
		"default_key": "ec256", "key_generation_max_time": "10m", "key_generation_max_attempts": 5,
		"manufacturer_ca_bundle": "mfr.pem", "allow_expired_mic": true, "sudi_verification": "off",
		"tls_handshake_timeout": "10s", "message_timeout": "30s", "log_level": "debug", "log_format": "json",
		"max_concurrent_operations": 5, "max_connections_per_address": 5, "max_connections": 5,
		"retry_delay": "30s", "maintenance_windows": []string{"Sat 00:00-06:00"}, "maintenance_time_zone": "Europe/Berlin",
		"metrics_listen": ":9999", "admin_listen": ":9443", "auth_string_max_failures": 5,
		"auth_string_backoff": "1s", "auth_failures_per_address": 5, "trust_file_dir": "trust-out",
		"trust_file_add": []string{"ccm=sip.pem"}, "database": "postgres://capf@db.example/capf",
		"crl_listen": ":8080", "crl_url": "http://capf.example.com/crl", "lsc_renew_before": "720h",
		"reset_ami_address": "127.0.0.1:5038", "reset_ami_user": "capf", "reset_ami_secret_file": "ami-secret", "reset_ami_ca_file": "pbx-ca.pem",
		"reset_command": []string{"/usr/local/bin/capf-reset"}, "reset_endpoint": "cisco-{device}", "reset_timeout": "5s",
		"reset_per_second": 2, "capf_servers": []string{"capf1.example", "capf2.example:3805"},
		"sast_key": "pkcs11:token=CAPF;object=sast", "pkcs11_module": "/usr/lib/softhsm/libsofthsm2.so", "pkcs11_pin_file": "token.pin",
	}
	base := []byte(`{"maintenance_windows": ["Mon 00:00-06:00"], "maintenance_time_zone": "UTC"}`)
	baseCfg, problems := config.DecodeOver(base, nil)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want, err := sessionConfig(baseCfg)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := system.ParametersOf(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Run(p.Name, func(t *testing.T) {
			v, ok := other[p.Name]
			if !ok {
				t.Fatalf("no other value for %s in this test", p.Name)
			}
			if b, _ := json.Marshal(v); string(b) == mustJSON(t, p.Default) {
				t.Fatalf("the other value of %s is its default", p.Name)
			}
			set := map[string]any{p.Name: v}
			if p.Name == "reset_ami_address" || p.Name == "reset_ami_ca_file" { // valid only with the address, its user and secret file
				set["reset_ami_address"], set["reset_ami_user"], set["reset_ami_secret_file"] = "127.0.0.1:5038", "capf", "ami-secret"
			}
			if p.Name == "pkcs11_pin_file" { // valid only with the module
				set["pkcs11_module"] = other["pkcs11_module"]
			}
			cfg, problems := config.DecodeOver(base, set)
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			if p.Name == "capf_servers" {
				// Not the sessions' but the snippet's: the admin listener
				// reads it live from the same source.
				lp, err := newLiveParams(nil, baseCfg, cfg, 1, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				if got := lp.CAPFServers(); p.Restart || !reflect.DeepEqual(got, v) {
					t.Fatalf("capf_servers: Restart %v, live %q; want %q read live", p.Restart, got, v)
				}
				return
			}
			got, err := sessionConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if live := !reflect.DeepEqual(got, want); live == p.Restart {
				t.Fatalf("%s: Restart %v, but the sessions read it live: %v", p.Name, p.Restart, live)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
