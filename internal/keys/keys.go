package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
)

// Kind says what a key is for.
type Kind string

// The kinds of keys.
const (
	KindCAPF    Kind = "capf"     // the CAPF key: TLS to phones, signs LSCs
	KindSAST    Kind = "sast"     // a trust-file (CTL/ITL) signer
	KindAdminCA Kind = "admin-ca" // the CA of the admin listener's certificate
	// KindLSCIssuer is a certificate without a key: another CAPF's issuing
	// CA whose LSCs phones may authenticate with (capf migrate-from).
	KindLSCIssuer Kind = "lsc-issuer"
)

// The ids of a cluster's keys. The id is the associated data of the
// sealed key, so a sealed key moved to another id does not open.
const (
	IDCAPF        = "capf"
	IDSASTPrimary = "sast-primary"
	IDSASTBackup  = "sast-backup"
	IDAdminCA     = "admin-ca"
	// IDLSCIssuerPrefix, followed by 1, 2, …, names the KindLSCIssuer
	// certificates.
	IDLSCIssuerPrefix = "lsc-issuer-"
)

// Record is one key as stored: its id, its kind, its certificate chain
// (DER certificates concatenated, leaf first, as x509.ParseCertificates
// reads them), its PKCS #8 private key sealed under the KEK, the id of
// that KEK, and when it was stored.
type Record struct {
	ID        string
	Kind      Kind
	Chain     []byte
	Sealed    []byte
	KEKID     string
	CreatedAt time.Time
}

// Store is what the keys need from a database. Both backends implement it
// (store/sqlite, store/postgres) and store/storetest checks the contract.
// No method takes a closure, so nothing runs twice on a retry.
type Store interface {
	// ListKeys returns every stored key, ordered by id; none is an empty
	// list, not an error.
	ListKeys(ctx context.Context) ([]Record, error)
	// CreateKeys stores recs and appends ev (when its Action is set) in
	// one transaction, but only into a store that holds no key at all:
	// otherwise it returns a Conflict error and stores nothing. Of two
	// nodes that race, one wins. Times are kept to the microsecond, in
	// UTC.
	CreateKeys(ctx context.Context, recs []Record, ev device.AuditEvent) error
	// ResealKeys replaces the sealed key and KEK id of every stored key by
	// those of recs (matched by id) and appends ev, in one transaction.
	// recs must name exactly the stored keys, each stored under the KEK id
	// from; otherwise it returns a Conflict error and changes nothing. A
	// record whose Sealed is empty (nil included) holds no private key.
	ResealKeys(ctx context.Context, from string, recs []Record, ev device.AuditEvent) error
	// RemovePrivateKey empties the sealed private key of the key id whose
	// chain is chain, keeping its certificate (a key that now lives
	// offline, as an exported SAST backup), and appends ev, in one
	// transaction. No key id is a NotFound error; a key with another chain
	// (it changed since the caller read it) or without a private key
	// already is a Conflict error; then nothing changes.
	RemovePrivateKey(ctx context.Context, id string, chain []byte, ev device.AuditEvent) error
}

// Material is a key in the clear: its certificate chain (leaf first) and
// private key. Key is nil for a key whose certificate alone is kept (the
// SAST backup, exported and removed to live offline).
type Material struct {
	ID        string
	Kind      Kind
	Chain     []*x509.Certificate
	Key       crypto.Signer
	CreatedAt time.Time
}

// Leaf returns the certificate of the key.
func (m Material) Leaf() *x509.Certificate { return m.Chain[0] }

// Service seals and opens the key material of a Store under a KEK.
type Service struct {
	store Store
	kek   *kek.KEK
	now   func() time.Time
}

// NewService returns a Service over st with the KEK k; now is the clock
// (time.Now when nil).
func NewService(st Store, k *kek.KEK, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, kek: k, now: now}
}

// Audit actions.
const (
	ActionInit   = "cluster.init"
	ActionRotate = "kek.rotate"
	// ActionRemovePrivate is a private key removed from the database
	// after its export (RemovePrivateKey).
	ActionRemovePrivate = "keys.remove-private"
)

// Init seals ms and stores them, if the store holds no key yet; a store
// that does gets a Conflict error that says so, and nothing changes.
// Every material needs an id, a kind, a certificate and a key that
// matches it.
func (s *Service) Init(ctx context.Context, ms []Material, actor device.Actor, detail string) error {
	if len(ms) == 0 {
		return fault.Invalidf("no keys to store")
	}
	now := s.now().UTC()
	recs := make([]Record, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		if m.ID == "" || m.Kind == "" || len(m.Chain) == 0 {
			return fault.Invalidf("key %q: id, kind and certificate are all needed", m.ID)
		}
		if seen[m.ID] {
			return fault.Invalidf("key %q given twice", m.ID)
		}
		seen[m.ID] = true
		sealed, err := s.seal(m)
		if err != nil {
			return err
		}
		var chain []byte
		for _, c := range m.Chain {
			chain = append(chain, c.Raw...)
		}
		created := m.CreatedAt
		if created.IsZero() {
			created = now
		}
		recs = append(recs, Record{ID: m.ID, Kind: m.Kind, Chain: chain, Sealed: sealed, KEKID: s.kek.ID(), CreatedAt: created})
	}
	ev := device.AuditEvent{At: now, Actor: actor, Action: ActionInit, Target: "keys", Detail: detail}
	if err := s.store.CreateKeys(ctx, recs, ev); err != nil {
		if fault.KindOf(err) == fault.Conflict {
			return fault.Conflictf("the database already holds this cluster's keys: nothing was changed (a node joins by starting capf serve with the same --db and --kek-file)")
		}
		return fmt.Errorf("store keys: %w", err)
	}
	return nil
}

// Record seals m under the service's KEK into the record a store keeps,
// for a key added to the cluster's after Init (a staged CA, ADR 0017).
func (s *Service) Record(m Material) (Record, error) {
	if m.ID == "" || m.Kind == "" || len(m.Chain) == 0 || m.Key == nil {
		return Record{}, fault.Invalidf("key %q: id, kind, certificate and key are all needed", m.ID)
	}
	sealed, err := s.seal(m)
	if err != nil {
		return Record{}, err
	}
	var chain []byte
	for _, c := range m.Chain {
		chain = append(chain, c.Raw...)
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = s.now().UTC()
	}
	return Record{ID: m.ID, Kind: m.Kind, Chain: chain, Sealed: sealed, KEKID: s.kek.ID(), CreatedAt: created}, nil
}

// seal returns the sealed private key of m, or an empty one when m has no
// private key (a SAST backup kept offline).
func (s *Service) seal(m Material) ([]byte, error) {
	if m.Key == nil {
		return []byte{}, nil
	}
	if err := matches(m.Key, m.Chain[0]); err != nil {
		return nil, fmt.Errorf("key %s: %w", m.ID, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(m.Key)
	if err != nil {
		return nil, fmt.Errorf("key %s: encode: %w", m.ID, err)
	}
	defer clear(der)
	return s.kek.Seal(m.ID, der)
}

// Load opens every stored key. A store without keys is a NotFound error
// that says to run `capf cluster init`; a key sealed under another KEK is
// an error matching kek.ErrWrongKEK, found before any key is opened.
func (s *Service) Load(ctx context.Context) (map[string]Material, error) {
	recs, err := s.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	if len(recs) == 0 {
		return nil, fault.NotFoundf("the database holds no keys: run `capf cluster init --db DSN --kek-file %s` once, on the first node", s.kek.Path())
	}
	for _, r := range recs {
		if r.KEKID != s.kek.ID() {
			_, err := s.kek.Open(r.ID, r.KEKID, r.Sealed)
			return nil, err
		}
	}
	out := make(map[string]Material, len(recs))
	for _, r := range recs {
		m, err := s.open(r)
		if err != nil {
			return nil, err
		}
		out[m.ID] = m
	}
	return out, nil
}

// open opens one record and checks its key against its certificate. A
// record without a sealed key (kept offline) gives a material without one.
func (s *Service) open(r Record) (Material, error) {
	chain, err := x509.ParseCertificates(r.Chain)
	if err != nil || len(chain) == 0 {
		return Material{}, fault.Invalidf("key %s: the certificate chain does not parse: %v", r.ID, err)
	}
	if len(r.Sealed) == 0 {
		return Material{ID: r.ID, Kind: r.Kind, Chain: chain, CreatedAt: r.CreatedAt}, nil
	}
	der, err := s.kek.Open(r.ID, r.KEKID, r.Sealed)
	if err != nil {
		return Material{}, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Material{}, fault.Invalidf("key %s: the sealed private key does not parse: %v", r.ID, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return Material{}, fault.Invalidf("key %s: a %T cannot sign", r.ID, k)
	}
	if err := matches(signer, chain[0]); err != nil {
		return Material{}, fmt.Errorf("key %s: %w", r.ID, err)
	}
	return Material{ID: r.ID, Kind: r.Kind, Chain: chain, Key: signer, CreatedAt: r.CreatedAt}, nil
}

// Rotate re-seals every key of st, sealed under old, under next, in one
// transaction; afterwards old opens none of them. It returns how many keys
// it re-sealed. A key not sealed under old is an error and changes
// nothing.
func Rotate(ctx context.Context, st Store, old, next *kek.KEK, actor device.Actor, now time.Time) (int, error) {
	if old.ID() == next.ID() {
		return 0, fault.Invalidf("the new KEK file %s holds the same key as %s: generate a new one (capf kek rotate --new-kek)", next.Path(), old.Path())
	}
	recs, err := st.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("read keys: %w", err)
	}
	if len(recs) == 0 {
		return 0, fault.NotFoundf("the database holds no keys to re-seal: run capf cluster init first")
	}
	out := make([]Record, len(recs))
	for i, r := range recs {
		if r.KEKID != old.ID() {
			_, err := old.Open(r.ID, r.KEKID, r.Sealed)
			return 0, err
		}
		if len(r.Sealed) == 0 { // no private key in the database
			r.KEKID = next.ID()
			out[i] = r
			continue
		}
		pt, err := old.Open(r.ID, r.KEKID, r.Sealed)
		if err != nil {
			return 0, err
		}
		sealed, err := next.Seal(r.ID, pt)
		clear(pt)
		if err != nil {
			return 0, err
		}
		r.Sealed, r.KEKID = sealed, next.ID()
		out[i] = r
	}
	ev := device.AuditEvent{At: now.UTC(), Actor: actor, Action: ActionRotate, Target: "keys",
		Detail: fmt.Sprintf("re-sealed %d keys from %s to %s", len(out), old.ID(), next.ID())}
	if err := st.ResealKeys(ctx, old.ID(), out, ev); err != nil {
		return 0, fmt.Errorf("re-seal keys: %w", err)
	}
	return len(out), nil
}

// IDs returns the ids of ms, sorted.
func IDs(ms map[string]Material) []string {
	ids := make([]string, 0, len(ms))
	for id := range ms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// matches checks that key is the private key of cert.
func matches(key crypto.Signer, cert *x509.Certificate) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return fault.Invalidf("the private key does not match the certificate %s", cert.Subject)
	}
	return nil
}

// CheckRemovable is the rule of Store.RemovePrivateKey for the key id as
// stored (its chain have and sealed key): its chain must be chain, and it
// must still hold a private key. The backends call it inside their
// transaction.
func CheckRemovable(id string, have, sealed, chain []byte) error {
	if !bytes.Equal(have, chain) {
		return fault.Conflictf("key %s changed since it was read: export it again", id)
	}
	if len(sealed) == 0 {
		return fault.Conflictf("key %s holds no private key in the database: it was removed already", id)
	}
	return nil
}
