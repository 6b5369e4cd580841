package lsc

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// RenewalActorPrefix starts the name of the system actor that arms a
// renewal: "renewal of LSC SERIAL". The audit event of the arming names
// it, which is how a renewal is armed once per LSC.
const RenewalActorPrefix = "renewal of LSC "

// maxRenewalsPerRun bounds the devices one run arms; the next run arms
// the next ones.
const maxRenewalsPerRun = 1000

// RenewalDevices is what the renewal needs of the device store.
type RenewalDevices interface {
	ListDevices(ctx context.Context, q device.Query) (device.Page, error)
	UpdateDevice(ctx context.Context, name string, actor device.Actor, change func(*device.Device) error) (device.Device, bool, error)
	ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
}

// Renewal arms Install/Upgrade for the phones whose LSC nears its expiry:
// authentication by the existing certificate (LSC precedence), the same
// key type, once per LSC. The sessions then apply the maintenance windows
// and the concurrency limit as for any armed operation; the renewed
// phone's old LSC is superseded when the new one is stored.
type Renewal struct {
	devices RenewalDevices
	now     func() time.Time
}

// NewRenewal returns the renewal over devices, with clock now (time.Now
// when nil).
func NewRenewal(devices RenewalDevices, now func() time.Time) *Renewal {
	if now == nil {
		now = time.Now
	}
	return &Renewal{devices: devices, now: now}
}

// Run arms every phone whose LSC is valid and expires within before, that
// has no pending operation and whose current LSC was not armed for
// renewal already. An LSC on the revocation records is not valid (the
// store's device.LSCValid leaves it out) and is never renewed by itself:
// it no longer proves the phone, and renewing it would hand a fresh LSC
// to whoever holds a key revoked as compromised. Such a phone is
// re-enrolled by an administrator, by string, MIC or null. It returns the
// names of the phones it armed. A phone whose LSC key it cannot read is
// skipped (and named in the error).
func (r *Renewal) Run(ctx context.Context, before time.Duration) ([]string, error) {
	if before <= 0 {
		return nil, nil
	}
	now := r.now().UTC()
	page, err := r.devices.ListDevices(ctx, device.Query{
		Filters: []device.Filter{
			{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCValid},
			{Field: device.FieldLSCExpires, Match: device.MatchBefore, Value: now.Add(before).Format(time.RFC3339)},
			{Field: device.FieldOperation, Match: device.MatchEquals, Value: string(device.OpNone)},
		},
		Sort: device.FieldLSCExpires, Limit: maxRenewalsPerRun, Now: now,
	})
	if err != nil {
		return nil, fmt.Errorf("renewal: find expiring LSCs: %w", err)
	}
	var armed []string
	var errs []error
	for _, d := range page.Devices {
		if d.LSC == nil || !d.LSC.RevokedAt.IsZero() {
			continue
		}
		actor := device.Actor{Kind: device.ActorSystem, Name: RenewalActorPrefix + d.LSC.Serial}
		done, err := r.armedBefore(ctx, d.Name, actor)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			continue
		}
		spec, err := KeySpecOf(d.LSC.DER)
		if err != nil {
			errs = append(errs, fmt.Errorf("renewal of %s: %w", d.Name, err))
			continue
		}
		serial := d.LSC.Serial
		_, changed, err := r.devices.UpdateDevice(ctx, d.Name, actor, func(cur *device.Device) error {
			// What the list read must still hold: the same LSC, not
			// revoked since, nothing pending (an administrator may have
			// armed something since).
			if cur.LSC == nil || cur.LSC.Serial != serial || !cur.LSC.RevokedAt.IsZero() || cur.Operation != device.OpNone {
				return errSkip
			}
			cur.Operation, cur.AuthMode, cur.Key = device.OpInstall, device.AuthLSC, spec
			cur.Status, cur.UpdatedAt = device.StatusPending, now
			return nil
		})
		switch {
		case errors.Is(err, errSkip):
		case err != nil:
			errs = append(errs, fmt.Errorf("renewal of %s: %w", d.Name, err))
		case changed:
			armed = append(armed, d.Name)
		}
	}
	if len(errs) > 0 {
		return armed, fmt.Errorf("renewal: %d phone(s) not armed: %w", len(errs), errs[0])
	}
	return armed, nil
}

// errSkip ends an UpdateDevice whose device changed since it was listed.
var errSkip = fault.Conflictf("the phone changed since it was listed")

// armedBefore reports whether actor (the renewal of the phone's current
// LSC) armed the phone before.
func (r *Renewal) armedBefore(ctx context.Context, name string, actor device.Actor) (bool, error) {
	evs, err := r.devices.ListAudit(ctx, device.AuditQuery{Target: name, Limit: 200})
	if err != nil {
		return false, fmt.Errorf("renewal of %s: read its audit: %w", name, err)
	}
	for _, ev := range evs {
		if ev.Actor.Kind == actor.Kind && ev.Actor.Name == actor.Name {
			return true, nil
		}
	}
	return false, nil
}

// KeySpecOf returns the key type of the certificate der, as a phone is
// asked for it: the same type and size for the renewal.
func KeySpecOf(der []byte) (device.KeySpec, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("LSC does not parse: %w", err)
	}
	var s string
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		s = fmt.Sprintf("rsa%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		s = fmt.Sprintf("ec%d", k.Curve.Params().BitSize)
	default:
		return "", fmt.Errorf("LSC key %T is not one a phone generates", c.PublicKey)
	}
	return device.ParseKeySpec(s)
}
