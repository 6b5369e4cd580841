// Package casettest holds in-memory stand-ins for where the deployment
// keeps CA keys, for the tests of the edges (the REST API, the web UI)
// that drive a [caset.Admin] over a real CA set. The real ones (files
// under DATA/ca, rows sealed under the KEK) are tested in internal/cli.
package casettest

import (
	"context"
	"crypto"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// Keys is a [caset.KeyMaker] that makes the key of a regenerated CA in
// memory and forgets it: the edges need only its certificate (serve opens
// the key when the set changes). Now is the new CA's clock.
type Keys struct {
	Now func() time.Time
}

// NewCAKey implements [caset.KeyMaker].
func (k Keys) NewCAKey(_ context.Context, alg ca.KeyAlgorithm) (caset.NewKey, error) {
	a, err := ca.Generate(ca.Options{KeyAlgorithm: alg, Now: k.Now})
	if err != nil {
		return caset.NewKey{}, err
	}
	id, err := caset.KeyID(a.Certificate())
	if err != nil {
		return caset.NewKey{}, err
	}
	return caset.NewKey{Chain: []*x509.Certificate{a.Certificate()}, KeyRef: "ca-" + id}, nil
}

// Auditor appends to the audit stream: the real store of the test.
type Auditor interface {
	AppendAudit(ctx context.Context, ev device.AuditEvent) error
}

// Vault is a [caset.KeyVault] that keeps CA keys and the pending key in
// memory; the pending key's audit lines go to the real store.
type Vault struct {
	audit Auditor
	now   func() time.Time

	mu      sync.Mutex
	keys    map[string]crypto.Signer
	pending crypto.Signer
	holder  *x509.Certificate
}

// NewVault returns an empty vault auditing to audit; now is the clock of
// the CAs it opens.
func NewVault(audit Auditor, now func() time.Time) *Vault {
	return &Vault{audit: audit, now: now, keys: map[string]crypto.Signer{}}
}

// PutKey implements [caset.KeyVault]: Conflict for a reference it holds.
func (v *Vault) PutKey(_ context.Context, ref string, _ []*x509.Certificate, key crypto.Signer) (caset.NewKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.keys[ref]; ok {
		return caset.NewKey{}, fault.Conflictf("key %s exists", ref)
	}
	v.keys[ref] = key
	return caset.NewKey{KeyRef: ref, Undo: func() { v.mu.Lock(); delete(v.keys, ref); v.mu.Unlock() }}, nil
}

// OpenKey implements [caset.KeyVault].
func (v *Vault) OpenKey(_ context.Context, r caset.Record) (*ca.Authority, error) {
	v.mu.Lock()
	k := v.keys[r.KeyRef]
	v.mu.Unlock()
	if k == nil {
		return nil, fault.NotFoundf("no key %s", r.KeyRef)
	}
	c, err := r.Certificate()
	if err != nil {
		return nil, err
	}
	return ca.New(c, k, ca.Options{Now: v.now})
}

// Pending implements [caset.KeyVault].
func (v *Vault) Pending(context.Context) (*caset.Pending, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending == nil {
		return nil, nil
	}
	return &caset.Pending{ID: caset.PublicKeyID(v.pending.Public()), Subject: v.holder.Subject.String(),
		Algorithm: caset.KeyAlgorithmOf(v.pending.Public()), Where: "in memory"}, nil
}

// OpenPending implements [caset.KeyVault].
func (v *Vault) OpenPending(context.Context) (crypto.Signer, *x509.Certificate, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending == nil {
		return nil, nil, fault.NotFoundf("no pending key")
	}
	return v.pending, v.holder, nil
}

// AddPending implements [caset.KeyVault].
func (v *Vault) AddPending(ctx context.Context, c *x509.Certificate, key crypto.Signer, ev device.AuditEvent) error {
	if err := v.audit.AppendAudit(ctx, ev); err != nil {
		return err
	}
	v.mu.Lock()
	v.pending, v.holder = key, c
	v.mu.Unlock()
	return nil
}

// DiscardPending implements [caset.KeyVault].
func (v *Vault) DiscardPending(ctx context.Context, ev device.AuditEvent) error {
	if err := v.audit.AppendAudit(ctx, ev); err != nil {
		return err
	}
	return v.ClearPending(ctx)
}

// ClearPending implements [caset.KeyVault].
func (v *Vault) ClearPending(context.Context) error {
	v.mu.Lock()
	v.pending, v.holder = nil, nil
	v.mu.Unlock()
	return nil
}

// RetireIssuingKey implements [caset.KeyVault]: the key stays, as a
// former issuing CA's.
func (v *Vault) RetireIssuingKey(context.Context, string) error { return nil }

// ForgetIssuingKey implements [caset.KeyVault].
func (v *Vault) ForgetIssuingKey(_ context.Context, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.keys, caset.IssuingKeyPrefix+id)
	return nil
}

// Refs lists the references of the keys it holds, sorted, then "pending"
// when a pending key waits; comma-separated.
func (v *Vault) Refs() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for r := range v.keys {
		out = append(out, r)
	}
	slices.Sort(out)
	if v.pending != nil {
		out = append(out, "pending")
	}
	return strings.Join(out, ",")
}
