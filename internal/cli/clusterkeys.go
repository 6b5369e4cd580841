package cli

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/trust"
)

// clusterKeys are a node's keys loaded from the database (ADR 0009).
type clusterKeys struct {
	// mu guards kek, which currentKEK replaces after a rotation.
	mu        sync.Mutex
	kek       *kek.KEK
	authority *ca.Authority
	sast      *trust.Keystore   // nil when the database holds no SAST signers
	adminCA   *x509.Certificate // nil when the database holds no admin CA
	adminKey  crypto.Signer
	// materials are every key the database held at load, by id: the
	// CA set's keys among them (ADR 0017).
	materials map[string]keys.Material
}

// currentKEK returns the KEK the database's keys are sealed under, for a
// key opened or sealed after the start (a CA staged, imported or made
// pending while the node serves): the one loaded at start, or, after
// `capf kek rotate`, this node's KEK file read again once the
// administrator has put the rotated KEK there. A file that does not hold
// it is an error naming both KEKs; the caller keeps what it has open.
func (ck *clusterKeys) currentKEK(ctx context.Context, st keys.Store) (*kek.KEK, error) {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	recs, err := st.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	if len(recs) == 0 || recs[0].KEKID == ck.kek.ID() {
		return ck.kek, nil
	}
	want := recs[0].KEKID
	k, err := kek.Load(ck.kek.Path())
	if err != nil {
		return nil, fmt.Errorf("the database's keys are sealed under KEK %s since a rotation, and this node's KEK file cannot be read again: %w", want, err)
	}
	if k.ID() != want {
		return nil, fault.Invalidf("the database's keys are sealed under KEK %s since a rotation, but this node's KEK file %s holds %s: copy the rotated KEK file to this node at the same path (or restart it with --kek-file NEW)", want, k.Path(), k.ID())
	}
	ck.kek = k
	return k, nil
}

// where names the database for messages.
const keysInDatabase = "the database"

// keysInDB reports whether the node's keys come from the database: a
// PostgreSQL --db and a --kek-file.
func (g *globals) keysInDB() bool { return g.kekFile != "" && store.IsPostgres(g.db) }

// loadKEK reads --kek-file; a KEK without a PostgreSQL --db is refused
// (SQLite nodes keep their keys as files).
func (g *globals) loadKEK() (*kek.KEK, error) {
	if g.kekFile == "" {
		return nil, usagef("no KEK file: pass --kek-file FILE or set %s", kek.EnvFile)
	}
	if !store.IsPostgres(g.db) {
		return nil, usagef("--kek-file (or %s) needs a PostgreSQL --db: a node on the SQLite database of its data directory keeps its keys as files there", kek.EnvFile)
	}
	return kek.Load(g.kekFile)
}

// loadClusterKeys opens the keys of st under k and assembles the CAPF
// authority (which must be there), the SAST keystore and the admin CA.
func loadClusterKeys(ctx context.Context, st keys.Store, k *kek.KEK, cfg config.Config) (*clusterKeys, error) {
	ms, err := keys.NewService(st, k, nil).Load(ctx)
	if err != nil {
		return nil, err
	}
	ck := &clusterKeys{kek: k, materials: ms}
	capf, ok := ms[keys.IDCAPF]
	if !ok {
		return nil, fault.NotFoundf("the database's keys (%v) hold no CAPF key: run capf cluster init on a new database", keys.IDs(ms))
	}
	opts := ca.Options{KeyAlgorithm: ca.KeyAlgorithm(cfg.CAKey), LSCValidity: days(cfg.CertificateValidityDays)}
	if ck.authority, err = ca.New(capf.Leaf(), capf.Key, opts); err != nil {
		return nil, fmt.Errorf("the CAPF key in the database: %w", err)
	}
	for _, id := range keys.IDs(ms) {
		if m := ms[id]; m.Kind == keys.KindLSCIssuer {
			ck.authority.TrustLSCIssuers(m.Leaf())
		}
	}
	if cfg.TLSProfile == "legacy" && capf.Leaf().PublicKeyAlgorithm != x509.RSA {
		return nil, fault.Invalidf("tls_profile legacy needs an RSA CAPF key: the cluster's CAPF certificate has a %s key", capf.Leaf().PublicKeyAlgorithm)
	}
	p, okP := ms[keys.IDSASTPrimary]
	b, okB := ms[keys.IDSASTBackup]
	switch {
	case okP && okB:
		ck.sast, err = trust.NewKeystore(keysInDatabase,
			trust.Identity{Cert: p.Leaf(), Key: p.Key}, trust.Identity{Cert: b.Leaf(), Key: b.Key})
		if err != nil {
			return nil, err
		}
	case okP || okB:
		return nil, fault.Invalidf("the database holds only one of the two SAST signers (%v): restore the other", keys.IDs(ms))
	}
	if a, ok := ms[keys.IDAdminCA]; ok {
		ck.adminCA, ck.adminKey = a.Leaf(), a.Key
	}
	return ck, nil
}

// clusterKeysOf returns the node's keys from the database, loading them
// on first use (for the admin commands that need them; serve loads them
// itself).
func (g *globals) clusterKeysOf(ctx context.Context) (*clusterKeys, error) {
	if g.cluster != nil {
		return g.cluster, nil
	}
	k, err := g.loadKEK()
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(g.dataDir)
	if err != nil {
		return nil, err
	}
	st, err := g.openStore(ctx, readOnly)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ck, err := loadClusterKeys(ctx, st, k, cfg)
	if err != nil {
		return nil, err
	}
	g.cluster = ck
	return ck, nil
}

// serveClusterKeys loads, for serve on PostgreSQL, the cluster's keys
// from st under k into g.cluster. Without a KEK the node keeps its keys as
// files, unless the database holds a cluster's keys: then the KEK is
// required (a node with keys of its own would present another CAPF
// certificate than the others).
func (g *globals) serveClusterKeys(ctx context.Context, st keys.Store, k *kek.KEK, cfg config.Config) error {
	if k == nil {
		have, err := st.ListKeys(ctx)
		if err != nil {
			return fmt.Errorf("read keys: %w", err)
		}
		if len(have) > 0 {
			return usagef("the database holds this cluster's keys (%s): give the cluster's KEK file with --kek-file or %s", recordIDs(have), kek.EnvFile)
		}
		return nil
	}
	ck, err := loadClusterKeys(ctx, st, k, cfg)
	if err != nil {
		return err
	}
	g.cluster = ck
	return nil
}

// refuseOwnKeysOnCluster refuses, on a PostgreSQL database that holds a
// cluster's keys, a command without the cluster's KEK that would use (or
// create) keys of the data directory: a node CA or SAST signer of its own
// would sign what the cluster's phones do not trust. It reads the
// database only when --db is PostgreSQL and no KEK is given.
func (g *globals) refuseOwnKeysOnCluster(ctx context.Context) error {
	if !store.IsPostgres(g.db) || g.kekFile != "" {
		return nil
	}
	st, err := store.Open(ctx, g.storeOptions(store.ReadOnly))
	if err != nil {
		return err
	}
	defer st.Close()
	return g.serveClusterKeys(ctx, st, nil, config.Config{})
}

// clusterAdminCertificate returns this node's admin certificate from the
// cluster's admin CA, issuing it into dir when needed.
func clusterAdminCertificate(dir string, ck *clusterKeys, hosts []string, log *slog.Logger) (admintls.Result, error) {
	res, err := admintls.IssueFrom(dir, ck.adminCA, ck.adminKey, hosts, time.Now())
	if err != nil {
		return admintls.Result{}, fmt.Errorf("admin TLS certificate: %w", err)
	}
	if res.Issued {
		leaf := res.Certificate.Leaf
		log.Info("issued the admin listener's certificate from the cluster's admin CA", "file", dir+"/"+admintls.CAFile,
			"dns", leaf.DNSNames, "ip", leaf.IPAddresses, "valid_until", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return res, nil
}

// clusterKeystore returns the SAST signers of the database, for the trust
// commands and serve's trust file on a cluster node.
func (g *globals) clusterKeystore() (*trust.Keystore, error) {
	ck, err := g.clusterKeysOf(context.Background())
	if err != nil {
		return nil, err
	}
	if ck.sast == nil {
		return nil, fault.NotFoundf("the database holds no SAST signers")
	}
	return ck.sast, nil
}
