package session

import (
	"sync"
	"time"
)

// Backoff spaces out the authentication-string guesses for one device: the
// first Free consecutive failures cost nothing, after that each guess must
// wait Base, doubling with every further failure, at most Max, after the
// previous failed one.
type Backoff struct {
	Free int
	Base time.Duration
	Max  time.Duration
}

// DefaultBackoff is the spacing of guesses at the defaults: 3 free, then
// 30 s, 1 min, 2 min … at most 30 min.
var DefaultBackoff = Backoff{Free: 3, Base: 30 * time.Second, Max: 30 * time.Minute}

// Wait returns how long a guess must still wait, given the device's
// consecutive failures and the time of the last one.
func (b Backoff) Wait(failures int, last, now time.Time) time.Duration {
	if b.Base <= 0 || failures < b.Free || last.IsZero() {
		return 0
	}
	d := b.Base
	for i := b.Free; i < failures && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if wait := last.Add(d).Sub(now); wait > 0 {
		return wait
	}
	return 0
}

// Guard is the per-address budget of authentication-string guesses, so
// that one source guessing many devices is slowed as one guessing one
// device is. It counts the guesses of the last Window per address; at
// Budget, the address waits until the oldest leaves the window. It is kept
// in memory per node and bounded in the addresses it tracks. A nil *Guard
// allows everything.
type Guard struct {
	budget int
	window time.Duration
	max    int

	mu    sync.Mutex
	byIP  map[string][]time.Time
	order []string // insertion order, for eviction
}

// NewGuard returns a guard allowing budget guesses per address per window;
// budget <= 0 returns nil (no budget).
func NewGuard(budget int, window time.Duration) *Guard {
	if budget <= 0 {
		return nil
	}
	return &Guard{budget: budget, window: window, max: 100_000, byIP: map[string][]time.Time{}}
}

// AddressWait returns how long ip must wait before its next guess.
func (g *Guard) AddressWait(ip string, now time.Time) time.Duration {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ts := g.live(ip, now)
	if len(ts) < g.budget {
		return 0
	}
	return ts[len(ts)-g.budget].Add(g.window).Sub(now)
}

// Spend counts a guess from ip.
func (g *Guard) Spend(ip string, now time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ts := g.live(ip, now)
	if _, known := g.byIP[ip]; !known {
		if len(g.order) >= g.max {
			delete(g.byIP, g.order[0])
			g.order = g.order[1:]
		}
		g.order = append(g.order, ip)
	}
	g.byIP[ip] = append(ts, now)
}

// Refund takes back the latest guess of ip: it was right.
func (g *Guard) Refund(ip string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ts := g.byIP[ip]; len(ts) > 0 {
		g.byIP[ip] = ts[:len(ts)-1]
	}
}

// live drops the guesses of ip older than the window and returns the rest.
func (g *Guard) live(ip string, now time.Time) []time.Time {
	ts := g.byIP[ip]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-g.window)) {
		i++
	}
	if i > 0 {
		ts = append(ts[:0], ts[i:]...)
		g.byIP[ip] = ts
	}
	return ts
}

// Bounds for phone-supplied text kept in summaries, logs and the history
// (see safetext.Bound).
const (
	MaxReasonText = 512
)
