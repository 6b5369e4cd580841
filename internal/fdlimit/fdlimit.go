// Package fdlimit raises the process's open-file limit and derives from it
// how many phone connections the service may hold open, keeping a reserve
// of descriptors for the database, the listeners and the metrics and admin
// listener, so a connection flood cannot starve them.
package fdlimit

// Reserve bounds: the descriptors kept back from phone connections are
// ReserveBase plus ReservePercent of the limit.
const (
	ReserveBase    = 64
	ReservePercent = 10
)

// MaxDerived is the most connections DefaultMaxConns ever derives: beyond
// it the memory of idle TLS connections matters more than descriptors.
const MaxDerived = 100_000

// Unknown is the cap DefaultMaxConns gives when the limit is not known
// (platforms without RLIMIT_NOFILE).
const Unknown = 4096

// Raise lifts the soft RLIMIT_NOFILE to the hard limit and returns the
// limit now in force (soft) and the hard one. On platforms without such
// limits it returns 0, 0, nil. (Go itself raises the soft limit at start on
// Linux; Raise makes it explicit and reports the result.)
func Raise() (soft, hard uint64, err error) { return raise() }

// DefaultMaxConns is the connection cap for a descriptor limit:
// limit - (ReserveBase + ReservePercent% of limit), at most MaxDerived and
// at least a quarter of the limit (so that a small limit still serves some
// phones). A limit of 0 means unknown and gives Unknown.
func DefaultMaxConns(limit uint64) int {
	if limit == 0 {
		return Unknown
	}
	reserve := ReserveBase + limit*ReservePercent/100
	n := uint64(0)
	if limit > reserve {
		n = limit - reserve
	}
	n = max(n, limit/4)
	return int(max(min(n, MaxDerived), 1))
}
