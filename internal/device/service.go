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
}

// Service holds the administrative use cases on devices. The CLI, the REST
// API and the web UI all go through it, so the rules are the same for each.
type Service struct {
	store      Store
	now        func() time.Time
	rand       io.Reader
	defaultKey KeySpec
}

// NewService returns a Service over o.Store.
func NewService(o ServiceOptions) *Service {
	s := &Service{store: o.Store, now: o.Now, rand: o.Rand, defaultKey: o.DefaultKey}
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
func (s *Service) Add(ctx context.Context, d Device, generate bool) (Device, error) {
	name, err := NormalizeName(d.Name)
	if err != nil {
		return Device{}, err
	}
	d.Name = name
	applyDefaults(&d, s.defaultKey)
	now := s.now().UTC()
	if err := s.prepare(&d, nil, generate, now); err != nil {
		return Device{}, err
	}
	d.CreatedAt, d.UpdatedAt = now, now
	if err := s.store.CreateDevice(ctx, d); err != nil {
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

// prepare validates d (new state) against old (nil for a new device),
// generates a string when needed and sets the status an administrator
// change implies.
func (s *Service) prepare(d *Device, old *Device, generate bool, now time.Time) error {
	if generate || (d.AuthMode == AuthString && d.Operation != OpNone && d.AuthString == "") {
		str, err := GenerateAuthString(s.rand, GeneratedStringLen)
		if err != nil {
			return err
		}
		d.AuthString = str
	}
	if err := d.Validate(); err != nil {
		return err
	}
	deadlineChanged := old == nil || !old.Deadline.Equal(d.Deadline)
	if !d.Deadline.IsZero() && deadlineChanged && d.Deadline.Before(now) {
		return fault.Invalidf("device %s: Operation Completes By %s is in the past", d.Name, d.Deadline.UTC().Format(time.RFC3339))
	}
	switch {
	case d.Operation != OpNone && (old == nil || old.Operation != d.Operation || old.Status != StatusInProgress):
		d.Status = StatusPending
	case d.Operation == OpNone && (old == nil || old.Status == StatusPending || old.Status == StatusInProgress || old.Status == ""):
		d.Status = StatusNone
	}
	return nil
}

// Change applies c to the device called name and returns the result.
func (s *Service) Change(ctx context.Context, name string, c Change) (Device, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return Device{}, err
	}
	old, err := s.store.GetDevice(ctx, n)
	if err != nil {
		return Device{}, fmt.Errorf("change device %s: %w", n, err)
	}
	d := old
	c.Apply(&d)
	now := s.now().UTC()
	if err := s.prepare(&d, &old, c.GenerateString, now); err != nil {
		return Device{}, err
	}
	d.UpdatedAt = now
	if err := s.store.UpdateDevice(ctx, d); err != nil {
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
func (s *Service) Remove(ctx context.Context, name string) error {
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDevice(ctx, n); err != nil {
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
