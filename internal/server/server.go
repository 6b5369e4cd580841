package server

import (
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
	// many addresses cannot use up the process's file descriptors; more are
	// closed at once, before any TLS work. 0 means no limit.
	MaxConns int
	Observer Observer // nil: nothing observed
	Logger   *slog.Logger
}

// Observer receives connection events for metrics.
type Observer interface {
	// ConnOpened and ConnClosed bracket every accepted connection.
	ConnOpened()
	ConnClosed()
	// ConnRejected counts a connection closed at once, with the reason
	// ("per-address-limit", "total-limit").
	ConnRejected(reason string)
}

// Server serves the CAPF protocol on the listeners given to Serve.
type Server struct {
	opts Options
	log  *slog.Logger

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[net.Conn]struct{}
	perAddr    map[string]int
	closing    bool
	done       chan struct{} // closed by Shutdown: ends accept back-off
	wg         sync.WaitGroup
	rejectLog  ratelog.Limiter
	acceptLog  ratelog.Limiter
	unknownLog ratelog.Limiter
}

// New returns a Server.
func New(o Options) *Server {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 30 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: o, log: log, listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}, perAddr: map[string]int{}, done: make(chan struct{})}
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
		switch r := s.track(c); r {
		case trackClosing:
			c.Close()
			return ErrServerClosed
		case trackOverAddress, trackOverTotal:
			// Closed at once, before any TLS work: the peer reads EOF.
			c.Close()
			reason, param := "per-address-limit", "max_connections_per_address"
			if r == trackOverTotal {
				reason, param = "total-limit", "max_connections"
			}
			if o := s.opts.Observer; o != nil {
				o.ConnRejected(reason)
			}
			if n, ok := s.rejectLog.Allow(time.Now()); ok {
				s.log.Warn("connection refused: "+param+" reached", "remote", c.RemoteAddr().String(), "suppressed", n)
			}
			continue
		}
		go s.handle(ctx, c)
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

func (s *Server) track(c net.Conn) trackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return trackClosing
	}
	if max := s.opts.MaxConns; max > 0 && len(s.conns) >= max {
		return trackOverTotal
	}
	ip := addrKey(c)
	if max := s.opts.MaxConnsPerAddress; max > 0 && s.perAddr[ip] >= max {
		return trackOverAddress
	}
	s.perAddr[ip]++
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	if o := s.opts.Observer; o != nil {
		o.ConnOpened()
	}
	return trackOK
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	ip := addrKey(c)
	if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
		delete(s.perAddr, ip)
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

func (s *Server) handle(ctx context.Context, raw net.Conn) {
	defer s.untrack(raw)
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

	conn := tls.Server(raw, s.opts.TLS)
	_ = conn.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	if err := conn.HandshakeContext(ctx); err != nil {
		s.log.Debug("TLS handshake failed", "remote", remote, "err", err)
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
