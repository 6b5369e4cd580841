package cli

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// dataDirMode is the mode of the data directory: it holds the CAPF key, the
// database with the authentication strings, and the service parameters.
const dataDirMode fs.FileMode = 0o700

// tightenDataDir makes the data directory private to its owner if group or
// others have any access to it, and returns the mode it had (0 when it was
// already private). The server fixes this and warns rather than refusing:
// a directory made by hand or restored from a backup is often 0755, and its
// files are private anyway, so closing it costs nothing. (The CAPF key, by
// contrast, is refused: once readable by others it may be copied, and only
// the administrator can judge whether to keep it.)
func (g *globals) tightenDataDir() (fs.FileMode, error) {
	if runtime.GOOS == "windows" {
		return 0, nil
	}
	st, err := os.Stat(g.dataDir)
	if err != nil {
		return 0, fmt.Errorf("data directory: %w", err)
	}
	old := st.Mode().Perm()
	if old&0o077 == 0 {
		return 0, nil
	}
	if err := os.Chmod(g.dataDir, dataDirMode); err != nil {
		return old, fmt.Errorf("data directory %s is accessible by others (mode %04o) and could not be made private: %w; run `chmod 700 %s`", g.dataDir, old, err, g.dataDir)
	}
	return old, nil
}
