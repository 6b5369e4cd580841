package keys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
)

// memStore is a keys.Store in memory; the backends are checked by
// store/storetest.
type memStore struct{ recs []keys.Record }

func (m *memStore) ListKeys(context.Context) ([]keys.Record, error) {
	return append([]keys.Record(nil), m.recs...), nil
}

func (m *memStore) CreateKeys(_ context.Context, recs []keys.Record, _ device.AuditEvent) error {
	if len(m.recs) > 0 {
		return fault.Conflictf("keys exist")
	}
	m.recs = append([]keys.Record(nil), recs...)
	return nil
}

func (m *memStore) ResealKeys(_ context.Context, from string, recs []keys.Record, _ device.AuditEvent) error {
	m.recs = append([]keys.Record(nil), recs...)
	return nil
}

func (m *memStore) RemovePrivateKey(_ context.Context, id string, chain []byte, _ device.AuditEvent) error {
	for i, r := range m.recs {
		if r.ID == id {
			if err := keys.CheckRemovable(id, r.Chain, r.Sealed, chain); err != nil {
				return err
			}
			m.recs[i].Sealed = nil
			return nil
		}
	}
	return fault.NotFoundf("no key %s", id)
}

func material(t *testing.T, id string) keys.Material {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: id}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return keys.Material{ID: id, Kind: keys.KindCAPF, Chain: []*x509.Certificate{c}, Key: k}
}

func newKEK(t *testing.T) *kek.KEK {
	t.Helper()
	k, err := kek.Generate(filepath.Join(t.TempDir(), "kek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestInitRefuses(t *testing.T) {
	a, b := material(t, "capf"), material(t, "sast-primary")
	mismatched := a
	mismatched.Key = b.Key
	noCert := a
	noCert.Chain = nil
	cases := []struct {
		name string
		ms   []keys.Material
		want string
	}{
		{"none", nil, "no keys"},
		{"key-of-another-certificate", []keys.Material{mismatched}, "does not match"},
		{"no-certificate", []keys.Material{noCert}, "certificate are all needed"},
		{"same-id-twice", []keys.Material{a, a}, "given twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &memStore{}
			err := keys.NewService(st, newKEK(t), nil).Init(t.Context(), c.ms, device.CLIActor("t"), "")
			if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), c.want) || len(st.recs) != 0 {
				t.Errorf("Init: %v (stored %d); want Invalid saying %q, nothing stored", err, len(st.recs), c.want)
			}
		})
	}
}

// TestLoadRefusesChangedRecords: a record whose sealed key was changed, or
// moved to another key's id, does not load; one sealed under another KEK
// is ErrWrongKEK.
func TestLoadRefusesChangedRecords(t *testing.T) {
	k := newKEK(t)
	st := &memStore{}
	svc := keys.NewService(st, k, nil)
	if err := svc.Init(t.Context(), []keys.Material{material(t, "capf"), material(t, "sast-primary")}, device.CLIActor("t"), ""); err != nil {
		t.Fatal(err)
	}
	good := append([]keys.Record(nil), st.recs...)
	cases := []struct {
		name     string
		change   func(rs []keys.Record)
		wrongKEK bool
	}{
		{"sealed-changed", func(rs []keys.Record) { rs[0].Sealed = append([]byte(nil), rs[0].Sealed...); rs[0].Sealed[20] ^= 1 }, false},
		{"swapped-ids", func(rs []keys.Record) { rs[0].Sealed, rs[1].Sealed = rs[1].Sealed, rs[0].Sealed }, false},
		{"other-kek-id", func(rs []keys.Record) { rs[1].KEKID = "kek-0000000000000000" }, true},
		{"chain-garbled", func(rs []keys.Record) { rs[0].Chain = []byte("not DER") }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st.recs = append([]keys.Record(nil), good...)
			c.change(st.recs)
			_, err := svc.Load(t.Context())
			if err == nil || errors.Is(err, kek.ErrWrongKEK) != c.wrongKEK || fault.KindOf(err) != fault.Invalid {
				t.Errorf("Load: %v; want Invalid, wrong KEK %v", err, c.wrongKEK)
			}
		})
	}
	st.recs = good
	ms, err := svc.Load(t.Context())
	if err != nil || len(ms) != 2 {
		t.Fatalf("Load of the unchanged records: %v", err)
	}
}
