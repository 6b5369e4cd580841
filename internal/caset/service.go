package caset

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

// The audit actions of the CA set; target is always the CA's id.
const (
	AuditAdopt      = "ca.adopt"      // the CAPF certificate of before the set became its first active CA
	AuditRegenerate = "ca.regenerate" // a new CA, staged
	AuditActivate   = "ca.activate"
	AuditRetire     = "ca.retire"
)

// Service validates and audits the changes of the CA set. Every change is
// audited in the transaction that makes it: it takes effect (nodes see
// it) only with its audit line.
type Service struct {
	st       Store
	now      func() time.Time
	implicit []Record
}

// NewService returns the service over st; now nil means time.Now.
func NewService(st Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, now: now}
}

// Assume makes the service take r as the set while the store's set is
// empty (no node adopted the CAPF certificate of before the set yet), so
// that a command refused on such a set names that certificate, without
// writing it. It returns s.
func (s *Service) Assume(r Record) *Service {
	s.implicit = []Record{r}
	return s
}

// list returns the stored set, or the assumed one while that is empty.
func (s *Service) list(ctx context.Context) ([]Record, error) {
	recs, err := s.st.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the CA set: %w", err)
	}
	if len(recs) == 0 {
		return s.implicit, nil
	}
	return recs, nil
}

// Adopt makes cert (its key at keyRef) the first, active CA of an empty
// set; it does nothing when the set has a CA already (another node, or an
// earlier start, adopted it). It reports whether it stored it.
func (s *Service) Adopt(ctx context.Context, cert *x509.Certificate, keyRef string, actor device.Actor) (bool, error) {
	have, err := s.st.ListCAs(ctx)
	if err != nil {
		return false, fmt.Errorf("read the CA set: %w", err)
	}
	if len(have) > 0 {
		return false, nil
	}
	id, err := KeyID(cert)
	if err != nil {
		return false, err
	}
	now := s.now().UTC()
	r := Record{ID: id, State: Active, Chain: cert.Raw, KeyRef: keyRef, CreatedAt: now, ChangedAt: now}
	ev := s.event(actor, AuditAdopt, cert, "the CAPF certificate in use became the first active CA of the set")
	if err := s.st.AddCA(ctx, r, nil, ev); err != nil {
		if fault.KindOf(err) == fault.Conflict {
			return false, nil // another node adopted it first
		}
		return false, fmt.Errorf("adopt the CAPF certificate: %w", err)
	}
	return true, nil
}

// Stage adds chain (leaf first; its key at keyRef, and stored as key when
// not nil) as a staged CA.
func (s *Service) Stage(ctx context.Context, chain []*x509.Certificate, keyRef string, key *keys.Record, actor device.Actor) (Record, error) {
	if len(chain) == 0 || !chain[0].IsCA {
		return Record{}, fault.Invalidf("a staged CAPF certificate must be a CA certificate")
	}
	id, err := KeyID(chain[0])
	if err != nil {
		return Record{}, err
	}
	now := s.now().UTC()
	r := Record{ID: id, State: Staged, Chain: ChainDER(chain...), KeyRef: keyRef, CreatedAt: now, ChangedAt: now}
	ev := s.event(actor, AuditRegenerate, chain[0], "staged: listed in trust files from now on; capf ca activate "+id+" makes it the one phones see")
	if err := s.st.AddCA(ctx, r, key, ev); err != nil {
		return Record{}, fmt.Errorf("stage CA %s: %w", id, err)
	}
	return r, nil
}

// Activate makes the staged CA ref names (the only staged one when ref is
// empty) the active CA; the active one becomes retiring. It returns the
// CA activated and the one it replaced.
func (s *Service) Activate(ctx context.Context, ref string, actor device.Actor) (activated, previous Record, err error) {
	recs, err := s.list(ctx)
	if err != nil {
		return Record{}, Record{}, err
	}
	var target Record
	if ref == "" {
		var staged []Record
		for _, r := range recs {
			if r.State == Staged {
				staged = append(staged, r)
			}
		}
		switch len(staged) {
		case 0:
			return Record{}, Record{}, fault.Invalidf("no staged CAPF certificate to activate: capf ca regenerate makes one")
		case 1:
			target = staged[0]
		default:
			return Record{}, Record{}, fault.Invalidf("%d CAPF certificates are staged: name the one to activate (capf ca status)", len(staged))
		}
	} else if target, err = Find(recs, ref); err != nil {
		return Record{}, Record{}, err
	}
	if target.State != Staged {
		return Record{}, Record{}, fault.Conflictf("CA %s is %s, not staged: only a staged CAPF certificate can be activated", target.ID, target.State)
	}
	for _, r := range recs {
		if r.State == Active {
			previous = r
		}
	}
	changes := []StateChange{{ID: target.ID, From: Staged, To: Active}}
	if previous.ID != "" {
		changes = append(changes, StateChange{ID: previous.ID, From: Active, To: Retiring})
	}
	cert, err := target.Certificate()
	if err != nil {
		return Record{}, Record{}, err
	}
	now := s.now().UTC()
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return Record{}, Record{}, fault.Conflictf("CA %s is not valid now (%s to %s)", target.ID, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	detail := "active: presented on TLS and signing new LSCs"
	if previous.ID != "" {
		detail += "; " + previous.ID + " is retiring (still listed and trusted)"
	}
	if err := s.st.ChangeCAStates(ctx, changes, now, s.event(actor, AuditActivate, cert, detail)); err != nil {
		return Record{}, Record{}, fmt.Errorf("activate CA %s: %w", target.ID, err)
	}
	target.State, target.ChangedAt = Active, now
	if previous.ID != "" {
		previous.State, previous.ChangedAt = Retiring, now
	}
	return target, previous, nil
}

// Retire retires the CA ref names (its id or serial): it leaves trust
// files and LSC authentication. It refuses the active CA, and, unless
// force, a CA from which devices hold a valid LSC, naming their count. It
// returns the CA and that count.
func (s *Service) Retire(ctx context.Context, ref string, force bool, actor device.Actor) (Record, int, error) {
	recs, err := s.list(ctx)
	if err != nil {
		return Record{}, 0, err
	}
	target, err := Find(recs, ref)
	if err != nil {
		return Record{}, 0, err
	}
	switch target.State {
	case Active:
		return Record{}, 0, fault.Conflictf("CA %s is the active CAPF certificate: activate another one first (capf ca regenerate, then capf ca activate)", target.ID)
	case Retired:
		return Record{}, 0, fault.Conflictf("CA %s is retired already", target.ID)
	}
	cert, err := target.Certificate()
	if err != nil {
		return Record{}, 0, err
	}
	now := s.now().UTC()
	n, err := s.st.CountLSCHolders(ctx, target.ID, cert.Subject.String(), now)
	if err != nil {
		return Record{}, 0, fmt.Errorf("count the LSCs of CA %s: %w", target.ID, err)
	}
	below, err := s.issuingHolders(ctx, cert, now)
	if err != nil {
		return Record{}, 0, err
	}
	n += below
	if n > 0 && !force {
		return Record{}, n, fault.Conflictf("%d phones hold a valid LSC from CA %s: they would no longer authenticate with it; let them renew under the active CA first, or retire it with --force", n, target.ID)
	}
	detail := fmt.Sprintf("retired (was %s): no longer listed nor trusted; %d phones held a valid LSC from it", target.State, n)
	if err := s.st.ChangeCAStates(ctx, []StateChange{{ID: target.ID, From: target.State, To: Retired}}, now, s.event(actor, AuditRetire, cert, detail)); err != nil {
		return Record{}, n, fmt.Errorf("retire CA %s: %w", target.ID, err)
	}
	target.State, target.ChangedAt = Retired, now
	return target, n, nil
}

// Status is one CA as `capf ca status` shows it.
type Status struct {
	Record
	Cert *x509.Certificate
	// Holders is how many devices hold a valid LSC it issued.
	Holders int
}

// Status returns every CA with the devices that hold its LSCs, oldest
// first.
func (s *Service) Status(ctx context.Context) ([]Status, error) {
	recs, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	out := make([]Status, 0, len(recs))
	for _, r := range recs {
		c, err := r.Certificate()
		if err != nil {
			return nil, err
		}
		n, err := s.st.CountLSCHolders(ctx, r.ID, c.Subject.String(), now)
		if err != nil {
			return nil, fmt.Errorf("count the LSCs of CA %s: %w", r.ID, err)
		}
		out = append(out, Status{Record: r, Cert: c, Holders: n})
	}
	return out, nil
}

// event is the audit event of action on cert, with its subject, serial
// and SHA-256.
func (s *Service) event(actor device.Actor, action string, cert *x509.Certificate, detail string) device.AuditEvent {
	id, _ := KeyID(cert)
	sum := sha256.Sum256(cert.Raw)
	return device.AuditEvent{At: s.now().UTC(), Actor: actor, Action: action, Target: id,
		Detail: fmt.Sprintf("%s: %s, serial %X, sha256 %X", detail, cert.Subject, cert.SerialNumber, sum)}
}
