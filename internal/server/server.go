package server

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/ratelog"
	"github.com/capf-server/capf/internal/safetext"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/wire"
)

// DefaultMaxPayload bounds the payload a phone may send. The largest real
// message, AUTH_RESPONSE with a MIC, signatures and SUDI data, stays well
// under it.
const DefaultMaxPayload = 16 << 10

// Options configures a Server.
type Options struct {
	TLS              *tls.Config
	Deps             *session.Deps
	HandshakeTimeout time.Duration // default 30s
	MaxPayload       int           // default DefaultMaxPayload
	// MaxConnsPerAddress bounds the open connections from one IP address;
	// more are closed at once. 0 means no limit.
	MaxConnsPerAddress int
	// MaxConns bounds the open phone connections in total, so a flood from
	// many addresses cannot use up the process's file descriptors. At the
	// cap a new connection evicts the oldest one still in its TLS handshake
	// (as nginx reuses its idle connections); when every connection is past
	// its handshake, the new one is closed at once, before any TLS work.
	// 0 means no limit.
	MaxConns int
	// PressureHandshakeTimeout replaces HandshakeTimeout, counted from
	// accept, for connections still in their TLS handshake while more than
	// PressurePercent of MaxConns are open (default 5s, never more than
	// HandshakeTimeout).
	PressureHandshakeTimeout time.Duration
	Observer                 Observer // nil: nothing observed
	Logger                   *slog.Logger
}

// Observer receives connection events for metrics.
type Observer interface {
	// ConnOpened and ConnClosed bracket every accepted connection.
	ConnOpened()
	ConnClosed()
	// ConnRejected counts a connection closed at once, with the reason
	// ("per-address-limit", "total-limit").
	ConnRejected(reason string)
	// ConnEvicted counts a connection still in its TLS handshake that was
	// closed to admit a new one, with the reason ("total-limit").
	ConnEvicted(reason string)
}

// PressurePercent is the share of MaxConns above which connections still
// in their TLS handshake get PressureHandshakeTimeout. The pressure ends
// below relievedPercent, so a count that hovers around the threshold does
// not walk the pending connections again and again.
const (
	PressurePercent = 80
	relievedPercent = 60
)

// DefaultPressureHandshakeTimeout is the handshake deadline under pressure.
// A phone's TLS handshake takes well under a second, even a 79xx's RSA one.
const DefaultPressureHandshakeTimeout = 5 * time.Second

// connState is what the server tracks of one open connection.
type connState struct {
	c        net.Conn
	ip       string
	accepted time.Time
	deadline time.Time     // of the TLS handshake
	pending  *list.Element // in Server.handshaking until the TLS handshake ends
	evicted  bool          // closed and forgotten to admit another
}

// Server serves the CAPF protocol on the listeners given to Serve.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]*connState
	perAddr   map[string]int
	// handshaking holds the connections still in their TLS handshake,
	// oldest first: those the cap may evict.
	handshaking *list.List
	pressure    bool // above PressurePercent of MaxConns
	closing     bool
	done        chan struct{} // closed by Shutdown: ends accept back-off
	wg          sync.WaitGroup
	rejectLog   ratelog.Limiter
	evictLog    ratelog.Limiter
	acceptLog   ratelog.Limiter
	unknownLog  ratelog.Limiter
}

// New returns a Server.
func New(o Options) *Server {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 30 * time.Second
	}
	if o.PressureHandshakeTimeout <= 0 {
		o.PressureHandshakeTimeout = DefaultPressureHandshakeTimeout
	}
	o.PressureHandshakeTimeout = min(o.PressureHandshakeTimeout, o.HandshakeTimeout)
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: o, log: log, listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]*connState{}, perAddr: map[string]int{}, handshaking: list.New(), done: make(chan struct{})}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("capf server closed")

// Serve accepts connections on ln until Shutdown, or ln fails. ctx bounds
// the sessions' store calls; cancel it only after Shutdown returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	// A listener closed by its owner ends this Serve; the server serves on
	// (another listener may come: the phone listener reopens when the
	// service is activated again).
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Anything else (EMFILE: too many open files, say) passes: back
			// off as net/http does, 5 ms doubling to 1 s, and go on.
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			if n, ok := s.acceptLog.Allow(time.Now()); ok {
				s.log.Warn("accept failed; backing off", "err", err, "delay", delay, "suppressed", n)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		st, victim, r := s.track(c)
		switch r {
		case trackClosing:
			c.Close()
			return ErrServerClosed
		case trackOverAddress, trackOverTotal:
			// Counted, then closed at once, before any TLS work: the peer
			// reads EOF.
			reason, param := "per-address-limit", "max_connections_per_address"
			if r == trackOverTotal {
				reason, param = "total-limit", "max_connections"
			}
			if o := s.opts.Observer; o != nil {
				o.ConnRejected(reason)
			}
			c.Close()
			if n, ok := s.rejectLog.Allow(time.Now()); ok {
				s.log.Warn("connection refused: "+param+" reached", "remote", c.RemoteAddr().String(), "suppressed", n)
			}
			continue
		}
		if victim != nil {
			// Its handler sees the handshake fail and ends; its slot is
			// already the new connection's.
			if o := s.opts.Observer; o != nil {
				o.ConnEvicted("total-limit")
			}
			victim.Close()
			if n, ok := s.evictLog.Allow(time.Now()); ok {
				s.log.Warn("max_connections reached: closed the oldest connection still in its TLS handshake to admit a new one",
					"evicted", victim.RemoteAddr().String(), "remote", c.RemoteAddr().String(), "suppressed", n)
			}
		}
		go s.handle(ctx, st)
	}
}

type trackResult int

const (
	trackOK trackResult = iota
	trackClosing
	trackOverAddress
	trackOverTotal
)

// addrKey is the IP address a connection comes from.
func addrKey(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// track admits c within the caps and arms its handshake deadline. At the
// total cap it evicts the oldest connection still in its TLS handshake and
// returns it as victim, for the caller to close; with none to evict, c is
// over the cap.
func (s *Server) track(c net.Conn) (st *connState, victim net.Conn, r trackResult) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, trackClosing
	}
	ip := addrKey(c)
	if max := s.opts.MaxConnsPerAddress; max > 0 && s.perAddr[ip] >= max {
		return nil, nil, trackOverAddress
	}
	if max := s.opts.MaxConns; max > 0 && len(s.conns) >= max {
		e := s.handshaking.Front()
		if e == nil {
			return nil, nil, trackOverTotal
		}
		old := e.Value.(*connState)
		s.forget(old)
		old.evicted = true
		victim = old.c
	}
	st = &connState{c: c, ip: ip, accepted: now, deadline: now.Add(s.opts.HandshakeTimeout)}
	s.perAddr[ip]++
	s.conns[c] = st
	st.pending = s.handshaking.PushBack(st)
	s.updatePressure()
	if s.pressure {
		st.deadline = now.Add(s.opts.PressureHandshakeTimeout)
	}
	_ = c.SetDeadline(st.deadline)
	s.wg.Add(1)
	if o := s.opts.Observer; o != nil {
		o.ConnOpened()
	}
	return st, victim, trackOK
}

// forget removes st from the counts and the eviction queue; s.mu is held.
func (s *Server) forget(st *connState) {
	delete(s.conns, st.c)
	if s.perAddr[st.ip]--; s.perAddr[st.ip] <= 0 {
		delete(s.perAddr, st.ip)
	}
	if st.pending != nil {
		s.handshaking.Remove(st.pending)
		st.pending = nil
	}
}

// updatePressure enters the pressure above PressurePercent of MaxConns and
// then shortens the handshake deadline of every connection still in its
// handshake to PressureHandshakeTimeout from its accept (one already older
// ends at once); it leaves below relievedPercent. s.mu is held.
func (s *Server) updatePressure() {
	max := s.opts.MaxConns
	if max <= 0 {
		return
	}
	n := len(s.conns)
	switch {
	case !s.pressure && n*100 > max*PressurePercent:
		s.pressure = true
		for e := s.handshaking.Front(); e != nil; e = e.Next() {
			st := e.Value.(*connState)
			if d := st.accepted.Add(s.opts.PressureHandshakeTimeout); d.Before(st.deadline) {
				st.deadline = d
				_ = st.c.SetDeadline(d)
			}
		}
	case s.pressure && n*100 < max*relievedPercent:
		s.pressure = false
	}
}

// handshaken takes st out of the eviction queue once its TLS handshake has
// succeeded; false means it was evicted meanwhile.
func (s *Server) handshaken(st *connState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.evicted {
		return false
	}
	if st.pending != nil {
		s.handshaking.Remove(st.pending)
		st.pending = nil
	}
	return true
}

func (s *Server) untrack(st *connState) {
	s.mu.Lock()
	if !st.evicted {
		s.forget(st)
		s.updatePressure()
	}
	s.mu.Unlock()
	if o := s.opts.Observer; o != nil {
		o.ConnClosed()
	}
	s.wg.Done()
}

// Shutdown stops accepting, lets running sessions finish until ctx is done,
// then closes the remaining connections (their sessions are recorded as
// communication failures) and waits for them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.done)
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func newSessionID() uint32 {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		if id := binary.BigEndian.Uint32(b[:]); id != 0 {
			return id
		}
	}
}

func (s *Server) handle(ctx context.Context, st *connState) {
	raw := st.c
	defer s.untrack(st)
	defer raw.Close()
	remote := raw.RemoteAddr().String()
	var sess *session.Session
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in CAPF session", "remote", remote, "panic", r, "stack", string(debug.Stack()))
			if sess != nil {
				sess.Abort(ctx, fmt.Errorf("internal error: %v", r))
			}
		}
		if sess != nil {
			sess.Close()
			s.logSession(sess)
		}
	}()

	// The handshake deadline was set by track (and is shortened under
	// pressure).
	conn := tls.Server(raw, s.opts.TLS)
	if err := conn.HandshakeContext(ctx); err != nil {
		s.log.Debug("TLS handshake failed", "remote", remote, "err", err)
		return
	}
	if !s.handshaken(st) {
		return
	}
	deps := s.opts.Deps
	sess = session.New(deps, newSessionID(), remote)
	sess.OnSupersede(func() { raw.Close() })
	if err := s.write(conn, sess.Start()); err != nil {
		sess.Abort(ctx, err)
		return
	}
	buf := make([]byte, 0, 2048)
	for {
		_ = conn.SetReadDeadline(sess.Deadline())
		frame, err := wire.ReadFrame(conn, buf, s.opts.MaxPayload)
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				s.refuse(ctx, conn, sess, err)
				return
			}
			sess.Abort(ctx, fmt.Errorf("read: %w", err))
			return
		}
		buf = frame[:0]
		m, err := wire.Decode(frame)
		if err != nil {
			s.refuse(ctx, conn, sess, err)
			return
		}
		step := sess.Handle(ctx, m)
		if step.Reply != nil {
			if err := s.write(conn, step.Reply); err != nil {
				sess.Abort(ctx, fmt.Errorf("write: %w", err))
				return
			}
		}
		if step.Done {
			return
		}
	}
}

// refuse answers a message that does not decode with END_SESSION(7) and
// records the failure.
func (s *Server) refuse(ctx context.Context, conn net.Conn, sess *session.Session, cause error) {
	sess.Abort(ctx, cause)
	m := wire.New(wire.CmdEndSession, sess.Summary().SessionID).AddUint8(wire.TagReason, uint8(wire.ReasonRefused))
	_ = s.write(conn, m)
}

// write sends m with a single Write call, as phone firmware expects.
func (s *Server) write(conn net.Conn, m *wire.Message) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err = conn.Write(b)
	return err
}

// logSession writes the one wide event of a session and reports it to the
// observer.
func (s *Server) logSession(sess *session.Session) {
	sum := sess.Summary()
	dur := time.Since(sum.Started)
	if o := s.opts.Deps.Observer; o != nil {
		o.SessionEnded(sum, dur)
	}
	level := slog.LevelInfo
	if sum.Outcome == "failed" || sum.Outcome == "aborted" {
		level = slog.LevelWarn
	}
	var attrs []slog.Attr
	if sum.Outcome == "unknown-device" {
		// Anyone can name a device that does not exist: such sessions are
		// counted (capf_sessions_total) and logged at most once per
		// ratelog.Every, with how many were held back.
		held, ok := s.unknownLog.Allow(time.Now())
		if !ok {
			return
		}
		attrs = append(attrs, slog.Int("unknown_device_sessions_not_logged", held))
	}
	dev, reason := boundPhoneText(sum.Device, sum.Reason)
	s.log.LogAttrs(context.Background(), level, "capf session", append(attrs,
		slog.String("device", dev),
		slog.String("remote", sum.Remote),
		slog.String("auth_mode", sum.AuthMode),
		slog.String("sudi", sum.SUDI),
		slog.String("operation", string(sum.Operation)),
		slog.String("outcome", sum.Outcome),
		slog.String("status", sum.Status),
		slog.String("reason", reason),
		slog.String("serial", sum.Serial),
		slog.String("retry_why", sum.RetryWhy),
		slog.Int("key_waits", sum.KeyWaits),
		slog.Duration("duration", dur),
		slog.Uint64("session_id", uint64(sum.SessionID)),
	)...)
}

// Bounds of the phone-supplied text in a session's log line. A valid device
// name has at most maxLogDevice characters (device.MaxNameLen), so it is
// logged whole; a longer one is invalid and only its first
// maxLogInvalidDevice bytes are logged. The reason may quote REASON_INFO or
// certificate subjects.
const (
	maxLogDevice        = 50
	maxLogInvalidDevice = 32
	maxLogReason        = 200
)

// boundPhoneText returns the device name and reason of a session summary as
// they may go into a log line: the device name, when the reason quotes it,
// is replaced there by "<device name>" so that it appears once, and both are
// bounded and sanitised with [safetext.Bound].
func boundPhoneText(device, reason string) (string, string) {
	if device != "" {
		reason = strings.ReplaceAll(reason, strconv.Quote(device), "<device name>")
		if len(device) > maxLogDevice {
			reason = strings.ReplaceAll(reason, device, "<device name>")
		}
	}
	n := maxLogDevice
	if len(device) > maxLogDevice {
		n = maxLogInvalidDevice
	}
	return safetext.Bound(device, n), safetext.Bound(reason, maxLogReason)
}
