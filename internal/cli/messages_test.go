package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStderrSaysTheRuleOnce: for rule violations of a device change, an
// import row, a parameter change and an account change, stderr says the
// rule once, without the chain of context the layers wrapped around it
// ("change device X: update device …"); with CAPF_ERROR_CHAIN=1 a log
// line on stderr holds that chain.
func TestStderrSaysTheRuleOnce(t *testing.T) {
	data := initData(t)
	const phone = "SEP001122334455"
	if out, errOut, code := run(t, data, "device", "add", phone, "--security-profile", "non-secure", "--auth-mode", "string", "--auth-string", "12345"); code != ExitOK {
		t.Fatalf("device add: %d %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "admin", "add", "alice"); code != ExitOK {
		t.Fatalf("admin add: %d %s%s", code, out, errOut)
	}
	bad := filepath.Join(data, "bad.csv")
	if err := os.WriteFile(bad, []byte("Device Name,Authentication String\n"+phone+",12ab\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		code  int
		rule  string // the whole of stderr, after "capf: "
		chain string // in the log line with CAPF_ERROR_CHAIN=1
	}{
		{"device-change", []string{"device", "set", phone, "--security-profile", "authenticated"}, ExitUsage,
			"device " + phone + ": a phone in authenticated security mode never contacts CAPF before it registers, so it cannot use By Authentication String; use null, lsc or mic, or the non-secure profile",
			"change device " + phone},
		{"import-row", []string{"device", "import", bad}, ExitUsage,
			bad + `: line 2: column Authentication String: authentication string "12ab": must be 4 to 10 digits`, ""},
		{"parameter", []string{"config", "set", "lsc_renew_before", "1m"}, ExitUsage, "lsc_renew_before 1m0s: want 0s (off) or at least 1h", ""},
		{"account-change", []string{"admin", "role", "alice", "viewer"}, ExitConflict,
			`account "alice" is the last admin: give another account the admin role first`, "set role of alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d: %s%s", code, tt.code, out, errOut)
			}
			if tt.rule != "" && errOut != "capf: "+tt.rule+"\n" {
				t.Errorf("stderr %q, want the rule once: %q", errOut, "capf: "+tt.rule+"\n")
			}
			for _, chain := range []string{"change device", "update device", "change the fleet", "set role of", "update account"} {
				if strings.Contains(errOut, chain) {
					t.Errorf("stderr holds the chain %q: %s", chain, errOut)
				}
			}
			t.Setenv(EnvErrorChain, "1")
			_, errOut, _ = run(t, data, tt.args...)
			if first, _, _ := strings.Cut(errOut, "\n"); tt.rule != "" && first != "capf: "+tt.rule {
				t.Errorf("with %s=1 the first line is %q, want the rule", EnvErrorChain, first)
			}
			if tt.chain != "" && (!strings.Contains(errOut, "command refused") || !strings.Contains(errOut, tt.chain)) {
				t.Errorf("with %s=1 no log line with the chain %q: %s", EnvErrorChain, tt.chain, errOut)
			}
		})
	}
}
