package adminhttp

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capf-server/capf/internal/ratelog"
)

// The HTTPS admin listener's default limits (see Limits).
const (
	// MaxTLSConns is the most connections the HTTPS admin listener holds
	// at once when the descriptor limit allows it (see cli's admin cap).
	MaxTLSConns = 256
	// MinTLSConns is the fewest it holds whatever the descriptor limit.
	MinTLSConns = 64
	// MaxConnsPerAddress is the most connections one IPv4 address (or
	// IPv6 /64) may hold: a browser opens about six, HTTP/2 one.
	MaxConnsPerAddress = 16
	// FirstRequestTimeout is how long a new connection has to finish the
	// TLS handshake and send its first request's header.
	FirstRequestTimeout = 3 * time.Second
)

// Limits bounds the connections of a listener guarded by Guard.
type Limits struct {
	// MaxConns bounds the open connections in total; 0: MaxTLSConns.
	MaxConns int
	// MaxPerAddress bounds the open connections from one IPv4 address or
	// IPv6 /64; 0: MaxConnsPerAddress.
	MaxPerAddress int
	// FirstRequest closes a connection that has not finished TLS and sent
	// a request's header this long after it was accepted; 0:
	// FirstRequestTimeout.
	FirstRequest time.Duration
	// Logger receives the refusals, at most one line every ratelog.Every;
	// nil: discarded.
	Logger *slog.Logger
	// Registerer, when set, gets the guard's metrics:
	// capf_admin_connections_open and
	// capf_admin_connections_closed_total{reason} with reason "evicted",
	// "refused" or "first-request-timeout".
	Registerer prometheus.Registerer
}

// GuardStats counts what a guard did since it was made.
type GuardStats struct {
	Open      int    // connections open now
	Evicted   uint64 // idle or silent connections closed to admit a new one
	Refused   uint64 // new connections closed at once: nothing was evictable
	TimedOut  uint64 // connections closed by the FirstRequest deadline
	PerAddrAt uint64 // of Evicted and Refused, those because of the per-address cap
}

// Guard bounds the connections hs serves from ln and returns the listener
// to serve: at most MaxPerAddress from one IP address and MaxConns in
// total. A new connection over a cap takes the place of the oldest
// evictable one (from its own address when the per-address cap is the
// one reached): a connection between requests (keep-alive idle) or one
// that has not yet sent a request. A connection serving a request (a
// live status stream included) is never evicted. When nothing is
// evictable, the new connection is closed at once, so Accept keeps
// draining the kernel's backlog and no client waits there behind a flood.
// A connection that has not finished TLS and sent a request's header
// within FirstRequest is closed.
//
// Guard sets hs.ConnState (calling the one already set, if any), which
// tracks whether each connection is idle; it must be called before hs
// serves.
func Guard(hs *http.Server, ln net.Listener, lim Limits) (net.Listener, *Guarded) {
	if lim.MaxConns <= 0 {
		lim.MaxConns = MaxTLSConns
	}
	if lim.MaxPerAddress <= 0 {
		lim.MaxPerAddress = MaxConnsPerAddress
	}
	if lim.FirstRequest <= 0 {
		lim.FirstRequest = FirstRequestTimeout
	}
	if lim.Logger == nil {
		lim.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guarded{lim: lim, conns: make(map[*guardConn]struct{}), perAddr: make(map[string]int)}
	if lim.Registerer != nil {
		g.register(lim.Registerer)
	}
	prev := hs.ConnState
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		g.connState(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
	return &guardListener{Listener: ln, g: g}, g
}

// Guarded is the state of a guarded listener's connections.
type Guarded struct {
	lim     Limits
	mu      sync.Mutex
	conns   map[*guardConn]struct{}
	perAddr map[string]int
	seq     uint64 // orders state changes: the lowest is the oldest
	stats   GuardStats
	refLog  ratelog.Limiter
}

// Stats returns the guard's counters.
func (g *Guarded) Stats() GuardStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Open = len(g.conns)
	return s
}

// register adds the guard's metrics to r; they read Stats when
// gathered.
func (g *Guarded) register(r prometheus.Registerer) {
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "capf_admin_connections_open", Help: "Connections the HTTPS admin listener holds open.",
	}, func() float64 { return float64(g.Stats().Open) }))
	closed := func(reason, help string, v func(GuardStats) uint64) {
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "capf_admin_connections_closed_total", Help: "Connections the HTTPS admin listener closed to protect itself: " + help,
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(v(g.Stats())) }))
	}
	help := "evicted (idle or silent, to admit a new one), refused (over a cap with nothing to evict), first-request-timeout (no TLS and request in time)."
	closed("evicted", help, func(s GuardStats) uint64 { return s.Evicted })
	closed("refused", help, func(s GuardStats) uint64 { return s.Refused })
	closed("first-request-timeout", help, func(s GuardStats) uint64 { return s.TimedOut })
}

type guardListener struct {
	net.Listener
	g *Guarded
}

// Accept returns the next connection within the caps; connections over a
// cap with nothing to evict are closed here and never returned.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
	}
}

// guardConn is an admitted connection. Its state and since are guarded by
// the Guarded's mutex.
type guardConn struct {
	net.Conn
	g       *Guarded
	addr    string
	state   http.ConnState
	since   uint64 // g.seq when it entered state
	removed bool
	timer   *time.Timer
	once    sync.Once
}

// Close closes the connection and gives its slot back (once).
func (c *guardConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.g.release(c) })
	return err
}

// evictable reports whether c may be closed to admit another: it is
// between requests or has not sent one yet.
func (c *guardConn) evictable() bool {
	return c.state == http.StateNew || c.state == http.StateIdle
}

func (g *Guarded) admit(c net.Conn) *guardConn {
	addr := hostOf(c.RemoteAddr())
	gc := &guardConn{Conn: c, g: g, addr: addr, state: http.StateNew}
	g.mu.Lock()
	var victim *guardConn
	reason := ""
	switch {
	case g.perAddr[addr] >= g.lim.MaxPerAddress:
		victim = g.oldestEvictable(addr)
		reason = "per-address-limit"
		g.stats.PerAddrAt++
	case len(g.conns) >= g.lim.MaxConns:
		victim = g.oldestEvictable("")
		reason = "total-limit"
	}
	if reason != "" && victim == nil {
		g.stats.Refused++
		n, logIt := g.refLog.Allow(time.Now())
		open := len(g.conns)
		g.mu.Unlock()
		_ = c.Close()
		if logIt {
			g.lim.Logger.Warn("admin listener: connection refused, nothing to evict", "remote", addr,
				"reason", reason, "open", open, "held_back", n)
		}
		return nil
	}
	if victim != nil {
		g.stats.Evicted++
		g.removeLocked(victim)
	}
	g.seq++
	gc.since = g.seq
	g.conns[gc] = struct{}{}
	g.perAddr[addr]++
	gc.timer = time.AfterFunc(g.lim.FirstRequest, func() { g.firstRequestDue(gc) })
	g.mu.Unlock()
	if victim != nil {
		_ = victim.Close()
	}
	return gc
}

// oldestEvictable returns the evictable connection that entered its state
// first, from addr only when addr is not "", or nil.
func (g *Guarded) oldestEvictable(addr string) *guardConn {
	var best *guardConn
	for c := range g.conns {
		if !c.evictable() || (addr != "" && c.addr != addr) {
			continue
		}
		if best == nil || c.since < best.since {
			best = c
		}
	}
	return best
}

// removeLocked takes c out of the accounting; the caller holds g.mu.
func (g *Guarded) removeLocked(c *guardConn) {
	if c.removed {
		return
	}
	c.removed = true
	delete(g.conns, c)
	if g.perAddr[c.addr]--; g.perAddr[c.addr] <= 0 {
		delete(g.perAddr, c.addr)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}

func (g *Guarded) release(c *guardConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removeLocked(c)
}

// firstRequestDue closes c if it has still not sent a request.
func (g *Guarded) firstRequestDue(c *guardConn) {
	g.mu.Lock()
	due := !c.removed && c.state == http.StateNew
	if due {
		g.stats.TimedOut++
	}
	g.mu.Unlock()
	if due {
		_ = c.Close()
	}
}

// connState records the state net/http reports for a connection it
// serves.
func (g *Guarded) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	gc, ok := c.(*guardConn)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if gc.removed {
		return
	}
	if s == http.StateClosed {
		g.removeLocked(gc)
		return
	}
	if s != gc.state {
		g.seq++
		gc.state, gc.since = s, g.seq
	}
	if s != http.StateNew && gc.timer != nil {
		gc.timer.Stop()
	}
}

// hostOf returns what the per-address cap counts a remote address as: its
// IPv4 address, or the /64 network of its IPv6 address (one host's share,
// which holds as many addresses as it likes).
func hostOf(a net.Addr) string {
	var ip net.IP
	if ta, ok := a.(*net.TCPAddr); ok {
		ip = ta.IP
	} else if h, _, err := net.SplitHostPort(a.String()); err == nil {
		ip = net.ParseIP(h)
	}
	switch {
	case ip == nil:
		return a.String()
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
