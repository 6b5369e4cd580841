package e2e

import (
	"os"
	"testing"
)

// TestMain removes what the run left outside t.TempDir: the capf binary
// built by capfBinary (about 20 MB in the temporary folder per run).
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			os.Stderr.WriteString("e2e: remove the test binary: " + err.Error() + "\n")
		}
	}
	os.Exit(code)
}
