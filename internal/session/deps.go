package session

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
)

// Store is the part of device.Store a session uses.
type Store interface {
	GetDevice(ctx context.Context, name string) (device.Device, error)
	StartAttempt(ctx context.Context, a device.Attempt) (int64, error)
	RecordIssuance(ctx context.Context, is device.Issuance) error
	FinishAttempt(ctx context.Context, o device.Outcome) error
	SaveFetchedCertificate(ctx context.Context, fc device.FetchedCertificate) error
}

// Issuer signs LSCs.
type Issuer interface {
	Issue(ctx context.Context, req ca.IssueRequest) (*ca.Issued, error)
}

// Authenticator checks the credentials of AUTH_RESPONSE.
type Authenticator interface {
	Authenticate(mode device.AuthMode, authString string, p auth.Presented) (auth.Result, error)
}

// Tracer writes a certificate retrieved by Troubleshoot to its trace file
// and returns the file's path.
type Tracer interface {
	WriteTrace(deviceName, kind string, cert *x509.Certificate) (string, error)
}

// Config holds the service parameters a session obeys.
type Config struct {
	KeyGenMaxTime     time.Duration // from KEY_GENERATE_REQUEST to the key, REQUEST_IN_PROGRESS included
	KeyGenMaxAttempts int           // KEY_GENERATE_REQUESTs per session
	MessageTimeout    time.Duration // deadline for every other message
	DefaultKey        device.KeySpec
	RetryDelay        time.Duration // sent with RETRY_LATER
}

// Windows says when certificate operations may start.
type Windows interface {
	Open(t time.Time) bool
	NextOpen(t time.Time) time.Time
}

// Observer receives the events that metrics count. Every method must be
// cheap and safe for concurrent use.
type Observer interface {
	// SessionEnded is called once per session that got past the TLS
	// handshake, with its summary and duration.
	SessionEnded(sum Summary, d time.Duration)
	// KeyWait is called with +1 when a session starts waiting for the
	// phone's key and -1 when it stops.
	KeyWait(delta int)
	// Issued is called with the time taken to sign an LSC and commit its
	// record.
	Issued(d time.Duration)
}

// Deps are the collaborators a session needs; one Deps serves every session.
type Deps struct {
	Store    Store
	Issuer   Issuer
	Auth     Authenticator
	Tracer   Tracer
	Locks    *DeviceLocks
	Limiter  *Limiter // nil: no limit on concurrent operations
	Windows  Windows  // nil: operations may start at any time
	Observer Observer // nil: nothing observed
	Now      func() time.Time
	Logger   *slog.Logger
	Config   Config
}

// Limiter bounds the certificate operations running at once.
type Limiter struct {
	mu      sync.Mutex
	max     int
	running int
}

// NewLimiter returns a limiter allowing max operations; max <= 0 means no
// limit.
func NewLimiter(max int) *Limiter { return &Limiter{max: max} }

// TryAcquire takes a slot and reports whether one was free.
func (l *Limiter) TryAcquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.running >= l.max {
		return false
	}
	l.running++
	return true
}

// Release returns a slot.
func (l *Limiter) Release() {
	l.mu.Lock()
	l.running--
	l.mu.Unlock()
}

// Running returns the number of operations holding a slot.
func (l *Limiter) Running() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running
}

// DeviceLocks makes sure one device has at most one session at a time, so
// two connections claiming the same name cannot race each other. A phone
// that reboots in the middle of a session reconnects while the server still
// holds the old one (possibly for the whole key-generation time); a new
// session from the same IP address therefore supersedes the old one, whose
// connection is closed. A session from another address is refused.
type DeviceLocks struct {
	mu   sync.Mutex
	busy map[string]*lockHolder
}

type lockHolder struct {
	ip       string
	preempt  func()
	released chan struct{}
}

// NewDeviceLocks returns an empty lock set.
func NewDeviceLocks() *DeviceLocks { return &DeviceLocks{busy: make(map[string]*lockHolder)} }

// supersedeWait bounds how long a new session waits for the one it
// supersedes to let go.
const supersedeWait = 5 * time.Second

// Acquire claims name for a session from ip. If another session from the
// same ip holds it, that session's preempt function is called and Acquire
// waits (at most supersedeWait, or until ctx ends) for it to let go. It
// returns the release function, or ok false when the device stays busy.
func (l *DeviceLocks) Acquire(ctx context.Context, name, ip string, preempt func()) (release func(), ok bool) {
	for {
		l.mu.Lock()
		h := l.busy[name]
		if h == nil {
			h = &lockHolder{ip: ip, preempt: preempt, released: make(chan struct{})}
			l.busy[name] = h
			l.mu.Unlock()
			return func() { l.release(name, h) }, true
		}
		l.mu.Unlock()
		if h.ip != ip || h.preempt == nil {
			return nil, false
		}
		h.preempt()
		select {
		case <-h.released:
		case <-time.After(supersedeWait):
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// TryLock claims name for a holder that cannot be superseded and reports
// whether it was free.
func (l *DeviceLocks) TryLock(name string) bool {
	_, ok := l.Acquire(context.Background(), name, "", nil)
	return ok
}

// Unlock releases name whoever holds it.
func (l *DeviceLocks) Unlock(name string) {
	l.mu.Lock()
	h := l.busy[name]
	l.mu.Unlock()
	if h != nil {
		l.release(name, h)
	}
}

func (l *DeviceLocks) release(name string, h *lockHolder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[name] == h {
		delete(l.busy, name)
		close(h.released)
	}
}
