package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/datadir"
)

// TestBuildNotifierAMITLS: reset_ami_ca_file is read, relative to the
// data directory, when the notifier is built; a file without a
// certificate is refused naming it, so a node never falls back to
// sending the AMI secret in clear.
func TestBuildNotifierAMITLS(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ami-secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.ResetAMIAddress, cfg.ResetAMIUser, cfg.ResetAMISecretFile = "pbx.example:5039", "capf", "ami-secret"
	cfg.ResetAMICAFile = "pbx-ca.pem"
	if _, err := buildNotifier(cfg, datadir.Dir(dir)); err == nil || !strings.Contains(err.Error(), "pbx-ca.pem") {
		t.Fatalf("a missing CA file: %v, want refused naming it", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pbx-ca.pem"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := buildNotifier(cfg, datadir.Dir(dir)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v, want refused", err)
	}
	cfg.ResetAMICAFile = ""
	if n, err := buildNotifier(cfg, datadir.Dir(dir)); err != nil || n == nil {
		t.Fatalf("plain AMI: %v %v", n, err)
	}
}
