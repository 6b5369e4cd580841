package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// servedTrust is what the file kept in trust_file_dir lists beyond this
// CAPF's own entries, and where its rewrites are audited.
type servedTrust struct {
	adds  []trust.Entry // trust_file_add, read at start
	audit trustfile.Auditor
	key   *keyref.Key // --sast-key: signs instead of the keystore's primary
	// keyFrom names where key came from in messages (--sast-key, or
	// sast_key of capf.json).
	keyFrom string
	// capfNow, when set, gives the CAPF certificates to list at each
	// check instead of those given at start: the CA set (ADR 0017).
	capfNow func() []*x509.Certificate
}

// listed returns the CAPF certificates listed now.
func (st servedTrust) listed(capfs []*x509.Certificate) []*x509.Certificate {
	if st.capfNow != nil {
		return st.capfNow()
	}
	return capfs
}

// serveActor is who rewrites the served trust file on its own.
var serveActor = device.Actor{Kind: device.ActorSystem, Name: "serve"}

// startTrustFile returns the trust-file service of serve (which the web
// UI shows) and, if trust_file_dir is set, writes trust_file_dir/
// ITLFile.tlv when it is missing or different, before the server accepts
// phones, and returns the check that keeps it current: serve runs it
// every trustFileCheck under the trust-file lease, so one node of a cluster at a
// time rewrites a shared directory (ADR 0010). Each rewrite is audited
// (trust.serve-rewrite, with the file's SHA-256) before the file is
// replaced; at start, a rewrite that cannot be audited stops serve. The
// returned job is nil when there is no trust_file_dir.
func startTrustFile(ctx context.Context, g *globals, cfg config.Config, capfs []*x509.Certificate, st servedTrust, log *slog.Logger) (svc *trustfile.Service, job func(context.Context) error, err error) {
	// Without a served file, the web UI only shows the signers: a page
	// view must not create them.
	svc = &trustfile.Service{Keystore: g.loadKeystore, CAPF: capfs, CAPFNow: st.capfNow, Adds: st.adds, Audit: st.audit}
	if st.key != nil {
		svc.Signer = func(ks *trust.Keystore) (trust.Signing, error) { return sastSigning(ks, st.key, st.keyFrom) }
	}
	dir := config.Resolve(g.dataDir, cfg.TrustFileDir)
	if dir == "" && st.key != nil {
		return nil, nil, fault.Invalidf("%s %s signs the trust file serve keeps in trust_file_dir, which is not set: set trust_file_dir, or leave out %s", st.keyFrom, st.key.Ref(), st.keyFrom)
	}
	if dir == "" {
		if len(cfg.TrustFileAdd) > 0 {
			log.Warn("trust_file_add ignored: trust_file_dir is empty, so serve keeps no trust file", "entries", len(cfg.TrustFileAdd))
		}
		return svc, nil, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, nil, fault.Invalidf("trust_file_dir %s: not a directory (create it, and let the TFTP/HTTP server serve it)", dir)
	}
	svc.Path, svc.Keystore = filepath.Join(dir, trustfile.ServedName), g.openKeystore
	rw, err := svc.Sync(ctx, serveActor, false)
	if err != nil {
		return nil, nil, fmt.Errorf("trust_file_dir: %w", err)
	}
	log.Info("trust file", "path", svc.Path, "rewritten", rw.Written, "records", 3+len(st.listed(capfs))+len(st.adds))
	return svc, func(ctx context.Context) error {
		rw, err := svc.Sync(ctx, serveActor, false)
		if err != nil {
			return fmt.Errorf("trust file %s not updated: %w", svc.Path, err)
		}
		if rw.Written {
			log.Info("trust file rewritten: its certificates changed", "path", svc.Path)
		}
		return nil
	}, nil
}

// loadKeystore opens the SAST identities without creating them (NotFound
// when there are none yet), for what only shows them.
func (g *globals) loadKeystore() (*trust.Keystore, error) {
	if g.keysInDB() {
		return g.clusterKeystore()
	}
	return trust.LoadKeystore(g.dir().Trust())
}
