package cli

import (
	"fmt"
	"log/slog"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fdlimit"
)

// connCap is the total cap on phone connections and how it was chosen.
type connCap struct {
	max   int
	limit uint64 // descriptor limit in force; 0 unknown
	from  string // "max_connections" or "derived"
}

func (c connCap) String() string {
	lim := "unknown"
	if c.limit > 0 {
		lim = fmt.Sprint(c.limit)
	}
	return fmt.Sprintf("%d (%s; descriptor limit %s)", c.max, c.from, lim)
}

// phoneConnCap raises the descriptor limit to its hard limit and returns the
// cap on open phone connections: max_connections, or derived from the limit
// with a reserve for the database and the listeners. A max_connections that
// eats into that reserve is used, with a warning.
func phoneConnCap(cfg config.Config, log *slog.Logger) connCap {
	soft, hard, err := fdlimit.Raise()
	if err != nil {
		log.Warn("could not raise the open-file limit; the connection cap follows the current one", "err", err, "soft", soft, "hard", hard)
	}
	derived := fdlimit.DefaultMaxConns(soft)
	if cfg.MaxConns <= 0 {
		return connCap{max: derived, limit: soft, from: "derived"}
	}
	if soft > 0 && cfg.MaxConns > derived {
		log.Warn("max_connections leaves too few descriptors for the database and the metrics listener under a flood",
			"max_connections", cfg.MaxConns, "descriptor_limit", soft, "suggested", derived)
	}
	return connCap{max: cfg.MaxConns, limit: soft, from: "max_connections"}
}
