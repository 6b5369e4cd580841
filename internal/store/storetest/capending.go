package storetest

import (
	"testing"
	"time"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

// runCAPending checks the offline CA's pending key in caset.Store
// (AddPendingKey, StagePending): one at a time, and staged with its CA in
// one transaction that removes it; every refusal changes nothing.
func runCAPending(t *testing.T, open func(t *testing.T) CASetStore) {
	t.Helper()
	t.Run("pending-key", func(t *testing.T) {
		s := freshT(t, open)
		root, rootKey := issuingTestCA(t, "CAPF 1", nil, nil)
		signed, _ := issuingTestCA(t, "CAPF offline", root, rootKey)
		rid, err := caset.KeyID(root)
		must(t, err)
		sid, err := caset.KeyID(signed)
		must(t, err)
		ev := device.AuditEvent{At: t0, Actor: device.CLIActor("root"), Action: caset.AuditCSR, Target: "p", Detail: "test"}
		must(t, s.AddCA(t.Context(), caset.Record{ID: rid, State: caset.Active, Chain: root.Raw, KeyRef: "capf", CreatedAt: t0, ChangedAt: t0}, nil, ev))
		v0, err := s.CASetVersion(t.Context())
		must(t, err)
		pending := keys.Record{ID: caset.PendingKeyID, Kind: keys.KindCAPF, Chain: signed.Raw, Sealed: []byte("sealed-pending"), KEKID: "kek-1", CreatedAt: t0}
		keyIDs := func() string {
			t.Helper()
			ks, err := s.ListKeys(t.Context())
			must(t, err)
			out := ""
			for _, k := range ks {
				out += k.ID + " "
			}
			return out
		}
		rec := caset.Record{ID: sid, State: caset.Staged, Chain: signed.Raw, KeyRef: "ca-" + sid, CreatedAt: at(time.Hour), ChangedAt: at(time.Hour)}
		key := &keys.Record{ID: "ca-" + sid, Kind: keys.KindCAPF, Chain: signed.Raw, Sealed: []byte("sealed-ca"), KEKID: "kek-1", CreatedAt: t0}

		if err := s.AddPendingKey(t.Context(), keys.Record{ID: caset.PendingKeyID, Chain: signed.Raw}, ev); fault.KindOf(err) != fault.Invalid {
			t.Errorf("a pending key without its sealed key = %v, want Invalid", err)
		}
		if err := s.StagePending(t.Context(), rec, key, caset.PendingKeyID, ev); fault.KindOf(err) != fault.NotFound {
			t.Errorf("StagePending with no pending key = %v, want NotFound", err)
		}
		if got := keyIDs(); got != "" {
			t.Errorf("after refusals the keys are %q, want none", got)
		}
		must(t, s.AddPendingKey(t.Context(), pending, ev))
		if err := s.AddPendingKey(t.Context(), pending, ev); fault.KindOf(err) != fault.Conflict {
			t.Errorf("a second pending key = %v, want Conflict", err)
		}
		if v, _ := s.CASetVersion(t.Context()); v != v0 {
			t.Errorf("a pending key moved the set's version to %d, want %d: it is not a CA", v, v0)
		}
		// A CA in the set already: refused, the pending key stays.
		dup := rec
		dup.ID = rid
		if err := s.StagePending(t.Context(), dup, nil, caset.PendingKeyID, ev); fault.KindOf(err) != fault.Conflict {
			t.Errorf("StagePending of a CA in the set = %v, want Conflict", err)
		}
		if got := keyIDs(); got != caset.PendingKeyID+" " {
			t.Errorf("after a refused stage the keys are %q, want the pending key alone", got)
		}
		must(t, s.StagePending(t.Context(), rec, key, caset.PendingKeyID, ev))
		if got := keyIDs(); got != "ca-"+sid+" " {
			t.Errorf("after the stage the keys are %q, want the staged CA's alone", got)
		}
		recs, err := s.ListCAs(t.Context())
		must(t, err)
		if len(recs) != 2 || recs[1].ID != sid || recs[1].State != caset.Staged {
			t.Errorf("the set after the stage = %+v", recs)
		}
		if v, _ := s.CASetVersion(t.Context()); v != v0+1 {
			t.Errorf("version after the stage = %d, want %d", v, v0+1)
		}
		if err := s.StagePending(t.Context(), rec, key, caset.PendingKeyID, ev); fault.KindOf(err) != fault.NotFound {
			t.Errorf("a second stage of the pending key = %v, want NotFound", err)
		}
		// Discarded: only when there is one.
		if err := s.DiscardPendingKey(t.Context(), caset.PendingKeyID, ev); fault.KindOf(err) != fault.NotFound {
			t.Errorf("discard with no pending key = %v, want NotFound", err)
		}
		must(t, s.AddPendingKey(t.Context(), pending, ev))
		must(t, s.DiscardPendingKey(t.Context(), caset.PendingKeyID, ev))
		if got := keyIDs(); got != "ca-"+sid+" " {
			t.Errorf("after the discard the keys are %q, want the staged CA's alone", got)
		}
		evs, err := s.ListAudit(t.Context(), device.AuditQuery{})
		must(t, err)
		if len(evs) != 5 { // the AddCA, the pending key, the stage, the second pending key, the discard
			t.Errorf("%d audit events, want 5 (one per change made)", len(evs))
		}
	})
}
