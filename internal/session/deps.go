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
	StartAttempt(ctx context.Context, a device.Attempt) (device.Claim, error)
	CountOpenAttempts(ctx context.Context) (int, error)
	RecordIssuance(ctx context.Context, is device.Issuance) error
	FinishAttempt(ctx context.Context, o device.Outcome) error
	SaveFetchedCertificate(ctx context.Context, fc device.FetchedCertificate) error
	CountAuthGuess(ctx context.Context, name string, seen, max int, at time.Time) (bool, error)
	RecordAuthFailure(ctx context.Context, f device.AuthFailure) (bool, error)
}

// Issuer signs LSCs.
type Issuer interface {
	Issue(ctx context.Context, req ca.IssueRequest) (*ca.Issued, error)
}

// Authenticator checks the credentials of AUTH_RESPONSE under a policy.
type Authenticator interface {
	AuthenticateWith(pol auth.Policy, mode device.AuthMode, authString string, p auth.Presented) (auth.Result, error)
}

// Revocations tells whether an LSC a phone authenticates with is on the
// revocation records (revoked by an administrator, superseded by a newer
// LSC the phone stored, or deleted from the phone). It is asked only when
// an LSC authenticated, once per session, and must be one indexed look-up.
type Revocations interface {
	// LSCRevoked reports whether the LSC of serial (upper-case hex of its
	// bytes) issued by the CA of issuerKeyID (hex of its authority key
	// identifier) is revoked, and why (reason, when, by whom) for the
	// history. An error means the records could not be read.
	LSCRevoked(ctx context.Context, serial, issuerKeyID string) (why string, revoked bool, err error)
}

// Tracer writes a certificate retrieved by Troubleshoot to its trace file
// and returns the file's path.
type Tracer interface {
	WriteTrace(deviceName, kind string, cert *x509.Certificate) (string, error)
}

// Config holds the fleet parameters a session obeys. A session reads them
// once, when it starts, from [Deps.Params]; a change applies to the
// sessions that start after it.
type Config struct {
	KeyGenMaxTime     time.Duration // from KEY_GENERATE_REQUEST to the key, REQUEST_IN_PROGRESS included
	KeyGenMaxAttempts int           // KEY_GENERATE_REQUESTs per session
	MessageTimeout    time.Duration // deadline for every other message
	DefaultKey        device.KeySpec
	RetryDelay        time.Duration // sent with RETRY_LATER
	Windows           Windows       // when operations may start; nil: always
	// AuthStringMaxFailures is how many consecutive wrong authentication
	// strings use a device's string up; 0: no limit.
	AuthStringMaxFailures int
	// Backoff spaces out the guesses for one device.
	Backoff Backoff
	// AuthFailuresPerAddress is the budget of authentication-string
	// guesses of one address per [Guard.Window]; 0: no budget.
	AuthFailuresPerAddress int
	// MaxConcurrentOps bounds the certificate operations open at once
	// across the fleet (and on this node, see [Limiter]); 0: no limit.
	MaxConcurrentOps int
	// LSCValidity is the lifetime of the LSCs the session issues; 0: the
	// issuer's default.
	LSCValidity time.Duration
	// AuthPolicy is the MIC and SUDI policy the phone is authenticated
	// under.
	AuthPolicy auth.Policy
	// CRLURL, when set, is the CRL distribution point of the LSCs issued.
	CRLURL string
	// RenewBefore is the fleet parameter lsc_renew_before, kept with the
	// others so that it is as current on every node; the renewal job
	// reads it, sessions do not.
	RenewBefore time.Duration
}

// Params gives the fleet parameters in force now.
type Params interface {
	Current() Config
}

// Windows says when certificate operations may start.
type Windows interface {
	Open(t time.Time) bool
	NextOpen(t time.Time) time.Time
}

// Contacts keeps the contacts that end before a session starts (the store
// records a session's own). Note must not block: it is called on the
// connection's goroutine for every refusal, and a phone may call often.
type Contacts interface {
	Note(c device.Contact)
}

// Strangers counts the phones that ask for a device that is not
// configured. NoteUnknown must be cheap and bound what it keeps: the name
// is a stranger's (normalized; "" for a malformed one).
type Strangers interface {
	NoteUnknown(name, remote string, at time.Time)
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
	// AuthStringUsedUp is called when wrong guesses used a device's
	// authentication string up.
	AuthStringUsedUp()
}

// Deps are the collaborators a session needs; one Deps serves every session.
type Deps struct {
	Store    Store
	Issuer   Issuer
	Auth     Authenticator
	Tracer   Tracer
	Locks    *DeviceLocks
	Limiter  *Limiter // nil: no limit on concurrent operations
	Guard    *Guard   // nil: no per-address failure budget
	Observer Observer // nil: nothing observed

	// Revocations refuses revoked LSCs; nil: the revocation records are
	// not consulted (tests only: capf serve always sets it).
	Revocations Revocations
	// Contacts keeps the refusals before a session per device; nil: not
	// kept.
	Contacts Contacts
	// Strangers counts the requests for devices that are not configured;
	// nil: not counted.
	Strangers Strangers
	// Active reports whether the service is activated; a phone that
	// connected while it was being deactivated is told to retry later.
	// nil: always active.
	Active func() bool
	Now    func() time.Time
	Logger *slog.Logger
	// Node names this server in the store's claims; sessions of other
	// nodes are never superseded or recovered by this one.
	Node string
	// Params gives the fleet parameters; nil: Config, fixed.
	Params Params
	Config Config
}

// params returns the fleet parameters for a session starting now.
func (d *Deps) params() Config {
	if d.Params != nil {
		return d.Params.Current()
	}
	return d.Config
}

// Limiter bounds the certificate operations running at once: on this node
// in memory, before authentication; across the fleet, the session checks
// the store's count of open attempts before authentication and the store
// enforces the limit atomically at the claim (device.Attempt.MaxOpen). The
// limit is the session's (Config.MaxConcurrentOps), so a change of the
// fleet parameter applies to the next session without a new Limiter.
type Limiter struct {
	mu      sync.Mutex
	running int
}

// NewLimiter returns a limiter with no operation running.
func NewLimiter() *Limiter { return &Limiter{} }

// TryAcquire takes a slot if fewer than max operations run, and reports
// whether it did; max <= 0 means no limit (the slot is still counted).
func (l *Limiter) TryAcquire(max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max > 0 && l.running >= max {
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

// DeviceLocks knows which of this node's sessions holds which device, so
// that a phone that reboots in the middle of a session and reconnects from
// the same address can take its device over. The store, not this map,
// guarantees one session per device: a session registers here only after
// its claim succeeded, and a new session supersedes an old one only after
// it has authenticated and its own claim was refused.
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

// Hold registers the session from ip that has claimed name; preempt closes
// its connection. It returns the release function.
func (l *DeviceLocks) Hold(name, ip string, preempt func()) (release func()) {
	h := &lockHolder{ip: ip, preempt: preempt, released: make(chan struct{})}
	l.mu.Lock()
	if old := l.busy[name]; old != nil {
		close(old.released) // a stale holder: its claim is gone
	}
	l.busy[name] = h
	l.mu.Unlock()
	return func() { l.release(name, h) }
}

// Supersede preempts this node's session holding name if it comes from ip,
// and waits (at most supersedeWait, or until ctx ends) until it let go. It
// reports whether it did; false means the holder is another address's,
// another node's, or did not let go in time.
func (l *DeviceLocks) Supersede(ctx context.Context, name, ip string) bool {
	l.mu.Lock()
	h := l.busy[name]
	l.mu.Unlock()
	if h == nil || h.ip != ip || h.preempt == nil {
		return false
	}
	h.preempt()
	t := time.NewTimer(supersedeWait)
	defer t.Stop()
	select {
	case <-h.released:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (l *DeviceLocks) release(name string, h *lockHolder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[name] == h {
		delete(l.busy, name)
		close(h.released)
	}
}
