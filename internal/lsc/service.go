package lsc

import (
	"context"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// MaxList bounds one listing (the API's limit of GET /certificates is the
// same).
const MaxList = 10000

// Options configure a [Service].
type Options struct {
	Store Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Revoked, when set, is called after a revocation was committed (to
	// regenerate the CRL at once on this node). It must not block.
	Revoked func()
}

// Service holds the administrator's use cases on issued LSCs.
type Service struct {
	o Options
}

// NewService returns the service over o.Store.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

// Now returns the service's clock reading, for callers that show Status.
func (s *Service) Now() time.Time { return s.o.Now() }

// List returns the issued LSCs q selects, newest first, at most 10000;
// the device name is normalized as device names are (Invalid when it is
// not one).
func (s *Service) List(ctx context.Context, q Query) ([]Record, error) {
	if q.Status != "" {
		if _, err := ParseStatus(string(q.Status)); err != nil {
			return nil, err
		}
	}
	if q.Device != "" {
		name, err := NormalizeDevice(q.Device)
		if err != nil {
			return nil, err
		}
		q.Device = name
	}
	if q.Limit <= 0 || q.Limit > MaxList {
		q.Limit = MaxList
	}
	if q.Now.IsZero() {
		q.Now = s.o.Now()
	}
	return s.o.Store.ListCertificates(ctx, q)
}

// NormalizeDevice normalizes the device name of a listing as device names
// are; Invalid, blaming the field device, when it is not one.
func NormalizeDevice(name string) (string, error) {
	n, err := device.NormalizeName(name)
	if err != nil {
		return "", fault.InvalidField("device", "%s", fault.Message(err))
	}
	return n, nil
}

// Get returns the LSC whose serial is given in hex (see ParseSerial);
// Invalid for a malformed serial, NotFound for one the CAPF never issued.
func (s *Service) Get(ctx context.Context, serial string) (Record, error) {
	norm, err := ParseSerial(serial)
	if err != nil {
		return Record{}, err
	}
	r, err := s.o.Store.GetCertificate(ctx, norm)
	if fault.KindOf(err) == fault.NotFound {
		return Record{}, fault.NotFoundf("serial %s: no LSC with this serial was issued by this CAPF", norm)
	}
	return r, err
}

// Revoke revokes the LSC of serial for reason (an RFC 5280 name from
// AdminReasons), by actor, audited in the same transaction. Invalid for a
// malformed serial or reason; NotFound for an unknown serial; Conflict
// when it is revoked already.
func (s *Service) Revoke(ctx context.Context, actor device.Actor, serial, reason string) (Record, error) {
	norm, err := ParseSerial(serial)
	if err != nil {
		return Record{}, err
	}
	why, err := ParseReason(reason)
	if err != nil {
		return Record{}, err
	}
	now := s.o.Now().UTC()
	by := actor.Kind + ":" + actor.Name
	ev := device.AuditEvent{At: now, Actor: actor, Action: AuditRevoke, Target: "certificate " + norm,
		Changes: []device.FieldChange{{Field: "revocation", Old: "(none)", New: why.String()}}}
	r, err := s.o.Store.RevokeCertificate(ctx, norm, Revocation{At: now, Reason: why, By: by}, ev)
	switch fault.KindOf(err) {
	case fault.NotFound:
		return Record{}, fault.NotFoundf("serial %s: no LSC with this serial was issued by this CAPF", norm)
	case fault.Conflict:
		return Record{}, fmt.Errorf("serial %s: %w", norm, err)
	}
	if err != nil {
		return Record{}, err
	}
	if s.o.Revoked != nil {
		s.o.Revoked()
	}
	return r, nil
}
