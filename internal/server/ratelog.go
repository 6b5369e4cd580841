package server

import (
	"sync"
	"time"
)

// rateLogEvery is the least time between two log lines of one kind that a
// flood can trigger (refused connections, failing accepts).
const rateLogEvery = 10 * time.Second

// rateLog lets through one log line per rateLogEvery and counts the ones it
// held back, so a flood costs a few lines, not one per connection. The zero
// value is ready.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether a line may be written at now and, if so, how many
// were suppressed since the last one.
func (r *rateLog) allow(now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < rateLogEvery {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}
