package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCPUProfile: capf bench --cpu-profile has the server it spawns
// write its CPU profile (a gzip-compressed pprof protobuf) to the file,
// and a second run refuses to overwrite it.
func TestBenchCPUProfile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	args := []string{"--phones", "20", "--concurrency", "8", "--phone-key", "ec256", "--capf-key", "ec256", "--quiet", "--cpu-profile", file}
	checkBenchCounts(t, runBenchBinary(t, args...), 20)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	if len(b) < 100 || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("profile of %d bytes starting %x: want a gzip-compressed pprof profile", len(b), b[:min(len(b), 4)])
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("profile mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	out, err := exec.Command(capfBinary(t), append([]string{"bench"}, args...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cpu profile") || !strings.Contains(string(out), "exists") {
		t.Errorf("second run onto the same file: err %v, output %s; want a refusal naming the existing profile", err, out)
	}
	if b2, _ := os.ReadFile(file); !bytes.Equal(b, b2) {
		t.Error("the second run changed the existing profile")
	}
}
