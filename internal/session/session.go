package session

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
	"github.com/capf-server/capf/internal/wire"
)

// ProtocolVersion is the VERSION the server announces in AUTH_REQUEST.
const ProtocolVersion = 3

// State is where a session is in the protocol.
type State int

// The session states.
const (
	AwaitAuth   State = iota // AUTH_REQUEST sent; waiting for AUTH_RESPONSE
	AwaitKey                 // KEY_GENERATE_REQUEST sent; waiting for the key
	AwaitStore               // STORE_CERTIFICATE_REQUEST sent
	AwaitFetch               // FETCH_CERTIFICATE_REQUEST sent
	AwaitDelete              // DELETE_CERTIFICATE_REQUEST sent
	Done                     // END_SESSION or RETRY_LATER sent
)

var stateNames = [...]string{"await-auth", "await-key", "await-store", "await-fetch", "await-delete", "done"}

// String returns the state's name.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Step is what the server must do after a message: write Reply (when not
// nil) in one write, then close the connection if Done.
type Step struct {
	Reply *wire.Message
	Done  bool
}

// Summary describes a session for its one wide log line and for metrics.
type Summary struct {
	SessionID uint32
	Remote    string
	Device    string
	AuthMode  string // how the phone authenticated
	SUDI      string // the outcome of its SUDI_DATA (auth.Result.SUDI); "" when it sent none
	Operation device.Operation
	Outcome   string // "success", "failed", "no-action", "unknown-device", "retry-later", "aborted"
	RetryWhy  string // for retry-later: "busy", "maintenance-window", "device-busy", "store", "deactivated", "auth-…"
	Status    string // the Operation Status recorded, if any
	Reason    string // failure detail
	Serial    string // serial of an issued LSC
	KeyWaits  int    // REQUEST_IN_PROGRESS messages received
	Started   time.Time
}

// Session is one phone's conversation with the CAPF. It is not safe for
// concurrent use; the server drives it from the connection's goroutine.
type Session struct {
	deps *Deps
	cfg  Config // the fleet parameters, as of the session's start
	id   uint32

	state      State
	started    time.Time
	dev        device.Device
	unlock     func() // releases the device lock; nil when not held
	preempt    func() // closes this session's connection when superseded
	superseded atomic.Bool
	slot       bool // holds a Limiter slot
	keyWait    bool // counted as waiting for a key
	attemptID  int64
	key        device.KeySpec
	keyTries   int
	keyDue     time.Time
	issued     *ca.Issued
	fetched    int
	kept       [][]byte // DER of the certificates this session kept for Troubleshoot
	sum        Summary
}

// New returns a session with the given id for a phone at remote.
func New(deps *Deps, id uint32, remote string) *Session {
	now := deps.Now()
	return &Session{deps: deps, cfg: deps.params(), id: id, started: now, sum: Summary{SessionID: id, Remote: remote, Started: now}}
}

// OnSupersede sets what to do when a newer session from the same address
// takes this session's device over: the server closes the connection, and
// the session ends as a communication failure.
func (s *Session) OnSupersede(f func()) {
	s.preempt = func() {
		s.superseded.Store(true)
		f()
	}
}

// State returns the current state.
func (s *Session) State() State { return s.state }

// Summary returns what the session did so far.
func (s *Session) Summary() Summary { return s.sum }

// Start returns the first message, AUTH_REQUEST. The server speaks first.
func (s *Session) Start() *wire.Message {
	return wire.New(wire.CmdAuthRequest, s.id).AddUint8(wire.TagVersion, ProtocolVersion)
}

// Deadline returns when the next message must have arrived.
func (s *Session) Deadline() time.Time {
	if s.state == AwaitKey {
		return s.keyDue
	}
	return s.deps.Now().Add(s.cfg.MessageTimeout)
}

// Handle processes one message from the phone.
func (s *Session) Handle(ctx context.Context, m *wire.Message) Step {
	if s.state == Done {
		return Step{Done: true}
	}
	if m.SessionID != s.id {
		return s.fail(ctx, device.ReasonCommFailure, fmt.Sprintf("session id %#x, want %#x", m.SessionID, s.id))
	}
	switch {
	case s.state == AwaitAuth && m.Command == wire.CmdAuthResponse:
		return s.onAuth(ctx, m)
	case s.state == AwaitKey && m.Command == wire.CmdRequestInProgress:
		s.sum.KeyWaits++
		return Step{}
	case m.Command == wire.CmdRequestInProgress:
		return Step{} // a late progress message is harmless
	case s.state == AwaitKey && m.Command == wire.CmdKeyGenerateResponse:
		return s.onKey(ctx, m)
	case s.state == AwaitStore && m.Command == wire.CmdStoreCertificateResponse:
		return s.onStore(ctx, m)
	case s.state == AwaitFetch && m.Command == wire.CmdFetchCertificateResponse:
		return s.onFetch(ctx, m)
	case s.state == AwaitDelete && m.Command == wire.CmdDeleteCertificateResponse:
		return s.onDelete(ctx, m)
	case m.Command == wire.CmdAbortRequest:
		return s.fail(ctx, device.ReasonAbortedOnPhone, "the phone user cancelled the operation")
	}
	return s.fail(ctx, device.ReasonCommFailure, fmt.Sprintf("unexpected %s in state %s", m.Command, s.state))
}

// Abort ends a session whose connection failed (closed, timed out, or sent
// bytes that do not decode) and records the failure.
func (s *Session) Abort(ctx context.Context, cause error) {
	if s.state == Done {
		return
	}
	reason, detail := device.ReasonCommFailure, cause.Error()
	switch {
	case s.superseded.Load():
		detail = "superseded by a new session from the same address (the phone reconnected)"
	case s.state == AwaitKey && !s.deps.Now().Before(s.keyDue):
		reason = device.ReasonKeyGenTimeout
	}
	s.finishFailed(ctx, reason, detail, "aborted")
}

// Close releases the device lock; the server calls it when the connection
// is gone, whatever happened.
func (s *Session) Close() {
	s.setKeyWait(false)
	if s.slot {
		s.deps.Limiter.Release()
		s.slot = false
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

func (s *Session) end(reason wire.Reason) Step {
	s.state = Done
	return Step{Reply: wire.New(wire.CmdEndSession, s.id).AddUint8(wire.TagReason, uint8(reason)), Done: true}
}

func (s *Session) retryLater(why string, delay time.Duration) Step {
	s.state = Done
	s.sum.Outcome, s.sum.RetryWhy = "retry-later", why
	if delay <= 0 {
		delay = s.cfg.RetryDelay
	}
	secs := uint32((delay + time.Second - 1) / time.Second)
	if secs == 0 {
		secs = 60
	}
	reason := s.sum.Reason
	if reason == "" {
		reason = why
	}
	s.noteContact(device.ContactRetryLater, fmt.Sprintf("%s (RETRY_LATER, retry in %d s)", reason, secs))
	return Step{Reply: wire.New(wire.CmdRetryLater, s.id).AddUint32(wire.TagRetryDelay, secs), Done: true}
}

func certKind(t wire.CertType) auth.CertKind {
	switch t {
	case wire.CertLSC:
		return auth.CertLSC
	case wire.CertMIC:
		return auth.CertMIC
	}
	return ""
}

func (s *Session) askKey() Step {
	s.keyTries++
	s.state = AwaitKey
	s.setKeyWait(true)
	m := wire.New(wire.CmdKeyGenerateRequest, s.id)
	if s.key.IsRSA() {
		m.AddUint8(wire.TagKeyType, uint8(wire.KeyRSA)).AddUint16(wire.TagKeySize, uint16(s.key.Bits()))
	} else {
		m.AddUint8(wire.TagKeyType, uint8(wire.KeyEC)).AddUint8(wire.TagCurve, uint8(curveOf(s.key)))
	}
	return Step{Reply: m}
}

func curveOf(k device.KeySpec) wire.Curve {
	switch k {
	case device.EC384:
		return wire.CurveP384
	case device.EC521:
		return wire.CurveP521
	}
	return wire.CurveP256
}

// setKeyWait tells the observer when the session starts or stops waiting
// for the phone's key.
func (s *Session) setKeyWait(on bool) {
	if on == s.keyWait {
		return
	}
	s.keyWait = on
	if o := s.deps.Observer; o != nil {
		if on {
			o.KeyWait(1)
		} else {
			o.KeyWait(-1)
		}
	}
}

func (s *Session) onKey(ctx context.Context, m *wire.Message) Step {
	s.setKeyWait(false)
	der, ok := m.Get(wire.TagPublicKey)
	if !ok {
		code := "none"
		if r, err := m.Uint8(wire.TagReason); err == nil {
			code = wire.Reason(r).String()
		}
		if s.keyTries < s.cfg.KeyGenMaxAttempts && s.deps.Now().Before(s.keyDue) {
			s.sum.Reason = fmt.Sprintf("key generation attempt %d failed (reason %s); asking again", s.keyTries, code)
			return s.askKey()
		}
		return s.fail(ctx, device.ReasonKeyGenFailed, fmt.Sprintf("%d attempt(s) failed, last reason %s", s.keyTries, code))
	}
	if !s.deps.Now().Before(s.keyDue) {
		return s.fail(ctx, device.ReasonKeyGenTimeout, "the key arrived after key_generation_max_time")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return s.fail(ctx, device.ReasonInvalidPublicKey, "PUBLIC_KEY does not parse: "+err.Error())
	}
	if err := CheckKey(pub, s.key); err != nil {
		return s.fail(ctx, device.ReasonInvalidPublicKey, err.Error())
	}
	began := s.deps.Now()
	issued, err := s.deps.Issuer.Issue(ctx, ca.IssueRequest{DeviceName: s.dev.Name, PublicKey: pub, Validity: s.cfg.LSCValidity, CRLURL: s.cfg.CRLURL})
	if err != nil {
		reason := device.ReasonInternal
		if fault.KindOf(err) == fault.Invalid {
			reason = device.ReasonInvalidPublicKey
		}
		return s.fail(ctx, reason, "issue: "+err.Error())
	}
	// The certificate leaves the CA only once its record is durable.
	if err := s.deps.Store.RecordIssuance(ctx, device.Issuance{
		Serial: issued.SerialHex, Device: s.dev.Name, AttemptID: s.attemptID,
		Issuer: issued.Certificate.Issuer.String(), IssuerKeyID: hex.EncodeToString(issued.Certificate.AuthorityKeyId),
		IssuedAt:  s.deps.Now().UTC(),
		NotBefore: issued.NotBefore, NotAfter: issued.NotAfter, DER: issued.DER,
	}); err != nil {
		return s.fail(ctx, device.ReasonInternal, "record issuance: "+err.Error())
	}
	if o := s.deps.Observer; o != nil {
		o.Issued(s.deps.Now().Sub(began))
	}
	s.issued = issued
	s.sum.Serial = issued.SerialHex
	s.state = AwaitStore
	return Step{Reply: wire.New(wire.CmdStoreCertificateRequest, s.id).
		AddUint8(wire.TagCertificateType, uint8(wire.CertLSC)).
		Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, issued.DER))}
}

// CheckKey reports whether pub is the key a phone was asked for: the right
// type, and the RSA modulus size or EC curve that spec names.
func CheckKey(pub any, spec device.KeySpec) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if !spec.IsRSA() {
			return fmt.Errorf("phone returned an RSA key, asked for %s", spec)
		}
		if k.N.BitLen() != spec.Bits() {
			return fmt.Errorf("phone returned an RSA-%d key, asked for %s", k.N.BitLen(), spec)
		}
		return nil
	case *ecdsa.PublicKey:
		if spec.IsRSA() {
			return fmt.Errorf("phone returned an EC key, asked for %s", spec)
		}
		want := map[device.KeySpec]elliptic.Curve{device.EC256: elliptic.P256(), device.EC384: elliptic.P384(), device.EC521: elliptic.P521()}[spec]
		if k.Curve != want {
			return fmt.Errorf("phone returned a key on %s, asked for %s", k.Curve.Params().Name, spec)
		}
		return nil
	}
	return fmt.Errorf("phone returned a %T key, asked for %s", pub, spec)
}

func (s *Session) onStore(ctx context.Context, m *wire.Message) Step {
	r, err := m.Uint8(wire.TagReason)
	if err != nil || wire.Reason(r) != wire.ReasonSuccess {
		detail := "STORE_CERTIFICATE_RESPONSE without REASON"
		if err == nil {
			detail = "phone answered reason " + wire.Reason(r).String()
		}
		return s.fail(ctx, device.ReasonStoreRefused, detail)
	}
	c := s.issued.Certificate
	s.finish(ctx, device.Outcome{
		Result:    device.SuccessStatus(device.OpInstall),
		Completed: true,
		SetLSC: &device.Certificate{
			Serial: s.issued.SerialHex, Issuer: c.Issuer.String(),
			NotBefore: s.issued.NotBefore, NotAfter: s.issued.NotAfter, DER: s.issued.DER,
		},
	}, "success")
	return s.end(wire.ReasonSuccess)
}

func (s *Session) onFetch(ctx context.Context, m *wire.Message) Step {
	r, _ := m.Uint8(wire.TagReason)
	if v, ok := m.Get(wire.TagCertificate); ok && wire.Reason(r) == wire.ReasonSuccess {
		typ, der, err := wire.UnwrapCertificate(v)
		if err != nil {
			return s.fail(ctx, device.ReasonInvalidCredentials, "fetched certificate: "+err.Error())
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return s.fail(ctx, device.ReasonInvalidCertificate, "fetched certificate does not parse: "+err.Error())
		}
		kind := string(certKind(typ))
		if kind == "" {
			kind = string(auth.CertLSC)
		}
		s.keepFetched(ctx, kind, cert)
	}
	if s.fetched == 0 {
		s.finish(ctx, device.Outcome{Result: device.FailedStatus(device.OpTroubleshoot, device.ReasonNoCertificate),
			Reason: "phone answered reason " + wire.Reason(r).String()}, "failed")
		return s.end(wire.ReasonNoAction)
	}
	s.finish(ctx, device.Outcome{Result: device.SuccessStatus(device.OpTroubleshoot), Completed: true}, "success")
	return s.end(wire.ReasonNoAction)
}

// keepFetched stores a troubleshoot certificate and its trace file; a
// failure to write the trace is logged, not fatal. A certificate this
// session kept already (the LSC the phone authenticated with, then
// fetched) counts once and is not stored again.
func (s *Session) keepFetched(ctx context.Context, kind string, cert *x509.Certificate) {
	for _, der := range s.kept {
		if bytes.Equal(der, cert.Raw) {
			return
		}
	}
	if err := s.deps.Store.SaveFetchedCertificate(ctx, device.FetchedCertificate{
		Device: s.dev.Name, Type: kind, FetchedAt: s.deps.Now().UTC(), DER: cert.Raw,
	}); err != nil {
		s.logError("save fetched certificate", err)
		return
	}
	s.kept = append(s.kept, cert.Raw)
	s.fetched++
	if s.deps.Tracer != nil {
		if _, err := s.deps.Tracer.WriteTrace(s.dev.Name, kind, cert); err != nil {
			s.logError("write trace file", err)
		}
	}
}

func (s *Session) onDelete(ctx context.Context, m *wire.Message) Step {
	r, err := m.Uint8(wire.TagReason)
	if err != nil || (wire.Reason(r) != wire.ReasonSuccess && wire.Reason(r) != wire.ReasonRefused) {
		return s.fail(ctx, device.ReasonPhoneRefusedDelete, fmt.Sprintf("DELETE_CERTIFICATE_RESPONSE reason %v", wire.Reason(r)))
	}
	reason := ""
	if wire.Reason(r) == wire.ReasonRefused {
		reason = "the phone had no LSC"
	}
	s.finish(ctx, device.Outcome{Result: device.SuccessStatus(device.OpDelete), Reason: reason, Completed: true, ClearLSC: true}, "success")
	return s.end(wire.ReasonSuccess)
}

// fail records a failed attempt (when one was started) and ends the session
// with REASON 7.
func (s *Session) fail(ctx context.Context, reason, detail string) Step {
	s.finishFailed(ctx, reason, detail, "failed")
	return s.end(wire.ReasonRefused)
}

func (s *Session) finishFailed(ctx context.Context, reason, detail, outcome string) {
	op := s.dev.Operation
	if op == "" {
		s.sum.Outcome, s.sum.Reason = outcome, safetext.Bound(strings.TrimSpace(reason+": "+detail), MaxReasonText)
		s.state = Done
		return
	}
	s.finish(ctx, device.Outcome{Result: device.FailedStatus(op, reason), Reason: detail}, outcome)
	s.state = Done
}

func (s *Session) finish(ctx context.Context, o device.Outcome, outcome string) {
	o.Reason = safetext.Bound(o.Reason, MaxReasonText)
	s.sum.Outcome, s.sum.Status, s.sum.Reason = outcome, o.Result, o.Reason
	if s.attemptID == 0 {
		return
	}
	o.AttemptID, o.Node, o.Device, o.FinishedAt, o.AuthMode = s.attemptID, s.deps.Node, s.dev.Name, s.deps.Now().UTC(), s.sum.AuthMode
	o.SUDI = s.sum.SUDI
	// Record the outcome even if the connection's context is already gone.
	if err := s.deps.Store.FinishAttempt(context.WithoutCancel(ctx), o); err != nil {
		s.logError("record outcome", err)
	}
	s.attemptID = 0
}

func (s *Session) logError(what string, err error) {
	if s.deps.Logger != nil {
		s.deps.Logger.Error("session: "+what, "session", s.id, "device", s.dev.Name, "err", err)
	}
}
