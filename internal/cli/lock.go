package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/capf-server/capf/internal/fault"
)

// lockDataDir makes sure one `capf serve` at a time uses a data directory:
// at start-up it fails every open attempt in the database, which would cut
// off a second server's live sessions (docs/adr/0004). The lock is released
// when the process exits, however it exits.
func (g *globals) lockDataDir() (release func(), err error) {
	path := g.dir().Lock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fault.Conflictf("data directory %s is in use by another capf serve (pid %s)", g.dataDir, strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
