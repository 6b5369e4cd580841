package webui

import (
	"sync"

	"github.com/capf-server/capf/internal/account"
)

// The default bounds of the live status streams (see Options).
const (
	// DefaultStreamsPerSession is how many live status streams one browser
	// session (or API token) may hold open at once: a few tabs.
	DefaultStreamsPerSession = 4
	// DefaultMaxStreams is how many live status streams the UI holds open
	// in total, a quarter of the admin listener's largest connection cap,
	// so streams (which are never evicted) cannot fill it.
	DefaultMaxStreams = 64
)

// streamSlots counts the open live status streams, per session and in
// total.
type streamSlots struct {
	perSession, total int
	mu                sync.Mutex
	open              map[string]int
	sum               int
}

// streamKey is what the per-session bound counts: the browser session,
// or the token's name for a token.
func streamKey(p account.Principal) string {
	if p.SessionID != "" {
		return "session:" + p.SessionID
	}
	return "token:" + p.Name
}

// acquire takes a slot for a stream of p, or reports why there is none:
// "session" when p's session holds its share, "total" when the UI does.
func (s *streamSlots) acquire(p account.Principal) (release func(), full string) {
	key := streamKey(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open[key] >= s.perSession:
		return nil, "session"
	case s.sum >= s.total:
		return nil, "total"
	}
	if s.open == nil {
		s.open = make(map[string]int)
	}
	s.open[key]++
	s.sum++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.sum--
			if s.open[key]--; s.open[key] <= 0 {
				delete(s.open, key)
			}
		})
	}, ""
}
