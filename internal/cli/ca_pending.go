package cli

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

// The offline CA on a cluster with a KEK (ADR 0017): the pending key is
// the keys table's row caset.PendingKeyID, sealed under the KEK with a
// self-signed placeholder certificate, as DATA/ca/pending holds it on a
// node that keeps its keys as files; install-signed seals it again as the
// staged CA's key and removes the pending row, in one transaction.

// pendingKeyRecord returns the pending key's row of st; false when there
// is none. Its certificate is the placeholder: public, no KEK needed.
func pendingKeyRecord(ctx context.Context, st keys.Store) (keys.Record, bool, error) {
	recs, err := st.ListKeys(ctx)
	if err != nil {
		return keys.Record{}, false, fmt.Errorf("read keys: %w", err)
	}
	for _, r := range recs {
		if r.ID == caset.PendingKeyID {
			return r, true, nil
		}
	}
	return keys.Record{}, false, nil
}

// caCSRSealed is `capf ca csr` on a cluster with a KEK: the pending key is
// sealed in the keys table with its audit line.
func (g *globals) caCSRSealed(ctx context.Context, name pkix.Name, alg ca.KeyAlgorithm) error {
	ck, err := g.clusterKeysOf(ctx)
	if err != nil {
		return err
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	if r, ok, err := pendingKeyRecord(ctx, st); err != nil {
		return err
	} else if ok {
		id := caset.PendingKeyID
		if c, err := x509.ParseCertificate(r.Chain); err == nil {
			id = caset.PublicKeyID(c.PublicKey)
		}
		return fault.Conflictf("a pending key %s is waiting for its certificate (capf ca install-signed); to start over: capf ca csr --discard", id)
	}
	a, err := ca.Generate(ca.Options{KeyAlgorithm: alg, Subject: name})
	if err != nil {
		return err
	}
	name = a.Certificate().Subject
	der, err := createCACSR(name, a.Signer())
	if err != nil {
		return err
	}
	kr, err := keys.NewService(nil, ck.kek, nil).Record(keys.Material{ID: caset.PendingKeyID, Kind: keys.KindCAPF, Chain: []*x509.Certificate{a.Certificate()}, Key: a.Signer()})
	if err != nil {
		return err
	}
	id := caset.PublicKeyID(a.Signer().Public())
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: caset.AuditCSR, Target: id,
		Detail: fmt.Sprintf("pending %s key for %s made for an outside CA to certify (capf ca install-signed), sealed in the database under KEK %s", alg, name, ck.kek.ID())}
	if err := st.AddPendingKey(ctx, kr, ev); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "pending key %s (%s) sealed in the database as %s; have the outside CA sign this request as a CA (basic constraints CA:TRUE, keyCertSign), then: capf ca install-signed CERT.pem [CHAIN.pem]\n", id, alg, caset.PendingKeyID)
	return pem.Encode(g.stdout, &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// caInstallSignedSealed is `capf ca install-signed` on a cluster with a
// KEK: the answer is checked against the pending key of the keys table and
// staged with that key, which leaves the pending row.
func (g *globals) caInstallSignedSealed(ctx context.Context, args []string) error {
	ck, err := g.clusterKeysOf(ctx)
	if err != nil {
		return err
	}
	pending, err := g.openPendingKey(ctx, ck)
	if err != nil {
		return err
	}
	leaf, more, err := readCertFiles(args...)
	if err != nil {
		return err
	}
	chain, err := caset.CheckImport(leaf, more, pending.Key.Public(), "the pending key", time.Now())
	if err != nil {
		return err
	}
	st, _, err := g.caMadeElsewhereStore(ctx, pending.Key.Public())
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := caset.KeyID(chain[0])
	if err != nil {
		return err
	}
	kr, err := keys.NewService(nil, ck.kek, nil).Record(keys.Material{ID: caKeyPrefix + id, Kind: keys.KindCAPF, Chain: chain, Key: pending.Key})
	if err != nil {
		return err
	}
	rec, err := caset.NewService(st, nil).StagePending(ctx, chain, &kr, caset.PendingKeyID, g.actor())
	if err != nil {
		return err
	}
	g.printStaged(rec, chain)
	return nil
}

// openPendingKey opens the pending key of the cluster's keys table.
func (g *globals) openPendingKey(ctx context.Context, ck *clusterKeys) (keys.Material, error) {
	st, err := g.openStore(ctx, readOnly)
	if err != nil {
		return keys.Material{}, err
	}
	defer st.Close()
	if _, ok, err := pendingKeyRecord(ctx, st); err != nil {
		return keys.Material{}, err
	} else if !ok {
		return keys.Material{}, fault.NotFoundf("no pending key: capf ca csr makes one and its certificate request")
	}
	ms, err := keys.NewService(st, ck.kek, nil).Load(ctx)
	if err != nil {
		return keys.Material{}, err
	}
	m, ok := ms[caset.PendingKeyID]
	if !ok || m.Key == nil {
		return keys.Material{}, fault.NotFoundf("no pending key: capf ca csr makes one and its certificate request")
	}
	return m, nil
}

// pendingKey is the offline CA's pending key as `capf ca status` shows it.
type pendingKey struct {
	ID      string // caset.PublicKeyID of the key
	Subject string // the subject its request asks for
	Where   string // where it waits
}

// pendingStatus returns the offline CA's pending key; nil when there is
// none.
func (g *globals) pendingStatus(ctx context.Context, st store.Store) (*pendingKey, error) {
	if g.keysInDB() {
		r, ok, err := pendingKeyRecord(ctx, st)
		if err != nil || !ok {
			return nil, err
		}
		c, err := x509.ParseCertificate(r.Chain)
		if err != nil {
			return nil, fault.Invalidf("the pending key's certificate does not parse: %v", err)
		}
		return &pendingKey{ID: caset.PublicKeyID(c.PublicKey), Subject: c.Subject.String(),
			Where: fmt.Sprintf("sealed in the database as %s since %s", caset.PendingKeyID, r.CreatedAt.UTC().Format(time.RFC3339))}, nil
	}
	a, err := ca.Load(ca.Options{Dir: g.pendingDir()})
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("the pending key in %s: %w", g.pendingDir(), err)
	}
	return &pendingKey{ID: caset.PublicKeyID(a.Signer().Public()), Subject: a.Certificate().Subject.String(), Where: "in " + g.pendingDir()}, nil
}

// caCSRDiscard discards the offline CA's pending key, audited as
// caset.AuditCSRDiscard: sealed in the keys table on a cluster with a
// KEK, DATA/ca/pending otherwise.
func (g *globals) caCSRDiscard(ctx context.Context) error {
	if !g.caSetShared() {
		return errCASetNotShared
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := g.pendingStatus(ctx, st)
	if err != nil {
		return err
	}
	if p == nil {
		return fault.NotFoundf("no pending key: capf ca csr makes one and its certificate request")
	}
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: caset.AuditCSRDiscard, Target: p.ID,
		Detail: fmt.Sprintf("pending key for %s discarded before it was certified (%s)", p.Subject, p.Where)}
	if g.keysInDB() {
		if err := st.DiscardPendingKey(ctx, caset.PendingKeyID, ev); err != nil {
			return err
		}
	} else {
		if err := st.AppendAudit(ctx, ev); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if err := os.RemoveAll(g.pendingDir()); err != nil {
			return fmt.Errorf("discard the pending key in %s: %w", g.pendingDir(), err)
		}
	}
	fmt.Fprintf(g.stdout, "discarded the pending key %s: capf ca csr makes another\n", p.ID)
	return nil
}
