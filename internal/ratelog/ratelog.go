// Package ratelog keeps floods out of the log: a Limiter lets through one
// line of a kind per Every and counts the ones it held back, so a flood
// (refused connections, refused logins, forged requests) costs a few lines,
// not one per attempt.
package ratelog

import (
	"sync"
	"time"
)

// Every is the least time between two log lines of one kind.
const Every = 10 * time.Second

// Limiter lets one line through per Every. The zero value is ready; a
// Limiter is safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether a line may be written at now and, if so, how many
// were held back since the last one.
func (r *Limiter) Allow(now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < Every {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}
