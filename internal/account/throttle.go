package account

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// The login throttle. Per account (in the database, so it holds across
// nodes and restarts): the first FreeFailures consecutive failures cost
// nothing; after that each attempt must wait a delay that doubles from
// FirstDelay up to MaxDelay after the previous one. At the cap an attacker
// gets 3600/300 = 12 guesses an hour, and the real administrator gets in at
// most MaxDelay after the attacker stops. Per remote address (in memory,
// per node): at most AddrFailures failures in AddrWindow. Unknown usernames
// get the per-account delay too (in memory, per node), with the same
// message, so that the throttle does not reveal which names exist.
const (
	FreeFailures = 5
	FirstDelay   = time.Second
	MaxDelay     = 5 * time.Minute
	AddrFailures = 20
	AddrWindow   = 10 * time.Minute
)

// maxAddrEntries bounds the per-address table; past it, entries whose
// window has passed are dropped, and then the oldest.
const maxAddrEntries = 10000

// LoginDelay is how long after the failures-th consecutive failure the next
// password may be evaluated.
func LoginDelay(failures int) time.Duration {
	if failures < FreeFailures {
		return 0
	}
	n := failures - FreeFailures // 0 after the 5th failure
	if n >= 20 {
		return MaxDelay
	}
	return min(FirstDelay<<n, MaxDelay)
}

// throttledError is a Throttled fault that knows how long to wait.
type throttledError struct {
	err  *fault.Error
	wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }
func (e *throttledError) Unwrap() error { return e.err }

// throttled returns a Throttled error asking to wait d (rounded up to whole
// seconds).
func throttled(d time.Duration, what string) error {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &throttledError{
		err:  &fault.Error{Kind: fault.Throttled, Msg: fmt.Sprintf("too many failed logins %s: wait %d seconds before trying again", what, secs)},
		wait: time.Duration(secs) * time.Second,
	}
}

// RetryAfter returns how long a Throttled error from Login asks to wait
// (for a Retry-After header), or 0 for any other error.
func RetryAfter(err error) time.Duration {
	var t *throttledError
	if errors.As(err, &t) {
		return t.wait
	}
	return 0
}

// addrThrottle counts recent failed logins per remote address. IPv6
// addresses count per /64, which one host usually controls whole.
type addrThrottle struct {
	mu   sync.Mutex
	fail map[string][]time.Time // oldest first, at most AddrFailures
}

// addrKey returns the key remote counts under: the IP (without port), an
// IPv6 one masked to /64; remote itself if it is no address.
func addrKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return remote
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// reserve counts one failure for key in advance, unless key has used its
// budget, in which case it returns how long until its oldest failure leaves
// the window.
func (t *addrThrottle) reserve(key string, now time.Time) (wait time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail == nil {
		t.fail = make(map[string][]time.Time)
	}
	ts := recent(t.fail[key], now)
	if len(ts) >= AddrFailures {
		t.fail[key] = ts
		return ts[0].Add(AddrWindow).Sub(now), false
	}
	if _, exists := t.fail[key]; !exists && len(t.fail) >= maxAddrEntries {
		t.prune(now)
	}
	t.fail[key] = append(ts, now)
	return 0, true
}

// release takes back the failure reserve counted, after a successful login.
func (t *addrThrottle) release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.fail[key]
	if len(ts) <= 1 {
		delete(t.fail, key)
		return
	}
	t.fail[key] = ts[:len(ts)-1]
}

// recent returns the tail of ts inside the window ending at now.
func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-AddrWindow)) {
		i++
	}
	return ts[i:]
}

// prune drops the keys whose failures have all left the window and, if the
// table is still full, the key whose newest failure is the oldest.
func (t *addrThrottle) prune(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, ts := range t.fail {
		ts = recent(ts, now)
		if len(ts) == 0 {
			delete(t.fail, k)
			continue
		}
		t.fail[k] = ts
		if last := ts[len(ts)-1]; oldestKey == "" || last.Before(oldest) {
			oldestKey, oldest = k, last
		}
	}
	if len(t.fail) >= maxAddrEntries {
		delete(t.fail, oldestKey)
	}
}

// ghostThrottle applies the per-account delay to usernames that do not
// exist, in memory, so that being throttled "for this account" does not
// tell an attacker which names are real.
type ghostThrottle struct {
	mu sync.Mutex
	m  map[string]ghost
}

type ghost struct {
	failures int
	until    time.Time
}

// reserve counts one failure of the unknown name in advance, as
// Store.ReserveLogin does for a real one, unless its delay has not passed.
func (t *ghostThrottle) reserve(name string, now time.Time) (until time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]ghost)
	}
	key := strings.ToLower(name)
	g, exists := t.m[key]
	if now.Before(g.until) {
		return g.until, false
	}
	if !exists && len(t.m) >= maxAddrEntries {
		// Forget the names whose delay has passed and that were quiet for
		// the longest delay; if none, any one.
		for k, o := range t.m {
			if now.Sub(o.until) > MaxDelay {
				delete(t.m, k)
			}
		}
		for k := range t.m {
			if len(t.m) < maxAddrEntries {
				break
			}
			delete(t.m, k)
		}
	}
	g.failures++
	g.until = time.Time{}
	if d := LoginDelay(g.failures); d > 0 {
		g.until = now.Add(d)
	}
	t.m[key] = g
	return g.until, true
}
