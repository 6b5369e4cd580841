package session

import (
	"context"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/device"
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
// device is. It counts the guesses of the last Window per address; at the
// budget, the address waits until the oldest leaves the window. The budget
// is the caller's (the session's Config.AuthFailuresPerAddress), so a
// change of the fleet parameter applies to the next guess; a budget of 0
// or less allows everything and counts nothing. With a ledger
// (NewSharedGuard) the guesses are kept in the database, so the budget
// holds for every node sharing it; without one they are kept in memory,
// per node, bounded in the addresses tracked. A nil *Guard allows
// everything.
type Guard struct {
	window time.Duration
	max    int
	ledger device.AddressGuesses

	mu    sync.Mutex
	byIP  map[string][]time.Time
	order []string // insertion order, for eviction
}

// Spent is one guess counted against an address, for Refund.
type Spent struct {
	ip string
	id int64 // the ledger's id; 0 in memory
}

// NewGuard returns a guard counting guesses per address per window, kept
// in memory.
func NewGuard(window time.Duration) *Guard {
	return &Guard{window: window, max: 100_000, byIP: map[string][]time.Time{}}
}

// NewSharedGuard returns a guard counting guesses per address per window
// across every node that shares ledger.
func NewSharedGuard(window time.Duration, ledger device.AddressGuesses) *Guard {
	g := NewGuard(window)
	g.ledger = ledger
	return g
}

// Window returns how long a guess counts against its address.
func (g *Guard) Window() time.Duration {
	if g == nil {
		return 0
	}
	return g.window
}

// AddressWait returns how long ip must wait before its next guess under a
// budget of budget guesses per window.
func (g *Guard) AddressWait(ctx context.Context, ip string, now time.Time, budget int) (time.Duration, error) {
	if g == nil || budget <= 0 {
		return 0, nil
	}
	if g.ledger != nil {
		nth, err := g.ledger.NthAddressGuess(ctx, ip, now.Add(-g.window), budget)
		if err != nil || nth.IsZero() {
			return 0, err
		}
		return max(nth.Add(g.window).Sub(now), time.Microsecond), nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ts := g.live(ip, now)
	if len(ts) < budget {
		return 0, nil
	}
	return ts[len(ts)-budget].Add(g.window).Sub(now), nil
}

// Spend counts a guess from ip, unless budget is 0 or less (no budget:
// nothing is counted).
func (g *Guard) Spend(ctx context.Context, ip string, now time.Time, budget int) (Spent, error) {
	if g == nil || budget <= 0 {
		return Spent{}, nil
	}
	if g.ledger != nil {
		id, err := g.ledger.RecordAddressGuess(ctx, ip, now)
		return Spent{ip: ip, id: id}, err
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
	return Spent{ip: ip}, nil
}

// Refund takes back the guess sp: it was right.
func (g *Guard) Refund(ctx context.Context, sp Spent) error {
	if g == nil || sp.ip == "" {
		return nil
	}
	if g.ledger != nil {
		if sp.id == 0 {
			return nil
		}
		return g.ledger.DeleteAddressGuess(ctx, sp.id)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ts := g.byIP[sp.ip]; len(ts) > 0 {
		g.byIP[sp.ip] = ts[:len(ts)-1]
	}
	return nil
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
