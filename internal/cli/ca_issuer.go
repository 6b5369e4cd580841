package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/store"
)

// issuingCADir is the directory under DATA/ca of the issuing CA (ADR
// 0017, "A separate issuing CA"): its key and certificate, stored as every
// CA key is. serve reads it at start.
const issuingCADir = "issuing"

// issuingDir is the directory of the issuing CA.
func (g *globals) issuingDir() string { return filepath.Join(g.dir().CA(), issuingCADir) }

// errIssuerNeedsFiles refuses the issuing CA where the CA set's keys are
// not this node's files (not done yet: see ADR 0017).
var errIssuerNeedsFiles = fault.Invalidf("the issuing CA is kept as DATA/ca/issuing of a single node for now: on PostgreSQL it is not available yet (ADR 0017)")

// caIssuerCommands is `capf ca issuer`: a separate issuing CA below the
// CAPF certificate that signs the LSCs while TLS presents the CAPF
// certificate.
func caIssuerCommands(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "A separate issuing CA, below the CAPF certificate, that signs LSCs (serve takes it at its next start)",
	}
	var alg string
	var validDays int
	create := &cobra.Command{
		Use:   "create",
		Short: "Make an issuing CA key and certificate signed by the active CAPF certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.caIssuerCreate(cmd.Context(), alg, validDays)
		},
	}
	create.Flags().StringVar(&alg, "key-algorithm", "", "rsa2048, rsa3072, rsa4096, ec256 or ec384 (default: the capf_key parameter)")
	create.Flags().IntVar(&validDays, "validity-days", 0, "lifetime in days (default 730, never beyond the CAPF certificate)")
	imp := &cobra.Command{
		Use:   "import CERT.pem KEY.pem",
		Short: "Take an issuing CA certificate and key made elsewhere, signed by a CAPF certificate of the set",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.caIssuerImport(cmd.Context(), args[0], args[1])
		},
	}
	cmd.AddCommand(create, imp)
	return cmd
}

// issuerStore opens the store for an issuing CA command, after the checks
// they share: SQLite (the CA set's keys are this node's files), and no
// issuing CA in place yet.
func (g *globals) issuerStore(ctx context.Context) (store.Store, error) {
	if store.IsPostgres(g.db) || !g.caSetShared() {
		return nil, errIssuerNeedsFiles
	}
	if _, err := os.Stat(g.issuingDir()); !errors.Is(err, fs.ErrNotExist) {
		return nil, fault.Conflictf("an issuing CA is in place already (%s): nothing was changed; to replace it, stop serve and move that directory away", g.issuingDir())
	}
	return g.openStore(ctx, readWrite)
}

func (g *globals) caIssuerCreate(ctx context.Context, algFlag string, validDays int) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	alg := ca.KeyAlgorithm(cfg.CAKey)
	if algFlag != "" {
		if alg, err = ca.ParseKeyAlgorithm(algFlag); err != nil {
			return err
		}
	}
	if validDays < 0 {
		return usagef("--validity-days must be positive")
	}
	st, err := g.issuerStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	recs, err := g.caSetRecords(ctx, st)
	if err != nil {
		return err
	}
	var active caset.Record
	for _, r := range recs {
		if r.State == caset.Active {
			active = r
		}
	}
	if active.ID == "" {
		return fault.Invalidf("the CA set has no active CAPF certificate")
	}
	parent, err := g.caAuthority(ctx, active, cfg, nil)
	if err != nil {
		return err
	}
	iss, err := parent.NewIssuing(alg, days(validDays))
	if err != nil {
		return err
	}
	return g.installIssuer(ctx, st, iss, fmt.Sprintf("issuing CA (%s) made and signed by the active CAPF certificate %s", alg, active.ID))
}

func (g *globals) caIssuerImport(ctx context.Context, certFile, keyFile string) error {
	leaf, more, err := readCertFiles(certFile)
	if err != nil {
		return err
	}
	if len(more) > 0 {
		return fault.Invalidf("%s holds %d certificates: give the issuing CA certificate alone (the CAPF certificate above it is in the set)", certFile, len(more)+1)
	}
	keyPEM, err := readPEMFile(keyFile)
	if err != nil {
		return err
	}
	key, err := keyref.ParsePEM(keyPEM)
	if err != nil {
		return fault.Invalidf("%s: %v", keyFile, err)
	}
	capfs, err := g.trustedCAPFs(ctx)
	if err != nil {
		return err
	}
	parent, err := caset.CheckIssuing(leaf, key.Public(), "the key "+keyFile, capfs, time.Now())
	if err != nil {
		return err
	}
	st, err := g.issuerStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	iss, err := ca.New(leaf, key, ca.Options{})
	if err != nil {
		return err
	}
	pid, _ := caset.KeyID(parent)
	return g.installIssuer(ctx, st, iss, "issuing CA made elsewhere, signed by the CAPF certificate "+pid)
}

// installIssuer writes iss to DATA/ca/issuing and audits it; a write that
// is not audited is removed.
func (g *globals) installIssuer(ctx context.Context, st store.Store, iss *ca.Authority, detail string) error {
	cert := iss.Certificate()
	id, err := caset.KeyID(cert)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(cert.Raw)
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: caset.AuditIssuer, Target: id,
		Detail: fmt.Sprintf("%s: %s, serial %X, sha256 %X; serve signs new LSCs with it from its next start", detail, cert.Subject, cert.SerialNumber, sum)}
	if err := g.adoptLegacy(ctx, st); err != nil { // as every change of the set does, once all checks passed
		return err
	}
	if err := ca.Install(g.issuingDir(), cert, iss.Signer()); err != nil {
		return err
	}
	if err := st.AppendAudit(ctx, ev); err != nil {
		_ = os.RemoveAll(g.issuingDir()) // not audited: not kept
		return fmt.Errorf("audit: %w", err)
	}
	fmt.Fprintf(g.stdout, "issuing CA %s (%s, issued by %s)\n  SHA-256: %X\n  certificate: %s\n", id, cert.Subject, cert.Issuer, sum, filepath.Join(g.issuingDir(), ca.CertFile))
	fmt.Fprintf(g.stdout, "restart serve: it signs new LSCs with it while TLS keeps presenting the CAPF certificate\n")
	return nil
}

// serveIssuing puts the issuing CA of DATA/ca/issuing, when there is one,
// in force in set. One whose signer is not a CAPF certificate of the set
// that is not retired is logged and not used: the active CA signs.
func (g *globals) serveIssuing(set *caset.Set, log *slog.Logger) error {
	if _, err := os.Stat(g.issuingDir()); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if store.IsPostgres(g.db) || !g.caSetShared() {
		return errIssuerNeedsFiles
	}
	iss, err := ca.Load(ca.Options{Dir: g.issuingDir(), LSCValidity: set.Active().LSCValidity()})
	if err != nil {
		return fmt.Errorf("the issuing CA: %w", err)
	}
	if c, now := iss.Certificate(), time.Now(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fault.Invalidf("the issuing CA %s in %s is valid from %s to %s, not now: move that directory away (the active CAPF certificate then signs) and create or import another", c.Subject, g.issuingDir(),
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	signer := set.SetIssuing(iss)
	if !signer.Equal(iss.Certificate()) {
		log.Warn("the issuing CA was not signed by a CAPF certificate of the set that is not retired: the active CAPF certificate signs LSCs", "issuing", iss.Certificate().Subject.String(), "issuer", iss.Certificate().Issuer.String())
		return nil
	}
	log.Info("LSCs are signed by the issuing CA; TLS presents the CAPF certificate", "issuing", iss.Certificate().Subject.String(), "issuer", iss.Certificate().Issuer.String())
	return nil
}

// issuingSigner returns the issuing CA in force in set, for the
// CRL and OCSP of its LSCs; nil when the active CA signs.
func issuingSigner(set *caset.Set) *ca.Authority {
	if s := set.Signer(); s != set.Active() {
		return s
	}
	return nil
}

// issuingCert returns the certificate of the issuing CA in place; nil
// when there is none (or it does not load: serve then refuses to start,
// naming why).
func (g *globals) issuingCert() *x509.Certificate {
	if store.IsPostgres(g.db) {
		return nil
	}
	a, err := ca.Load(ca.Options{Dir: g.issuingDir()})
	if err != nil {
		return nil
	}
	return a.Certificate()
}
