package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/capf-server/capf/internal/datadir"
)

// loadOrCreateNodeID returns the node id kept in dataDir, creating a new
// random one on first use. The store records it with every attempt a
// session claims, so that recovery after a crash fails only this node's
// attempts, never those of another node sharing the database.
func loadOrCreateNodeID(dataDir string) (string, error) {
	path := datadir.Dir(dataDir).NodeID()
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" || len(id) > 64 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz-") != "" {
			return "", fmt.Errorf("%s: %q is not a node id (lower-case letters, digits and '-', at most 64); remove the file to get a new one", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	id := "node-" + hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}
