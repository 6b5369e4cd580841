package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

// A CA's key reference is the id of its key in the keys table, whatever
// the node: "capf" for the CAPF certificate of before the set, "ca-ID" for
// each one capf ca regenerate made. A node that keeps its keys as files
// finds them at DATA/ca/capf.key and DATA/ca/ID/capf.key (caKeyDir), a
// cluster with a KEK in the keys table; so the set survives a restore
// from one backend into the other.
const caKeyPrefix = caset.CAKeyPrefix

// caKeyDir returns the directory under DATA/ca of the key named ref: "."
// for capf, ID for ca-ID, pending for ca-pending, issuing for issuing-ID.
func caKeyDir(ref string) (string, bool) {
	if ref == keys.IDCAPF {
		return ".", true
	}
	if ref == caset.PendingKeyID { // the offline CA's pending key
		return pendingCADir, true
	}
	if id, ok := strings.CutPrefix(ref, caset.IssuingKeyPrefix); ok { // the issuing CA: one at a time
		return issuingCADir, id != "" && strings.Trim(id, "0123456789abcdef") == ""
	}
	id, ok := strings.CutPrefix(ref, caKeyPrefix)
	if !ok || id == "" || strings.Trim(id, "0123456789abcdef") != "" {
		return "", false
	}
	return id, true
}

// trustFileCheck is how often the node holding the trust-file lease
// compares the trust file with what it should list: a CA staged, activated
// or retired is in the served trust file within it. A check reads one
// small file; it writes only when the records differ.
const trustFileCheck = 10 * time.Second

// caSetPoll is how often serve reads the CA set's change counter (on
// PostgreSQL a notification says so at once; the poll covers a lost one).
const caSetPoll = time.Second

// legacyKeyRef is the key reference of the CAPF certificate of before the
// set.
func (g *globals) legacyKeyRef() string { return keys.IDCAPF }

// caAuthority opens the key of rec: from ms (the cluster's keys) on a
// cluster with a KEK, else from its files under DATA/ca, and checks that
// it belongs to rec's certificate.
func (g *globals) caAuthority(ctx context.Context, rec caset.Record, cfg config.Config, ms map[string]keys.Material) (*ca.Authority, error) {
	a, err := g.caAuthorityKey(ctx, rec, cfg, ms)
	if err != nil {
		return nil, err
	}
	chain, err := x509.ParseCertificates(rec.Chain)
	if err != nil {
		return nil, fault.Invalidf("CA %s: the certificate chain does not parse: %v", rec.ID, err)
	}
	if err := a.SetChain(chain[1:]); err != nil { // a chain from an outside CA: TLS sends it
		return nil, fmt.Errorf("CA %s: %w", rec.ID, err)
	}
	return a, nil
}

// caAuthorityKey opens the key of rec and checks it against rec's leaf.
func (g *globals) caAuthorityKey(ctx context.Context, rec caset.Record, cfg config.Config, ms map[string]keys.Material) (*ca.Authority, error) {
	cert, err := rec.Certificate()
	if err != nil {
		return nil, err
	}
	opts := ca.Options{KeyAlgorithm: ca.KeyAlgorithm(cfg.CAKey), LSCValidity: days(cfg.CertificateValidityDays)}
	if isTokenKeyRef(rec.KeyRef) {
		return g.tokenAuthority(ctx, rec, cert, opts)
	}
	if g.keysInDB() {
		m, ok := ms[rec.KeyRef]
		if !ok || m.Key == nil {
			return nil, fault.NotFoundf("CA %s: its key %s is not among the database's keys", rec.ID, rec.KeyRef)
		}
		a, err := ca.New(cert, m.Key, opts)
		if err != nil {
			return nil, fmt.Errorf("CA %s: %w", rec.ID, err)
		}
		return a, nil
	}
	dir, ok := caKeyDir(rec.KeyRef)
	if !ok {
		return nil, fault.Invalidf("CA %s: unknown key reference %q", rec.ID, rec.KeyRef)
	}
	opts.Dir = filepath.Join(g.dir().CA(), dir)
	if id, ok := strings.CutPrefix(rec.KeyRef, caset.IssuingKeyPrefix); ok {
		opts.Dir = g.issuingKeyDir(id) // in place, or a former issuing CA
	}
	a, err := ca.Load(opts)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", rec.ID, err)
	}
	if !bytes.Equal(a.Certificate().Raw, cert.Raw) {
		return nil, fault.Invalidf("CA %s: %s holds another certificate than the CA set's (%s): restore the CA's files", rec.ID, opts.Dir, a.Certificate().Subject)
	}
	return a, nil
}

// caSetKeyFiles returns the keys of DATA/ca/ID/ (the CA set's keys other
// than the first), DATA/ca/pending (the offline CA's pending key, as
// ca-pending) and DATA/ca/issuing (the issuing CA, as issuing-ID), for
// cluster init --data and a restore into PostgreSQL.
func (g *globals) caSetKeyFiles(cfg config.Config) ([]keys.Material, error) {
	es, err := os.ReadDir(g.dir().CA())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", g.dir().CA(), err)
	}
	var out []keys.Material
	for _, e := range es {
		if _, ok := caKeyDir(caKeyPrefix + e.Name()); !ok || !e.IsDir() {
			continue
		}
		opts := g.caOptions(cfg)
		opts.Dir = filepath.Join(g.dir().CA(), e.Name())
		a, err := ca.Load(opts)
		if err != nil {
			return nil, fmt.Errorf("the CA set's key in %s: %w", opts.Dir, err)
		}
		out = append(out, keys.Material{ID: caKeyPrefix + e.Name(), Kind: keys.KindCAPF, Chain: []*x509.Certificate{a.Certificate()}, Key: a.Signer()})
	}
	// The issuing CA's key (DATA/ca/issuing) and the former issuing CAs'
	// (DATA/ca/issuing-ID), as issuing-ID. (The loop above took
	// DATA/ca/pending as ca-pending: see caKeyDir.)
	dirs := []string{g.issuingDir()}
	for _, e := range es {
		if id, ok := strings.CutPrefix(e.Name(), issuingCADir+"-"); ok && e.IsDir() && id != "" && strings.Trim(id, "0123456789abcdef") == "" {
			dirs = append(dirs, filepath.Join(g.dir().CA(), e.Name()))
		}
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		opts := g.caOptions(cfg)
		opts.Dir = dir
		a, err := ca.Load(opts)
		if fault.KindOf(err) == fault.NotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the issuing CA in %s: %w", opts.Dir, err)
		}
		id, err := caset.KeyID(a.Certificate())
		if err != nil {
			return nil, fmt.Errorf("the issuing CA in %s: %w", opts.Dir, err)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, keys.Material{ID: caset.IssuingKeyPrefix + id, Kind: keys.KindCAPF, Chain: []*x509.Certificate{a.Certificate()}, Key: a.Signer()})
		}
	}
	return out, nil
}

// openCAIssuers reads the CA set from st and opens the key of every CA
// that is not retired, reusing the authorities of have (the set in force)
// so that only a new CA's key is read. On a cluster with a KEK the keys
// are read again only then (another node may have staged a CA since this
// one started); a KEK rotated since this node started does not stop the
// CAs it has open.
func (g *globals) openCAIssuers(ctx context.Context, st caset.Store, ks keys.Store, cfg config.Config, have []caset.Issuer) ([]caset.Issuer, int64, error) {
	version, err := st.CASetVersion(ctx)
	if err != nil {
		return nil, 0, err
	}
	recs, err := st.ListCAs(ctx)
	if err != nil {
		return nil, 0, err
	}
	open := map[string]*ca.Authority{}
	for _, iss := range have {
		if iss.Authority != nil {
			open[iss.ID] = iss.Authority
		}
	}
	var ms map[string]keys.Material
	out := make([]caset.Issuer, 0, len(recs))
	for _, r := range recs {
		cert, err := r.Certificate()
		if err != nil {
			return nil, 0, err
		}
		iss := caset.Issuer{Record: r, Cert: cert}
		if r.State.Trusted() {
			if a := open[r.ID]; a != nil && a.Certificate().Equal(cert) {
				iss.Authority = a
			} else {
				if g.cluster != nil && ms == nil && !isTokenKeyRef(r.KeyRef) {
					k, err := g.cluster.currentKEK(ctx, ks)
					if err != nil {
						return nil, 0, err
					}
					if ms, err = keys.NewService(ks, k, nil).Load(ctx); err != nil {
						return nil, 0, err
					}
				}
				if iss.Authority, err = g.caAuthority(ctx, r, cfg, ms); err != nil {
					return nil, 0, err
				}
			}
		}
		if r.State == caset.Active && cfg.TLSProfile == "legacy" && cert.PublicKeyAlgorithm != x509.RSA {
			return nil, 0, fault.Invalidf("tls_profile legacy needs an RSA CAPF key: the active CA %s has a %s key", r.ID, cert.PublicKeyAlgorithm)
		}
		out = append(out, iss)
	}
	return out, version, nil
}

// openCASet reads the CA set and the issuing CA from st and opens their
// keys, reusing those of have and haveIssuing (in force), as
// openCAIssuers does.
func (g *globals) openCASet(ctx context.Context, st caset.Store, ks keys.Store, cfg config.Config, have []caset.Issuer, haveIssuing *ca.Authority) ([]caset.Issuer, *ca.Authority, int64, error) {
	issuers, version, err := g.openCAIssuers(ctx, st, ks, cfg, have)
	if err != nil {
		return nil, nil, 0, err
	}
	ms := func() (map[string]keys.Material, error) {
		if g.cluster == nil {
			return nil, fault.Invalidf("the issuing CA's key is in the database, but this node has no cluster keys")
		}
		k, err := g.cluster.currentKEK(ctx, ks)
		if err != nil {
			return nil, err
		}
		return keys.NewService(ks, k, nil).Load(ctx)
	}
	iss, err := g.openIssuing(ctx, st, ms, cfg, haveIssuing)
	if err != nil {
		return nil, nil, 0, err
	}
	return issuers, iss, version, nil
}

// openFormerIssuing returns the former issuing CAs of st, each with its
// key opened (from ms on a cluster with a KEK, DATA/ca/issuing-ID, or
// the token) to sign its LSCs' CRL, reusing those of have by their
// certificate. One whose key does not open is kept without it, with a
// warning: its LSCs still authenticate, its CRL is not renewed here.
func (g *globals) openFormerIssuing(ctx context.Context, st caset.Store, ks keys.Store, cfg config.Config, have []caset.Former, log *slog.Logger) ([]caset.Former, error) {
	recs, err := st.FormerIssuingCAs(ctx)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	var ms map[string]keys.Material
	out := make([]caset.Former, 0, len(recs))
next:
	for _, r := range recs {
		cert, err := r.Certificate()
		if err != nil {
			return nil, err
		}
		for _, h := range have {
			if h.Cert.Equal(cert) && h.Signer != nil {
				out = append(out, h)
				continue next
			}
		}
		if g.keysInDB() && !isTokenKeyRef(r.KeyRef) && ms == nil {
			if g.cluster == nil {
				return nil, fault.Invalidf("the former issuing CA's key is in the database, but this node has no cluster keys")
			}
			k, err := g.cluster.currentKEK(ctx, ks)
			if err != nil {
				return nil, err
			}
			if ms, err = keys.NewService(ks, k, nil).Load(ctx); err != nil {
				return nil, err
			}
		}
		a, err := g.caAuthorityKey(ctx, caset.Record{ID: r.ID, Chain: r.Chain, KeyRef: r.KeyRef}, cfg, ms)
		if err != nil {
			log.Warn("a former issuing CA's key does not open: its LSCs still authenticate, but this node does not sign their CRL", "issuing", r.ID, "err", err)
			out = append(out, caset.Former{Cert: cert})
			continue
		}
		out = append(out, caset.Former{Cert: cert, Signer: a.Signer()})
	}
	return out, nil
}

// caSetShared reports whether this node's CA set is the database's: on
// SQLite (one node) and on a cluster with a KEK (the keys are shared). A
// PostgreSQL node without a KEK keeps its own CAPF key as a file (ADR
// 0009), which other such nodes on the database do not have: it keeps
// its one CAPF certificate, outside the set.
func (g *globals) caSetShared() bool { return !store.IsPostgres(g.db) || g.keysInDB() }

// errCASetNotShared refuses the CA set's commands where the set is not the
// node's.
var errCASetNotShared = fault.Invalidf("the CA set lives with the cluster's keys: on PostgreSQL give the cluster's --kek-file (or %s; capf cluster init makes one); a node that keeps its own key files keeps its one CAPF certificate", kek.EnvFile)

// serveCASet adopts legacy (the CAPF certificate serve loaded or created)
// as the first active CA when the set is empty, then opens the set. Where
// the set is not shared (caSetShared), the set is legacy alone.
func (g *globals) serveCASet(ctx context.Context, st store.Store, legacy *ca.Authority, cfg config.Config, log *slog.Logger) (*caset.Set, error) {
	if !g.caSetShared() {
		id := mustKeyID(legacy.Certificate())
		return caset.NewSet(0, []caset.Issuer{{Record: caset.Record{ID: id, State: caset.Active, Chain: legacy.Certificate().Raw, KeyRef: keys.IDCAPF},
			Cert: legacy.Certificate(), Authority: legacy}}, legacy.LSCIssuers()...)
	}
	adopted, err := caset.NewService(st, nil).Adopt(ctx, legacy.Certificate(), g.legacyKeyRef(), serveActor)
	if err != nil {
		return nil, err
	}
	if adopted {
		log.Info("the CAPF certificate is the first active CA of the CA set (capf ca status)", "subject", legacy.Certificate().Subject.String())
	}
	// The CAPF certificate loaded already needs no second load.
	have := []caset.Issuer{{Record: caset.Record{ID: mustKeyID(legacy.Certificate())}, Authority: legacy}}
	if err := g.adoptIssuingDir(ctx, st); err != nil {
		return nil, err
	}
	issuers, issuing, version, err := g.openCASet(ctx, st, st, cfg, have, nil)
	if err != nil {
		return nil, fmt.Errorf("CA set: %w", err)
	}
	former, err := g.openFormerIssuing(ctx, st, st, cfg, nil, log)
	if err != nil {
		return nil, fmt.Errorf("CA set: %w", err)
	}
	issuing = issuingInForce(issuing, time.Now(), log) // one not valid now does not sign: the active CA does
	set, err := caset.NewSet(version, issuers, legacy.LSCIssuers()...)
	if err != nil {
		return nil, fmt.Errorf("CA set: %w", err)
	}
	if err := set.Update(version, issuers, issuing, former); err != nil {
		return nil, fmt.Errorf("CA set: %w", err)
	}
	if issuing != nil {
		logIssuing(set, issuing, log)
	}
	return set, nil
}

// watchCASet keeps set current until ctx ends: it reads the change
// counter every poll, and at once when watcher (nil on SQLite) hears of a
// change on the fleet channel. A set that does not open (a missing key
// file, say) is logged and the one in force stays.
func (g *globals) watchCASet(ctx context.Context, set *caset.Set, st store.Store, cfg config.Config, poll time.Duration, watcher fleetWatcher, log *slog.Logger) {
	if !g.caSetShared() {
		return
	}
	kick := make(chan struct{}, 1)
	if watcher != nil {
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watcher.WatchFleetParameters(ctx, func() {
				select {
				case kick <- struct{}{}:
				default:
				}
			}, log)
		}()
		defer func() { <-watched }()
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	failed := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		v, err := st.CASetVersion(ctx)
		if err != nil || v == set.Version() || v == failed {
			continue
		}
		before := issuingSigner(set)
		issuers, issuing, version, err := g.openCASet(ctx, st, st, cfg, set.Issuers(), set.Issuing())
		var former []caset.Former
		if err == nil {
			former, err = g.openFormerIssuing(ctx, st, st, cfg, set.Former(), log)
		}
		if err == nil {
			issuing = issuingInForce(issuing, time.Now(), log)
			err = set.Update(version, issuers, issuing, former)
		}
		if err != nil {
			if ctx.Err() == nil {
				failed = v
				log.Warn("the CA set changed but does not open; the CAs in force stay", "version", v, "err", err)
			}
			continue
		}
		active := set.Active().Certificate()
		id, _ := caset.KeyID(active)
		log.Info("CA set changed: TLS presents the active CA", "version", version, "active", id,
			"subject", active.Subject.String(), "trusted", len(set.Trusted()))
		if after := issuingSigner(set); after != before || (issuing != nil && after == nil) {
			logIssuing(set, issuing, log)
		}
	}
}

// mustKeyID is the CA id of c, or "" when it has no key identifier (then
// it matches no record and is loaded again).
func mustKeyID(c *x509.Certificate) string {
	id, _ := caset.KeyID(c)
	return id
}

// caSetRecords returns the CA set of the database; while it is empty (no
// serve adopted the CAPF certificate yet), the CAPF certificate of before
// the set stands for it as its active CA.
func (g *globals) caSetRecords(ctx context.Context, st caset.Store) ([]caset.Record, error) {
	recs, err := st.ListCAs(ctx)
	if err != nil || len(recs) > 0 {
		return recs, err
	}
	legacy, err := g.loadLegacyAuthority()
	if err != nil {
		return nil, err
	}
	id, err := caset.KeyID(legacy.Certificate())
	if err != nil {
		return nil, err
	}
	return []caset.Record{{ID: id, State: caset.Active, Chain: legacy.Certificate().Raw, KeyRef: g.legacyKeyRef()}}, nil
}

// adoptLegacy makes the CAPF certificate of before the set the first
// active CA of an empty set, as serve does at start.
func (g *globals) adoptLegacy(ctx context.Context, st caset.Store) error {
	recs, err := st.ListCAs(ctx)
	if err != nil || len(recs) > 0 {
		return err
	}
	legacy, err := g.loadLegacyAuthority()
	if err != nil {
		return err
	}
	_, err = caset.NewService(st, nil).Adopt(ctx, legacy.Certificate(), g.legacyKeyRef(), g.actor())
	return err
}

// trustedCAPFs returns the CAPF certificates trust files list: every CA
// of the set that is not retired, oldest first.
func (g *globals) trustedCAPFs(ctx context.Context) ([]*x509.Certificate, error) {
	st, err := g.openStore(ctx, readOnly)
	if !g.caSetShared() || (fault.KindOf(err) == fault.NotFound && !store.IsPostgres(g.db)) {
		if err == nil {
			st.Close()
		}
		legacy, err := g.loadLegacyAuthority() // no CA set here
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{legacy.Certificate()}, nil
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	recs, err := g.caSetRecords(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, r := range recs {
		if !r.State.Trusted() {
			continue
		}
		c, err := r.Certificate()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
