package cli

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

// caVault keeps CA keys where this node keeps them (caset.KeyMaker and
// caset.KeyVault): files under DATA/ca on a node that keeps its keys as
// files, rows of the keys table sealed under the cluster's KEK on a
// cluster with one. The CLI, the API and the web UI share it through
// caset.Admin.
type caVault struct {
	g   *globals
	st  store.Store
	cfg config.Config
}

// NewCAKey generates the key and self-signed certificate of a new CA.
func (m caVault) NewCAKey(ctx context.Context, alg ca.KeyAlgorithm) (caset.NewKey, error) {
	a, err := ca.Generate(ca.Options{KeyAlgorithm: alg})
	if err != nil {
		return caset.NewKey{}, err
	}
	id, err := caset.KeyID(a.Certificate())
	if err != nil {
		return caset.NewKey{}, err
	}
	return m.PutKey(ctx, caKeyPrefix+id, []*x509.Certificate{a.Certificate()}, a.Signer())
}

// PutKey seals key as the row ref on a cluster with a KEK, else writes it
// (with chain's leaf) to the directory of ref under DATA/ca.
func (m caVault) PutKey(ctx context.Context, ref string, chain []*x509.Certificate, key crypto.Signer) (caset.NewKey, error) {
	if m.g.keysInDB() {
		ck, err := m.g.clusterKeysOf(ctx)
		if err != nil {
			return caset.NewKey{}, err
		}
		k, err := ck.currentKEK(ctx, m.st)
		if err != nil {
			return caset.NewKey{}, err
		}
		kr, err := keys.NewService(nil, k, nil).Record(keys.Material{ID: ref, Kind: keys.KindCAPF, Chain: chain, Key: key})
		if err != nil {
			return caset.NewKey{}, err
		}
		return caset.NewKey{Chain: chain, KeyRef: ref, Key: &kr}, nil
	}
	sub, ok := caKeyDir(ref)
	if !ok || sub == "." || sub == pendingCADir {
		return caset.NewKey{}, fault.Invalidf("no key file place for %q", ref)
	}
	dir := filepath.Join(m.g.dir().CA(), sub)
	if err := ca.Install(dir, chain[0], key); err != nil {
		return caset.NewKey{}, err
	}
	return caset.NewKey{Chain: chain, KeyRef: ref, Undo: func() { _ = os.RemoveAll(dir) }}, nil
}

// OpenKey opens the key of r where this node keeps it.
func (m caVault) OpenKey(ctx context.Context, r caset.Record) (*ca.Authority, error) {
	var ms map[string]keys.Material
	if m.g.keysInDB() && !isTokenKeyRef(r.KeyRef) {
		ck, err := m.g.clusterKeysOf(ctx)
		if err != nil {
			return nil, err
		}
		k, err := ck.currentKEK(ctx, m.st)
		if err != nil {
			return nil, err
		}
		if ms, err = keys.NewService(m.st, k, nil).Load(ctx); err != nil {
			return nil, err
		}
	}
	return m.g.caAuthority(ctx, r, m.cfg, ms)
}

// Pending returns the offline CA's pending key; nil when there is none.
func (m caVault) Pending(ctx context.Context) (*caset.Pending, error) {
	return m.g.pendingStatus(ctx, m.st)
}

// OpenPending opens the pending key: the keys table's row on a cluster
// with a KEK, DATA/ca/pending otherwise.
func (m caVault) OpenPending(ctx context.Context) (crypto.Signer, *x509.Certificate, error) {
	if m.g.keysInDB() {
		if _, ok, err := pendingKeyRecord(ctx, m.st); err != nil {
			return nil, nil, err
		} else if !ok {
			return nil, nil, errNoPendingKey
		}
		ck, err := m.g.clusterKeysOf(ctx)
		if err != nil {
			return nil, nil, err
		}
		k, err := ck.currentKEK(ctx, m.st)
		if err != nil {
			return nil, nil, err
		}
		ms, err := keys.NewService(m.st, k, nil).Load(ctx)
		if err != nil {
			return nil, nil, err
		}
		p, ok := ms[caset.PendingKeyID]
		if !ok || p.Key == nil || len(p.Chain) == 0 {
			return nil, nil, errNoPendingKey
		}
		return p.Key, p.Chain[0], nil
	}
	a, err := ca.Load(ca.Options{Dir: m.g.pendingDir()})
	if err != nil {
		if _, serr := os.Stat(filepath.Join(m.g.pendingDir(), ca.KeyFile)); errors.Is(serr, fs.ErrNotExist) {
			return nil, nil, errNoPendingKey
		}
		return nil, nil, fmt.Errorf("the pending key in %s: %w", m.g.pendingDir(), err)
	}
	return a.Signer(), a.Certificate(), nil
}

// AddPending seals key as the keys table's pending row with ev on a
// cluster with a KEK; otherwise it writes DATA/ca/pending, then ev, and
// removes the directory when ev is refused.
func (m caVault) AddPending(ctx context.Context, placeholder *x509.Certificate, key crypto.Signer, ev device.AuditEvent) error {
	if m.g.keysInDB() {
		ck, err := m.g.clusterKeysOf(ctx)
		if err != nil {
			return err
		}
		k, err := ck.currentKEK(ctx, m.st)
		if err != nil {
			return err
		}
		kr, err := keys.NewService(nil, k, nil).Record(keys.Material{ID: caset.PendingKeyID, Kind: keys.KindCAPF, Chain: []*x509.Certificate{placeholder}, Key: key})
		if err != nil {
			return err
		}
		ev.Detail += ", sealed in the database under KEK " + k.ID()
		return m.st.AddPendingKey(ctx, kr, ev)
	}
	if err := ca.Install(m.g.pendingDir(), placeholder, key); err != nil {
		return err
	}
	if err := m.st.AppendAudit(ctx, ev); err != nil {
		_ = os.RemoveAll(m.g.pendingDir()) // not audited: not kept
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// DiscardPending removes the pending key with ev: the row in the same
// transaction on a cluster with a KEK, DATA/ca/pending after ev
// otherwise.
func (m caVault) DiscardPending(ctx context.Context, ev device.AuditEvent) error {
	if m.g.keysInDB() {
		return m.st.DiscardPendingKey(ctx, caset.PendingKeyID, ev)
	}
	if err := m.st.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := os.RemoveAll(m.g.pendingDir()); err != nil {
		return fmt.Errorf("discard the pending key in %s: %w", m.g.pendingDir(), err)
	}
	return nil
}

// ClearPending removes DATA/ca/pending once its key is the staged CA's
// (the store removed the row on a cluster with a KEK).
func (m caVault) ClearPending(context.Context) error {
	if m.g.keysInDB() {
		return nil
	}
	return os.RemoveAll(m.g.pendingDir())
}

// RetireIssuingKey moves DATA/ca/issuing, the key files of the issuing CA
// id just taken out of place, to DATA/ca/issuing-ID where former issuing
// CAs keep theirs (the store kept its keys row on a cluster with a KEK; a
// token keeps its key). Nothing to do when they are there already (a
// restore puts them there).
func (m caVault) RetireIssuingKey(_ context.Context, id string) error {
	if m.g.keysInDB() {
		return nil
	}
	cur := m.g.issuingDir()
	a, err := ca.Load(ca.Options{Dir: cur})
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return nil // a token key, or kept as a former one already
		}
		return err
	}
	if have, _ := caset.KeyID(a.Certificate()); have != id {
		return nil // another issuing CA's files
	}
	return os.Rename(cur, m.g.formerIssuingDir(id))
}

// ForgetIssuingKey removes the key files of the former issuing CA id (the
// store removed its keys row with it on a cluster with a KEK).
func (m caVault) ForgetIssuingKey(_ context.Context, id string) error {
	if m.g.keysInDB() {
		return nil
	}
	return os.RemoveAll(m.g.formerIssuingDir(id))
}

// errNoPendingKey is the refusal when no pending key waits.
var errNoPendingKey = fault.NotFoundf("no pending key: capf ca csr makes one and its certificate request")

// pendingStatus returns the offline CA's pending key; nil when there is
// none.
func (g *globals) pendingStatus(ctx context.Context, st store.Store) (*caset.Pending, error) {
	if g.keysInDB() {
		r, ok, err := pendingKeyRecord(ctx, st)
		if err != nil || !ok {
			return nil, err
		}
		c, err := x509.ParseCertificate(r.Chain)
		if err != nil {
			return nil, fault.Invalidf("the pending key's certificate does not parse: %v", err)
		}
		return &caset.Pending{ID: caset.PublicKeyID(c.PublicKey), Subject: c.Subject.String(), Algorithm: caset.KeyAlgorithmOf(c.PublicKey),
			Where: fmt.Sprintf("sealed in the database as %s since %s", caset.PendingKeyID, r.CreatedAt.UTC().Format(time.RFC3339))}, nil
	}
	a, err := ca.Load(ca.Options{Dir: g.pendingDir()})
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("the pending key in %s: %w", g.pendingDir(), err)
	}
	c := a.Certificate()
	return &caset.Pending{ID: caset.PublicKeyID(c.PublicKey), Subject: c.Subject.String(), Algorithm: caset.KeyAlgorithmOf(c.PublicKey), Where: "in " + g.pendingDir()}, nil
}
