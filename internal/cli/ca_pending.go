package cli

import (
	"context"
	"fmt"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
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

// caCSRDiscard discards the offline CA's pending key, audited as
// caset.AuditCSRDiscard: sealed in the keys table on a cluster with a
// KEK, DATA/ca/pending otherwise.
func (g *globals) caCSRDiscard(ctx context.Context) error {
	adm, st, err := g.caSetAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := adm.DiscardPending(ctx, g.actor())
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return errNoPendingKey
		}
		return err
	}
	fmt.Fprintf(g.stdout, "discarded the pending key %s: capf ca csr makes another\n", p.ID)
	return nil
}
