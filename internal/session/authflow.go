package session

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
	"github.com/capf-server/capf/internal/wire"
)

// onAuth handles AUTH_RESPONSE in four steps, each of which may end the
// session: lookup (who does the phone say it is, and is anything pending),
// admit (maintenance windows, load), authenticate (the device's configured
// credential, with guessing bounded), and claim (the store's one open
// attempt per device). Nothing a stranger sends changes another session
// before it has authenticated.
func (s *Session) onAuth(ctx context.Context, m *wire.Message) Step {
	d, step, ok := s.lookup(ctx, m)
	if !ok {
		return step
	}
	now := s.deps.Now()
	if !d.Deadline.IsZero() && now.After(d.Deadline) {
		return s.late(ctx, d, now)
	}
	if step, ok := s.admit(ctx, now); !ok {
		return step
	}
	res, step, ok := s.authenticate(ctx, d, m, now)
	if !ok {
		return step
	}
	if step, ok := s.claim(ctx, d, res, now); !ok {
		return step
	}
	return s.begin(ctx, d, res, now)
}

// lookup reads the device the phone names. It ends the session for a
// malformed request, an unknown device or one with nothing pending.
func (s *Session) lookup(ctx context.Context, m *wire.Message) (device.Device, Step, bool) {
	raw, ok := m.String(wire.TagDeviceName)
	if !ok || raw == "" {
		s.sum.Outcome, s.sum.Reason = "failed", "AUTH_RESPONSE without DEVICE_NAME"
		return device.Device{}, s.end(wire.ReasonRefused), false
	}
	s.sum.Device = raw // bounded where it is logged; never stored unless it is a valid name
	if v, err := m.Uint8(wire.TagVersion); m.Has(wire.TagVersion) && (err != nil || v < 1 || v > 3) {
		s.sum.Outcome, s.sum.Reason = "failed", "unsupported protocol VERSION"
		return device.Device{}, s.end(wire.ReasonRefused), false
	}
	name, err := device.NormalizeName(raw)
	if err != nil {
		s.sum.Outcome, s.sum.Reason = "unknown-device", "malformed device name"
		s.noteStranger("")
		return device.Device{}, s.end(wire.ReasonUnknownDevice), false
	}
	s.sum.Device = name
	d, err := s.deps.Store.GetDevice(ctx, name)
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			s.noteStranger(name)
		}
		return device.Device{}, s.storeFailed(err), false
	}
	s.dev = d
	s.sum.Operation = d.Operation
	if d.Operation == device.OpNone {
		s.sum.Outcome = "no-action"
		s.noteContact(device.ContactNoAction, "no certificate operation is pending (No Pending Operation)")
		return device.Device{}, s.end(wire.ReasonNoAction), false
	}
	return d, Step{}, true
}

// storeFailed ends the session for a store error, as its kind says: an
// unknown device, a device another session holds, or a store that is
// unavailable right now.
func (s *Session) storeFailed(err error) Step {
	switch fault.KindOf(err) {
	case fault.NotFound:
		s.sum.Outcome, s.sum.Reason = "unknown-device", "no such device"
		return s.end(wire.ReasonUnknownDevice)
	case fault.Conflict:
		s.sum.Reason = safetext.Bound(err.Error(), MaxReasonText)
		return s.retryLater("device-busy", 0)
	case fault.Throttled:
		s.sum.Reason = "max_concurrent_operations reached across the fleet"
		return s.retryLater("busy", 0)
	}
	s.sum.Reason = safetext.Bound("store: "+err.Error(), MaxReasonText)
	return s.retryLater("store", 0)
}

// late records that the phone came after Operation Completes By: the
// operation fails without being performed.
func (s *Session) late(ctx context.Context, d device.Device, now time.Time) Step {
	c, err := s.deps.Store.StartAttempt(ctx, device.Attempt{
		Device: d.Name, Operation: d.Operation, Remote: s.sum.Remote, StartedAt: now.UTC(), Node: s.deps.Node, Rev: d.Rev,
	})
	if err != nil {
		return s.storeFailed(err)
	}
	s.attemptID = c.AttemptID
	s.finish(ctx, device.Outcome{
		Result:    device.FailedStatus(d.Operation, device.ReasonLate),
		Reason:    "Operation Completes By " + d.Deadline.UTC().Format(time.RFC3339) + " has passed",
		Completed: true,
	}, "failed")
	return s.end(wire.ReasonNoAction)
}

// admit applies the admission rules: maintenance windows and the limit of
// concurrent operations, on this node (in memory) and across the fleet
// (the open attempts in the store). Both come before authentication, so a
// phone told to retry has not spent a guess; the claim enforces the
// fleet's limit exactly.
func (s *Session) admit(ctx context.Context, now time.Time) (Step, bool) {
	if s.deps.Active != nil && !s.deps.Active() {
		s.sum.Reason = "the CAPF service is deactivated (Service Activation)"
		return s.retryLater("deactivated", 0), false
	}
	if w := s.cfg.Windows; w != nil && !w.Open(now) {
		next := w.NextOpen(now)
		s.sum.Reason = "outside the maintenance windows; next opens " + next.UTC().Format(time.RFC3339)
		return s.retryLater("maintenance-window", min(next.Sub(now), time.Hour)), false
	}
	max := s.cfg.MaxConcurrentOps
	if l := s.deps.Limiter; l != nil {
		if !l.TryAcquire(max) {
			s.sum.Reason = "max_concurrent_operations reached"
			return s.retryLater("busy", 0), false
		}
		s.slot = true
	}
	if max > 0 {
		open, err := s.deps.Store.CountOpenAttempts(ctx)
		if err != nil {
			return s.storeFailed(err), false
		}
		if open >= max {
			s.sum.Reason = "max_concurrent_operations reached across the fleet"
			return s.retryLater("busy", 0), false
		}
	}
	return Step{}, true
}

// authenticate checks the phone's credentials against the device's
// configured mode. In string mode every guess is counted in the store
// before it is evaluated, so that neither concurrent connections nor
// several nodes can evaluate more than the limit; a guess arriving during
// the back-off, or from an address that spent its failure budget, is told
// to retry later without being evaluated.
func (s *Session) authenticate(ctx context.Context, d device.Device, m *wire.Message, now time.Time) (auth.Result, Step, bool) {
	p, err := presented(d.Name, s.id, m)
	if err != nil {
		if errors.Is(err, errMalformedSUDI) {
			s.sum.SUDI = auth.SUDIMalformed
		}
		return auth.Result{}, s.authFailed(ctx, d, device.ReasonInvalidCredentials, "malformed credentials: "+err.Error(), now, false), false
	}
	ip := remoteIP(s.sum.Remote)
	if d.AuthMode == device.AuthString && d.AuthString == "" && max(s.cfg.AuthStringMaxFailures, 1) <= d.AuthFailures {
		// Used up by wrong guesses: refused without evaluating, and not
		// recorded again, so that a flood leaves the status and the
		// history as the lock left them.
		s.sum.Outcome, s.sum.Reason = "failed", "the authentication string was used up by wrong guesses; the administrator must set a new one"
		s.noteContact(device.ContactRefused, s.sum.Reason)
		return auth.Result{}, s.end(wire.ReasonRefused), false
	}
	counted := false
	var spent Spent
	budget := s.cfg.AuthFailuresPerAddress
	if d.AuthMode == device.AuthString && d.AuthString != "" {
		wait, err := s.deps.Guard.AddressWait(ctx, ip, now, budget)
		if err != nil {
			return auth.Result{}, s.storeFailed(err), false
		}
		if wait > 0 {
			s.sum.Reason = "this address has used its budget of failed authentications"
			return auth.Result{}, s.retryLater("auth-address-budget", wait), false
		}
		if wait := s.cfg.Backoff.Wait(d.AuthFailures, d.LastAuthFailure, now); wait > 0 {
			s.sum.Reason = fmt.Sprintf("%d consecutive wrong authentication strings; next guess allowed in %s", d.AuthFailures, wait.Round(time.Second))
			return auth.Result{}, s.retryLater("auth-backoff", wait), false
		}
		ok, err := s.deps.Store.CountAuthGuess(ctx, d.Name, d.AuthFailures, s.cfg.AuthStringMaxFailures, now.UTC())
		if err != nil {
			return auth.Result{}, s.storeFailed(err), false
		}
		if !ok {
			s.sum.Reason = "another authentication of this device is being evaluated"
			return auth.Result{}, s.retryLater("auth-busy", 0), false
		}
		counted = true
		// The device's count is taken: evaluate even if the address's
		// guess could not be recorded (the per-device limit still holds).
		if spent, err = s.deps.Guard.Spend(ctx, ip, now, budget); err != nil {
			s.logError("count the guess against its address", err)
		}
	}
	res, err := s.deps.Auth.AuthenticateWith(s.cfg.AuthPolicy, d.AuthMode, d.AuthString, p)
	s.sum.SUDI = res.SUDI // known even when authentication failed
	if err != nil {
		// The reason goes into the status ("Upgrade Failed: Invalid
		// LSC"); the history's reason says what failed, not the reason
		// again (auth.Error's text repeats it).
		reason, detail := device.ReasonInvalidCredentials, err.Error()
		var ae *auth.Error
		if errors.As(err, &ae) {
			reason, detail = ae.Reason, ae.Detail
		}
		return auth.Result{}, s.authFailed(ctx, d, reason, detail, now, counted), false
	}
	if res.CertKind == auth.CertLSC && res.Certificate != nil && s.deps.Revocations != nil {
		// The chain, validity and name held; the revocation records
		// decide too. A revoked LSC fails as any invalid LSC does: the
		// same status and the same answer to the phone.
		c := res.Certificate
		why, revoked, err := s.deps.Revocations.LSCRevoked(ctx, fmt.Sprintf("%X", c.SerialNumber.Bytes()), hex.EncodeToString(c.AuthorityKeyId))
		if err != nil {
			s.logError("look up the LSC's revocation", err)
			s.sum.Reason = "the revocation records could not be read"
			return auth.Result{}, s.retryLater("store", 0), false
		}
		if revoked {
			return auth.Result{}, s.authFailed(ctx, d, device.ReasonInvalidLSC, "LSC revoked: "+why, now, counted), false
		}
	}
	if counted {
		if err := s.deps.Guard.Refund(ctx, spent); err != nil {
			s.logError("refund the address's right guess", err)
		}
	}
	s.sum.AuthMode = string(res.Method)
	return res, Step{}, true
}

// authFailed records a failed authentication as a closed attempt and ends
// the session with REASON 7. When the guess was counted, the store uses the
// string up once the device has reached auth_string_max_failures.
func (s *Session) authFailed(ctx context.Context, d device.Device, reason, detail string, now time.Time, counted bool) Step {
	result := device.FailedStatus(d.Operation, reason)
	s.sum.Outcome, s.sum.Status, s.sum.Reason = "failed", result, safetext.Bound(detail, MaxReasonText)
	max := 0
	if counted {
		max = s.cfg.AuthStringMaxFailures
	}
	locked, err := s.deps.Store.RecordAuthFailure(context.WithoutCancel(ctx), device.AuthFailure{
		Attempt: device.Attempt{Device: d.Name, Operation: d.Operation, Remote: s.sum.Remote, Node: s.deps.Node, SUDI: s.sum.SUDI,
			StartedAt: now.UTC(), FinishedAt: s.deps.Now().UTC(), Result: result, Reason: s.sum.Reason},
		MaxFailures: max,
	})
	if err != nil {
		s.logError("record authentication failure", err)
	}
	if locked {
		s.sum.Status = device.FailedStatus(d.Operation, device.ReasonTooManyAuthFailures)
		if o := s.deps.Observer; o != nil {
			o.AuthStringUsedUp()
		}
		if s.deps.Logger != nil {
			s.deps.Logger.Warn("authentication string used up by wrong guesses; the administrator must set a new one",
				"device", d.Name, "remote", s.sum.Remote, "failures", s.cfg.AuthStringMaxFailures)
		}
	}
	s.state = Done
	return s.end(wire.ReasonRefused)
}

// claim takes the device in the store, at the revision the session read
// (an administrator's change since then makes it retry later). A device
// held by another session is busy; if that session is this node's and from the phone's own address,
// the phone has rebooted: the old session is superseded (only now that the
// new one has authenticated) and the claim tried again.
func (s *Session) claim(ctx context.Context, d device.Device, res auth.Result, now time.Time) (Step, bool) {
	a := device.Attempt{Device: d.Name, Operation: d.Operation, Remote: s.sum.Remote, StartedAt: now.UTC(),
		Node: s.deps.Node, AuthMode: string(res.Method), Rev: d.Rev, MaxOpen: s.cfg.MaxConcurrentOps,
		Deadline: device.AttemptDeadline(now.UTC(), s.cfg.KeyGenMaxTime, s.cfg.MessageTimeout)}
	c, err := s.deps.Store.StartAttempt(ctx, a)
	if fault.KindOf(err) == fault.Conflict && s.deps.Locks.Supersede(ctx, d.Name, remoteIP(s.sum.Remote)) {
		c, err = s.deps.Store.StartAttempt(ctx, a)
	}
	if err != nil {
		return s.storeFailed(err), false // the store's reason says which conflict
	}
	s.attemptID = c.AttemptID
	s.unlock = s.deps.Locks.Hold(d.Name, remoteIP(s.sum.Remote), s.preempt)
	return Step{}, true
}

// begin sends the request of the device's operation, as the session read
// it (the claim succeeded at that revision).
func (s *Session) begin(ctx context.Context, d device.Device, res auth.Result, now time.Time) Step {
	s.sum.Operation = d.Operation
	switch d.Operation {
	case device.OpInstall:
		s.key = d.Key
		if s.key == "" {
			s.key = s.cfg.DefaultKey
		}
		s.keyDue = now.Add(s.cfg.KeyGenMaxTime)
		return s.askKey()
	case device.OpDelete:
		s.state = AwaitDelete
		return Step{Reply: wire.New(wire.CmdDeleteCertificateRequest, s.id)}
	case device.OpTroubleshoot:
		if res.Certificate != nil {
			s.keepFetched(ctx, string(res.CertKind), res.Certificate)
		}
		s.state = AwaitFetch
		return Step{Reply: wire.New(wire.CmdFetchCertificateRequest, s.id)}
	}
	return s.fail(ctx, device.ReasonInternal, fmt.Sprintf("unknown operation %q", d.Operation))
}

// noteContact keeps a contact of the session's device that ends before a
// session started (the store records the others with the attempt).
func (s *Session) noteContact(outcome, reason string) {
	if s.deps.Contacts == nil || s.dev.Name == "" {
		return
	}
	s.deps.Contacts.Note(device.Contact{Device: s.dev.Name, At: s.deps.Now().UTC(), Remote: s.sum.Remote,
		Outcome: outcome, Reason: safetext.Bound(reason, MaxReasonText)})
}

// noteStranger counts a request for a device that is not configured; name
// is normalized, or "" when it was malformed.
func (s *Session) noteStranger(name string) {
	if s.deps.Strangers != nil {
		s.deps.Strangers.NoteUnknown(name, remoteIP(s.sum.Remote), s.deps.Now().UTC())
	}
}

// remoteIP returns the address part of host:port.
func remoteIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// errMalformedSUDI marks a SUDI_DATA element that does not decode. It is
// refused whatever sudi_verification says: it is malformed input.
var errMalformedSUDI = errors.New("malformed SUDI_DATA")

// presented turns the credentials of AUTH_RESPONSE into auth's terms. The
// phone's choice of credential is learnt from what it sent (the
// CERTIFICATE wrapper's type byte); AUTH_TYPE, which phones do not send, is
// only a fallback label when present.
func presented(name string, sid uint32, m *wire.Message) (auth.Presented, error) {
	p := auth.Presented{DeviceName: name, SessionID: sid}
	if v, ok := m.Get(wire.TagPassword); ok {
		p.HasPassword, p.Password = true, wire.CString(v)
	}
	if v, ok := m.Get(wire.TagCertificate); ok {
		typ, der, err := wire.UnwrapCertificate(v)
		if err != nil {
			return p, err
		}
		p.CertDER = der
		p.CertType = certKind(typ)
	}
	if p.CertType == "" {
		if at, err := m.Uint8(wire.TagAuthType); err == nil {
			switch wire.AuthType(at) {
			case wire.AuthLSC:
				p.CertType = auth.CertLSC
			case wire.AuthMIC:
				p.CertType = auth.CertMIC
			}
		}
	}
	if v, ok := m.Get(wire.TagSignedData); ok {
		p.SHA1Sig = v
	}
	if v, ok := m.Get(wire.TagSHA2SignedData); ok {
		h, sig, err := wire.ParseSHA2SignedData(v)
		if err != nil {
			return p, err
		}
		switch h {
		case wire.HashSHA512:
			p.SHA2Hash = crypto.SHA512
		case wire.HashSHA256:
			p.SHA2Hash = crypto.SHA256
		default:
			return p, fmt.Errorf("%s: unsupported hash %s", wire.TagSHA2SignedData, h)
		}
		p.SHA2Sig = sig
	}
	if v, ok := m.Get(wire.TagSUDIData); ok {
		sd, err := wire.ParseSUDIData(v)
		if err != nil {
			return p, fmt.Errorf("%w: %w", errMalformedSUDI, err)
		}
		p.SUDI = &auth.SUDI{CertDER: sd.Certificate, SHA1Sig: sd.SHA1Sig, SHA512Sig: sd.SHA512Sig}
	}
	return p, nil
}
