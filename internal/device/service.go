package device

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// GeneratedStringLen is the number of digits of a generated authentication
// string.
const GeneratedStringLen = 8

// ServiceOptions configures a [Service].
type ServiceOptions struct {
	Store      Store
	Now        func() time.Time // defaults to time.Now
	Rand       io.Reader        // for generated strings; defaults to crypto/rand
	DefaultKey KeySpec          // key for devices that name none; defaults to RSA2048
	// DefaultKeyNow, when set, gives the key for devices that name none at
	// the time of each change, over DefaultKey: `capf serve` passes the
	// fleet parameter in force, which an administrator may change while
	// it runs. An empty result falls back to DefaultKey.
	DefaultKeyNow func() KeySpec
	// Strangers tells the dashboard which phones asked for a device that
	// is not configured; nil: none known (e.g. in the CLI).
	Strangers interface{ UnknownNames() UnknownNames }
	// Notifier asks phones to restart (Reset); nil: none is configured
	// and Reset says how to configure one.
	Notifier Notifier
}

// Service holds the administrative use cases on devices. The CLI, the REST
// API and the web UI all go through it, so the rules are the same for each.
type Service struct {
	store      Store
	now        func() time.Time
	rand       io.Reader
	defaultKey KeySpec
	keyNow     func() KeySpec
	strangers  interface{ UnknownNames() UnknownNames }
	notifier   Notifier
}

// NewService returns a Service over o.Store.
func NewService(o ServiceOptions) *Service {
	s := &Service{store: o.Store, now: o.Now, rand: o.Rand, defaultKey: o.DefaultKey, keyNow: o.DefaultKeyNow, strangers: o.Strangers, notifier: o.Notifier}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.defaultKey == "" {
		s.defaultKey = RSA2048
	}
	return s
}

// keyDefault returns the key for a device that names none.
func (s *Service) keyDefault() KeySpec {
	if s.keyNow != nil {
		if k := s.keyNow(); k != "" {
			return k
		}
	}
	return s.defaultKey
}

// GenerateAuthString returns a random string of n decimal digits drawn
// uniformly from r.
func GenerateAuthString(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		d, err := rand.Int(r, big.NewInt(10))
		if err != nil {
			return "", fmt.Errorf("generate authentication string: %w", err)
		}
		b[i] = byte('0' + d.Int64())
	}
	return string(b), nil
}

// Change lists the fields an administrator changes on a device; nil fields
// stay as they are.
type Change struct {
	Description     *string
	SecurityProfile *SecurityProfile
	AuthMode        *AuthMode
	AuthString      *string
	GenerateString  bool // replace the authentication string with a new random one
	Operation       *Operation
	Key             *KeySpec
	Deadline        *time.Time // a zero time clears the deadline
}

// Validate checks the change on its own, before any device is read.
func (c Change) Validate() error {
	if c.GenerateString && c.AuthString != nil {
		return fault.InvalidField("auth_string", "give an authentication string or generate one, not both")
	}
	return nil
}

// Apply copies the fields that c sets onto d.
func (c Change) Apply(d *Device) {
	if c.Description != nil {
		d.Description = *c.Description
	}
	if c.SecurityProfile != nil {
		d.SecurityProfile = *c.SecurityProfile
	}
	if c.AuthMode != nil {
		d.AuthMode = *c.AuthMode
	}
	if c.AuthString != nil {
		d.AuthString = *c.AuthString
	}
	if c.Operation != nil {
		d.Operation = *c.Operation
	}
	if c.Key != nil {
		d.Key = *c.Key
	}
	if c.Deadline != nil {
		d.Deadline = c.Deadline.UTC()
	}
}

// Add creates a device. Unset fields take their defaults: non-secure, By
// Null String, No Pending Operation, the default key. A device armed with an
// operation in authentication-string mode without a string gets a generated
// one, as does any device when generate is true.
func (s *Service) Add(ctx context.Context, actor Actor, d Device, generate bool) (Device, error) {
	name, err := NormalizeName(d.Name)
	if err != nil {
		return Device{}, err
	}
	d.Name = name
	applyDefaults(&d, s.keyDefault())
	now := s.now().UTC()
	if err := s.prepare(&d, nil, rule{generate: generate, explicitString: d.AuthString != ""}, now); err != nil {
		return Device{}, err
	}
	d.CreatedAt, d.UpdatedAt = now, now
	d.AuthFailures, d.LastAuthFailure, d.AttemptsTotal, d.LSC = 0, time.Time{}, 0, nil
	ev := AuditEvent{At: now, Actor: actor, Action: AuditDeviceCreate, Target: d.Name, Changes: CreationChanges(d)}
	if err := s.store.CreateDevice(ctx, d, ev); err != nil {
		return Device{}, fmt.Errorf("add device %s: %w", d.Name, err)
	}
	return d, nil
}

func applyDefaults(d *Device, key KeySpec) {
	if d.SecurityProfile == "" {
		d.SecurityProfile = NonSecure
	}
	if d.AuthMode == "" {
		d.AuthMode = AuthNull
	}
	if d.Operation == "" {
		d.Operation = OpNone
	}
	if d.Key == "" {
		d.Key = key
	}
}

// rule says what an administrator's change asked for, beyond the values.
type rule struct {
	generate       bool // Generate String
	rearm          bool // the operation was set explicitly: arm it again even if unchanged
	explicitString bool // an authentication string was given
}

// prepare validates d (new state) against old (nil for a new device),
// generates a string when needed and sets the status an administrator
// change implies. It changes nothing a session owns.
func (s *Service) prepare(d *Device, old *Device, r rule, now time.Time) error {
	armed := d.Operation != OpNone
	opChanged := old == nil || old.Operation != d.Operation
	configChanged := old != nil && (old.AuthMode != d.AuthMode || old.AuthString != d.AuthString || old.Key != d.Key)
	if d.AuthMode != AuthString {
		if r.explicitString && d.AuthString != "" {
			return fault.InvalidField("auth_string", "device %s: an authentication string is only used By Authentication String (mode is %s)", d.Name, d.AuthMode.Label())
		}
		if r.generate {
			return fault.InvalidField("auth_mode", "device %s: Generate String needs authentication mode string (mode is %s)", d.Name, d.AuthMode.Label())
		}
		d.AuthString = "" // a string has no use in another mode; keep none
	}
	modeChanged := old == nil || old.AuthMode != d.AuthMode
	if r.generate || (d.AuthMode == AuthString && armed && d.AuthString == "" && (opChanged || modeChanged || r.rearm)) {
		str, err := GenerateAuthString(s.rand, GeneratedStringLen)
		if err != nil {
			return err
		}
		d.AuthString = str
	}
	if err := d.Validate(); err != nil {
		return err
	}
	arming := armed && (opChanged || r.rearm || (old != nil && old.Status != StatusInProgress && configChanged))
	deadlineChanged := old == nil || !old.Deadline.Equal(d.Deadline)
	if !d.Deadline.IsZero() && d.Deadline.Before(now) && (deadlineChanged || arming) {
		return fault.InvalidField("deadline", "device %s: Operation Completes By %s is in the past; choose a later time or none",
			d.Name, d.Deadline.UTC().Format(time.RFC3339))
	}
	switch {
	case arming && (old == nil || old.Status != StatusInProgress || opChanged):
		d.Status = StatusPending
	case !armed && (old == nil || old.Status == StatusPending || old.Status == StatusInProgress || old.Status == ""):
		d.Status = StatusNone
	}
	return nil
}

// Change applies c to the device called name, inside the store's
// transaction, and returns the result. Only the fields c names (and the
// status that arming or disarming an operation implies) are written; an
// LSC or status a session records meanwhile is kept.
func (s *Service) Change(ctx context.Context, actor Actor, name string, c Change) (Device, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return Device{}, err
	}
	if err := c.Validate(); err != nil {
		return Device{}, err
	}
	now := s.now().UTC()
	r := rule{generate: c.GenerateString, rearm: c.Operation != nil, explicitString: c.AuthString != nil}
	d, _, err := s.store.UpdateDevice(ctx, n, actor, func(d *Device) error {
		old := *d
		c.Apply(d)
		if err := s.prepare(d, &old, r, now); err != nil {
			return err
		}
		d.UpdatedAt = now
		return nil
	})
	if err != nil {
		return Device{}, fmt.Errorf("change device %s: %w", n, err)
	}
	return d, nil
}

// Get returns the device called name.
func (s *Service) Get(ctx context.Context, name string) (Device, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return Device{}, err
	}
	d, err := s.store.GetDevice(ctx, n)
	if err != nil {
		return Device{}, fmt.Errorf("get device %s: %w", n, err)
	}
	return d, nil
}

// List returns the devices matching q.
func (s *Service) List(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	if q.Now.IsZero() {
		q.Now = s.now()
	}
	p, err := s.store.ListDevices(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("list devices: %w", err)
	}
	return p, nil
}

// Remove deletes the device called name and its history. Certificates
// issued to it stay on record.
func (s *Service) Remove(ctx context.Context, actor Actor, name string) error {
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	ev := AuditEvent{At: s.now().UTC(), Actor: actor, Action: AuditDeviceDelete, Target: n}
	if err := s.store.DeleteDevice(ctx, n, ev); err != nil {
		return fmt.Errorf("remove device %s: %w", n, err)
	}
	return nil
}

// History returns the attempts of a device, newest first, at most limit.
func (s *Service) History(ctx context.Context, name string, limit int) ([]Attempt, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.GetDevice(ctx, n); err != nil {
		return nil, fmt.Errorf("history of %s: %w", n, err)
	}
	return s.store.ListAttempts(ctx, n, limit)
}

// Issuances returns the certificates issued to a device ("" for all).
func (s *Service) Issuances(ctx context.Context, name string) ([]Issuance, error) {
	if name != "" {
		n, err := NormalizeName(name)
		if err != nil {
			return nil, err
		}
		name = n
	}
	return s.store.ListIssuances(ctx, name)
}

// Fetched returns the certificates Troubleshoot retrieved from a device.
func (s *Service) Fetched(ctx context.Context, name string) ([]FetchedCertificate, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	return s.store.ListFetchedCertificates(ctx, n)
}

// Audit returns the audit events q selects, newest first.
func (s *Service) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	if q.Target != "" {
		if n, err := NormalizeName(q.Target); err == nil {
			q.Target = n
		}
	}
	evs, err := s.store.ListAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return evs, nil
}

// Now returns the service's clock reading, for views that evaluate LSC
// state and deadlines.
func (s *Service) Now() time.Time { return s.now() }
