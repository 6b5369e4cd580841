package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile starts writing this process's CPU profile to path, a new
// file (mode 0600; an existing file is refused, never overwritten), and
// returns the function that stops the profile and closes the file. capf
// bench --cpu-profile passes it to the servers it starts, for
// docs/performance.md's "where the time goes".
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile %s: %w", path, err)
		}
		return nil
	}, nil
}
