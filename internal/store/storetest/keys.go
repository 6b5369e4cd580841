package storetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
)

// KeysStore is what RunKeys tests: keys.Store, with the audit listing to
// see its events, and Close.
type KeysStore interface {
	keys.Store
	ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
	Close() error
}

// RunKeys runs the contract of keys.Store, and the keys.Service over it,
// against the stores open returns; open must return a new, empty store
// each time. RunKeys closes it when the subtest ends.
func RunKeys(t *testing.T, open func(t *testing.T) KeysStore) {
	t.Helper()
	fresh := func(t *testing.T) KeysStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	recs := func(kekID string) []keys.Record {
		return []keys.Record{
			{ID: "sast-primary", Kind: keys.KindSAST, Chain: []byte("chain p"), Sealed: []byte("sealed p"), KEKID: kekID, CreatedAt: at(time.Minute)},
			{ID: "capf", Kind: keys.KindCAPF, Chain: []byte("chain c\x00\xff"), Sealed: []byte("sealed c\x00"), KEKID: kekID, CreatedAt: t0},
			{ID: "admin-ca", Kind: keys.KindAdminCA, Chain: []byte("chain a"), Sealed: []byte("sealed a"), KEKID: kekID, CreatedAt: at(time.Hour)},
		}
	}
	ev := device.AuditEvent{At: t0, Actor: device.CLIActor("root"), Action: keys.ActionInit, Target: "keys", Detail: "test"}

	t.Run("empty", func(t *testing.T) {
		s := fresh(t)
		got, err := s.ListKeys(t.Context())
		if err != nil || len(got) != 0 {
			t.Fatalf("ListKeys of a new store = %v, %v; want none", got, err)
		}
	})
	t.Run("create-and-list", func(t *testing.T) {
		s := fresh(t)
		want := recs("kek-1")
		if err := s.CreateKeys(t.Context(), want, ev); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkKeys(t, got, []keys.Record{want[2], want[1], want[0]})
		if evs, err := s.ListAudit(t.Context(), device.AuditQuery{Target: "keys"}); err != nil || len(evs) != 1 || evs[0].Action != keys.ActionInit {
			t.Errorf("audit after CreateKeys: %+v, %v; want one %s", evs, err, keys.ActionInit)
		}
	})
	t.Run("create-refuses-a-store-with-keys", func(t *testing.T) {
		s := fresh(t)
		first := recs("kek-1")
		if err := s.CreateKeys(t.Context(), first[:1], ev); err != nil {
			t.Fatal(err)
		}
		err := s.CreateKeys(t.Context(), recs("kek-2")[1:], ev)
		if fault.KindOf(err) != fault.Conflict {
			t.Fatalf("CreateKeys into a store with keys: %v, want a Conflict", err)
		}
		got, _ := s.ListKeys(t.Context())
		checkKeys(t, got, first[:1])
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: "keys"}); len(evs) != 1 {
			t.Errorf("audit events after a refused CreateKeys: %d, want 1", len(evs))
		}
	})
	t.Run("create-same-id-twice-stores-nothing", func(t *testing.T) {
		s := fresh(t)
		r := recs("kek-1")
		err := s.CreateKeys(t.Context(), []keys.Record{r[0], r[1], r[0]}, ev)
		if fault.KindOf(err) != fault.Conflict {
			t.Fatalf("CreateKeys with an id twice: %v, want a Conflict", err)
		}
		if got, _ := s.ListKeys(t.Context()); len(got) != 0 {
			t.Errorf("keys after a refused CreateKeys: %d, want none", len(got))
		}
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: "keys"}); len(evs) != 0 {
			t.Errorf("audit events after a refused CreateKeys: %d, want none", len(evs))
		}
	})
	t.Run("create-race-one-wins", func(t *testing.T) {
		s := fresh(t)
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CreateKeys(t.Context(), recs("kek-"+string(rune('a'+i))), device.AuditEvent{})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case fault.KindOf(err) != fault.Conflict:
				t.Errorf("a losing CreateKeys: %v, want a Conflict", err)
			}
		}
		got, _ := s.ListKeys(t.Context())
		if won != 1 || len(got) != 3 || got[0].KEKID != got[1].KEKID || got[1].KEKID != got[2].KEKID {
			t.Errorf("%d of %d racing CreateKeys won, stored %+v; want one winner's three keys", won, n, got)
		}
	})
	t.Run("reseal", func(t *testing.T) {
		s := fresh(t)
		old := recs("kek-1")
		if err := s.CreateKeys(t.Context(), old, ev); err != nil {
			t.Fatal(err)
		}
		next := recs("kek-2")
		for i := range next {
			next[i].Sealed = append([]byte("new "), next[i].Sealed...)
		}
		rot := device.AuditEvent{At: at(time.Hour), Actor: device.CLIActor("root"), Action: keys.ActionRotate, Target: "keys"}
		bad := []struct {
			name string
			from string
			recs []keys.Record
		}{
			{"wrong-from", "kek-9", next},
			{"subset", "kek-1", next[:2]},
			{"unknown-id", "kek-1", append(next[:2:2], keys.Record{ID: "other", Sealed: []byte("x"), KEKID: "kek-2"})},
			{"id-twice", "kek-1", []keys.Record{next[0], next[1], next[0]}},
		}
		for _, b := range bad {
			if err := s.ResealKeys(t.Context(), b.from, b.recs, rot); fault.KindOf(err) != fault.Conflict {
				t.Errorf("ResealKeys %s: %v, want a Conflict", b.name, err)
			}
		}
		got, _ := s.ListKeys(t.Context())
		checkKeys(t, got, []keys.Record{old[2], old[1], old[0]})
		if err := s.ResealKeys(t.Context(), "kek-1", next, rot); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ListKeys(t.Context())
		checkKeys(t, got, []keys.Record{next[2], next[1], next[0]})
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: "keys"}); len(evs) != 2 || evs[0].Action != keys.ActionRotate {
			t.Errorf("audit after ResealKeys: %+v, want the rotation over the init", evs)
		}
	})
	t.Run("remove-private-key", func(t *testing.T) {
		s := fresh(t)
		old := recs("kek-1")
		if err := s.CreateKeys(t.Context(), old, ev); err != nil {
			t.Fatal(err)
		}
		rm := device.AuditEvent{At: at(time.Hour), Actor: device.CLIActor("root"), Action: keys.ActionRemovePrivate, Target: "keys", Detail: "sast-primary"}
		for _, b := range []struct {
			name, id string
			chain    []byte
			want     fault.Kind
		}{
			{"unknown-id", "sast-backup", old[0].Chain, fault.NotFound},
			{"another-chain", "sast-primary", []byte("chain of another key"), fault.Conflict},
		} {
			if err := s.RemovePrivateKey(t.Context(), b.id, b.chain, rm); fault.KindOf(err) != b.want {
				t.Errorf("RemovePrivateKey %s: %v, want %v", b.name, err, b.want)
			}
		}
		got, _ := s.ListKeys(t.Context())
		checkKeys(t, got, []keys.Record{old[2], old[1], old[0]})
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: "keys"}); len(evs) != 1 {
			t.Errorf("audit after refused removals: %+v, want the init alone", evs)
		}
		if err := s.RemovePrivateKey(t.Context(), "sast-primary", old[0].Chain, rm); err != nil {
			t.Fatal(err)
		}
		gone := old[0]
		gone.Sealed = nil
		got, _ = s.ListKeys(t.Context())
		checkKeys(t, got, []keys.Record{old[2], old[1], gone})
		if evs, _ := s.ListAudit(t.Context(), device.AuditQuery{Target: "keys"}); len(evs) != 2 || evs[0].Action != keys.ActionRemovePrivate {
			t.Errorf("audit after RemovePrivateKey: %+v, want the removal over the init", evs)
		}
		if err := s.RemovePrivateKey(t.Context(), "sast-primary", old[0].Chain, rm); fault.KindOf(err) != fault.Conflict {
			t.Errorf("RemovePrivateKey twice: %v, want a Conflict", err)
		}
		// A key without its private key is re-sealed with the others.
		next := recs("kek-2")
		next[0].Sealed = nil
		if err := s.ResealKeys(t.Context(), "kek-1", next, device.AuditEvent{At: at(2 * time.Hour), Actor: device.CLIActor("root"), Action: keys.ActionRotate, Target: "keys"}); err != nil {
			t.Fatalf("ResealKeys after a removal: %v", err)
		}
	})
	t.Run("service", func(t *testing.T) { runKeyService(t, fresh(t)) })
}

// checkKeys compares stored records with the ones written.
func checkKeys(t *testing.T, got, want []keys.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("ListKeys = %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Kind != w.Kind || !bytes.Equal(g.Chain, w.Chain) || !bytes.Equal(g.Sealed, w.Sealed) || g.KEKID != w.KEKID {
			t.Errorf("key %d = %+v, want %+v", i, g, w)
		}
		if d := diffTime("CreatedAt", g.CreatedAt, w.CreatedAt); d != "" {
			t.Errorf("key %s: %s", w.ID, d)
		}
	}
}

// runKeyService runs keys.Service and keys.Rotate over s: what is sealed
// opens under the same KEK only, and after a rotation only under the new.
func runKeyService(t *testing.T, s KeysStore) {
	ctx := t.Context()
	dir := t.TempDir()
	k1, err := kek.Generate(filepath.Join(dir, "kek1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := kek.Generate(filepath.Join(dir, "kek2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := keys.NewService(s, k1, nil)
	if _, err := svc.Load(ctx); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("Load of a store without keys: %v, want NotFound", err)
	}
	ms := []keys.Material{selfSigned(t, keys.IDCAPF, keys.KindCAPF), selfSigned(t, keys.IDSASTPrimary, keys.KindSAST)}
	if err := svc.Init(ctx, ms, device.CLIActor("root"), "test"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Init(ctx, ms, device.CLIActor("root"), "test"); fault.KindOf(err) != fault.Conflict {
		t.Fatalf("second Init: %v, want a Conflict", err)
	}
	checkLoad := func(svc *keys.Service) {
		t.Helper()
		got, err := svc.Load(ctx)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		for _, m := range ms {
			g, ok := got[m.ID]
			if !ok || !bytes.Equal(g.Leaf().Raw, m.Leaf().Raw) || !g.Key.Public().(*ecdsa.PublicKey).Equal(m.Key.Public()) || g.Kind != m.Kind {
				t.Errorf("loaded %s = %+v, want what was stored", m.ID, g)
			}
		}
	}
	checkLoad(svc)
	if _, err := keys.NewService(s, k2, nil).Load(ctx); !errors.Is(err, kek.ErrWrongKEK) {
		t.Fatalf("Load under another KEK: %v, want ErrWrongKEK", err)
	}
	if _, err := keys.Rotate(ctx, s, k2, k1, device.CLIActor("root"), t0); !errors.Is(err, kek.ErrWrongKEK) {
		t.Fatalf("Rotate from the wrong KEK: %v, want ErrWrongKEK", err)
	}
	if _, err := keys.Rotate(ctx, s, k1, k1, device.CLIActor("root"), t0); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("Rotate to the same KEK: %v, want Invalid", err)
	}
	if n, err := keys.Rotate(ctx, s, k1, k2, device.CLIActor("root"), t0); err != nil || n != len(ms) {
		t.Fatalf("Rotate = %d, %v; want %d", n, err, len(ms))
	}
	checkLoad(keys.NewService(s, k2, nil))
	if _, err := svc.Load(ctx); !errors.Is(err, kek.ErrWrongKEK) {
		t.Fatalf("Load under the old KEK after rotation: %v, want ErrWrongKEK", err)
	}
	_ = os.Remove(k1.Path())
}

// selfSigned returns a material with a new P-256 key and a self-signed
// certificate.
func selfSigned(t *testing.T, id string, kind keys.Kind) keys.Material {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: id}, NotBefore: t0, NotAfter: at(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keys.Material{ID: id, Kind: kind, Chain: []*x509.Certificate{c}, Key: k}
}
