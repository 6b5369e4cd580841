package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
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
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

// issuingCADir is the directory under DATA/ca of the issuing CA's key on
// a node that keeps its keys as files (ADR 0017, "A separate issuing
// CA"): its key and certificate, stored as every CA key is. The database
// holds its certificate (ca_issuing); a cluster with a KEK holds its key
// sealed in the keys table as issuing-ID instead.
const issuingCADir = "issuing"

// issuingDir is the directory of the issuing CA.
func (g *globals) issuingDir() string { return filepath.Join(g.dir().CA(), issuingCADir) }

// formerIssuingDir is the directory of the key files of the issuing CA id
// once taken out of place, DATA/ca/issuing-ID (a restore puts every
// issuing CA's key files there).
func (g *globals) formerIssuingDir(id string) string {
	return filepath.Join(g.dir().CA(), issuingCADir+"-"+id)
}

// issuingKeyDir is where the key files of the issuing CA id are:
// DATA/ca/issuing-ID when that holds them, else DATA/ca/issuing.
func (g *globals) issuingKeyDir(id string) string {
	if d := g.formerIssuingDir(id); fileExists(filepath.Join(d, ca.CertFile)) {
		return d
	}
	return g.issuingDir()
}

// caIssuerCommands is `capf ca issuer`: a separate issuing CA below the
// CAPF certificate that signs the LSCs while TLS presents the CAPF
// certificate.
func caIssuerCommands(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "A separate issuing CA, below the CAPF certificate, that signs LSCs (every node takes it within seconds)",
	}
	var alg, keyArg string
	var validDays int
	create := &cobra.Command{
		Use:   "create",
		Short: "Make an issuing CA key (or use --key pkcs11:… in a token) and certificate signed by the active CAPF certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyArg != "" {
				return g.caIssuerCreateToken(cmd.Context(), keyArg, alg, validDays)
			}
			return g.caIssuerCreate(cmd.Context(), alg, validDays)
		},
	}
	create.Flags().StringVar(&alg, "key-algorithm", "", "rsa2048, rsa3072, rsa4096, ec256 or ec384 (default: the capf_key parameter)")
	create.Flags().IntVar(&validDays, "validity-days", 0, "lifetime in days (default 730, never beyond the CAPF certificate)")
	create.Flags().StringVar(&keyArg, "key", "", "use this key pair kept in a PKCS #11 token, pkcs11:token=LABEL;object=NAME, instead of making a key (it never leaves the token)")
	p11Flags(create, &g.p11)
	imp := &cobra.Command{
		Use:   "import CERT.pem KEY.pem|pkcs11:token=LABEL;object=NAME",
		Short: "Take an issuing CA certificate and key (a PEM file, or a key pair in a PKCS #11 token) made elsewhere, signed by a CAPF certificate of the set",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isTokenKeyRef(args[1]) {
				return g.caIssuerImportToken(cmd.Context(), args[0], args[1])
			}
			if g.p11.Module != "" || g.p11.PINFile != "" {
				return usagef("--pkcs11-module and --pin-file go with a pkcs11: key reference, and %s is a file", args[1])
			}
			return g.caIssuerImport(cmd.Context(), args[0], args[1])
		},
	}
	p11Flags(imp, &g.p11)
	export := &cobra.Command{
		Use:   "export",
		Short: "Print the issuing CA's certificate (PEM): the intermediate that verifiers of LSCs need with the CAPF certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.caIssuerExport(cmd.Context())
		},
	}
	var force bool
	remove := &cobra.Command{
		Use:   "remove",
		Short: "Take the issuing CA out of place: every node signs new LSCs with the active CAPF certificate within seconds; it stays trusted for its LSCs (and signs their CRL) until capf ca issuer forget",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.caIssuerRemove(cmd.Context(), force)
		},
	}
	remove.Flags().BoolVar(&force, "force", false, "no longer needed: a removed issuing CA stays trusted for its LSCs (capf ca issuer forget drops it)")
	var forgetForce bool
	forget := &cobra.Command{
		Use:   "forget ID",
		Short: "Drop a former issuing CA: its LSCs no longer authenticate nor get its CRL and OCSP answers",
		Long: "Drop a former issuing CA (capf ca status lists them; ID is its id or a unique prefix of 8 hex digits or more):\n" +
			"every node stops trusting its LSCs and publishing its CRL within seconds, and its key is deleted. Refused while\n" +
			"phones hold a valid LSC from it, unless --force. Audited as ca.issuer.forget.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.caIssuerForget(cmd.Context(), args[0], forgetForce)
		},
	}
	forget.Flags().BoolVar(&forgetForce, "force", false, "forget it even while phones hold a valid LSC from it (they no longer authenticate with it)")
	cmd.AddCommand(create, imp, export, remove, forget)
	return cmd
}

// p11Flags adds --pkcs11-module and --pin-file, which open a key in a
// PKCS #11 token, to cmd, into o.
func p11Flags(cmd *cobra.Command, o *keyref.Options) {
	cmd.Flags().StringVar(&o.Module, "pkcs11-module", "", "the HSM vendor's PKCS #11 module (shared library) for a key in a token (the issuing CA's, or the active CAPF certificate's that signs it)")
	cmd.Flags().StringVar(&o.PINFile, "pin-file", "", "file holding the token's user PIN (mode 0600) for a key in a token")
}

// caIssuerRemove removes the issuing CA in place (refused while phones
// hold its LSCs, unless force), then its key files on a node that keeps
// its keys as files.
func (g *globals) caIssuerRemove(ctx context.Context, force bool) error {
	adm, st, err := g.issuerAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, n, err := adm.IssuerRemove(ctx, force, g.actor())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "removed the issuing CA %s: every running node signs new LSCs with the active CAPF certificate within seconds;\n", r.ID)
	fmt.Fprintf(g.stdout, "it stays trusted for the %d phones that hold a valid LSC from it, and signs their CRL, until capf ca issuer forget %s\n", n, r.ID)
	return nil
}

// caIssuerForget drops the former issuing CA id.
func (g *globals) caIssuerForget(ctx context.Context, id string, force bool) error {
	adm, st, err := g.issuerAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, n, err := adm.IssuerForget(ctx, id, force, g.actor())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "forgot the former issuing CA %s (%d phones held a valid LSC from it): every running node stops trusting its LSCs and publishing its CRL within seconds\n", r.ID, n)
	return nil
}

// caIssuerExport prints the certificate of the issuing CA in place.
func (g *globals) caIssuerExport(ctx context.Context) error {
	if !g.caSetShared() {
		return errCASetNotShared
	}
	st, err := g.openStore(ctx, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	_, c, ok, err := caset.NewService(st, nil).Issuing(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fault.NotFoundf("no issuing CA is in place: the active CAPF certificate signs LSCs (capf ca export)")
	}
	return pem.Encode(g.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// issuerAdmin opens the CA set's administration for an issuing CA
// command, once an issuing CA of DATA/ca/issuing from before it was data
// joined the database.
func (g *globals) issuerAdmin(ctx context.Context) (*caset.Admin, store.Store, error) {
	adm, st, err := g.caSetAdmin(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := g.adoptIssuingDir(ctx, st); err != nil {
		st.Close()
		return nil, nil, err
	}
	return adm, st, nil
}

func (g *globals) caIssuerCreate(ctx context.Context, algFlag string, validDays int) error {
	if algFlag != "" {
		if _, err := ca.ParseKeyAlgorithm(algFlag); err != nil {
			return err
		}
	}
	if validDays < 0 {
		return usagef("--validity-days must be positive")
	}
	adm, st, err := g.issuerAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, cert, err := adm.IssuerCreate(ctx, algFlag, days(validDays), g.actor())
	if err != nil {
		return err
	}
	g.printIssuer(r, cert)
	return nil
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
	adm, st, err := g.issuerAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, cert, err := adm.IssuerImport(ctx, []*x509.Certificate{leaf}, key, "the key "+keyFile, g.actor())
	if err != nil {
		return err
	}
	g.printIssuer(r, cert)
	return nil
}

// caIssuerImportToken puts in place the issuing CA of certFile whose key
// is ref's key pair in a PKCS #11 token: the key is opened (with
// --pkcs11-module and --pin-file) to check that the certificate is its
// own, and the issuing CA's record stores only the reference.
func (g *globals) caIssuerImportToken(ctx context.Context, certFile, keyArg string) error {
	ref, err := keyref.Parse(keyArg)
	if err != nil {
		return fmt.Errorf("the issuing CA key: %w", err)
	}
	leaf, more, err := readCertFiles(certFile)
	if err != nil {
		return err
	}
	if len(more) > 0 {
		return fault.Invalidf("%s holds %d certificates: give the issuing CA certificate alone (the CAPF certificate above it is in the set)", certFile, len(more)+1)
	}
	k, err := keyref.Load(ctx, ref, g.p11)
	if err != nil {
		return fmt.Errorf("the issuing CA key: %w", err)
	}
	defer k.Close()
	adm, st, err := g.issuerAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, cert, err := adm.IssuerImportRef(ctx, []*x509.Certificate{leaf}, k.Public(), ref.String(), "the key "+ref.String(), g.actor())
	if err != nil {
		return err
	}
	g.printIssuer(r, cert)
	return nil
}

// caIssuerCreateToken makes the issuing CA certificate of ref's key pair
// in a PKCS #11 token, signed by the active CAPF certificate, and puts it
// in place storing only the reference.
func (g *globals) caIssuerCreateToken(ctx context.Context, keyArg, algFlag string, validDays int) error {
	if algFlag != "" {
		return usagef("--key-algorithm makes a new key; --key uses the token's key pair as it is")
	}
	if validDays < 0 {
		return usagef("--validity-days must be positive")
	}
	ref, err := keyref.Parse(keyArg)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	if !ref.IsPKCS11() {
		return usagef("--key %s: want a key in a PKCS #11 token, pkcs11:token=LABEL;object=NAME (capf ca issuer import takes a key file with its certificate)", ref)
	}
	k, err := keyref.Load(ctx, ref, g.p11)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	defer k.Close()
	adm, st, err := g.issuerAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, cert, err := adm.IssuerCreateRef(ctx, k.Signer(), ref.String(), "--key "+ref.String(), days(validDays), g.actor())
	if err != nil {
		return err
	}
	g.printIssuer(r, cert)
	return nil
}

// printIssuer says which issuing CA is in place now, and where its key is.
func (g *globals) printIssuer(r caset.IssuingRecord, cert *x509.Certificate) {
	where := "certificate: " + filepath.Join(g.issuingDir(), ca.CertFile)
	if isTokenKeyRef(r.KeyRef) {
		where = "key: in a PKCS #11 token, " + r.KeyRef + " (serve needs --pkcs11-module and --pin-file for it)"
	} else if g.keysInDB() {
		where = "key: sealed in the database as " + r.KeyRef
		if g.cluster != nil {
			where += " (KEK " + g.cluster.kek.ID() + ")"
		}
	}
	sum := sha256.Sum256(cert.Raw)
	fmt.Fprintf(g.stdout, "issuing CA %s (%s, issued by %s)\n  SHA-256: %X\n  %s\n", r.ID, cert.Subject, cert.Issuer, sum, where)
	fmt.Fprintf(g.stdout, "every running node signs new LSCs with it within seconds, while TLS keeps presenting the CAPF certificate\n")
}

// adoptIssuingDir stores the issuing CA of DATA/ca/issuing as the
// database's when the database has none: the way an issuing CA put in
// place before it was data (serve read the directory at start) joins the
// database on the first start or issuer command after the upgrade.
// Nothing happens on a cluster with a KEK (its keys are not files) or
// without that directory.
func (g *globals) adoptIssuingDir(ctx context.Context, st store.Store) error {
	if g.keysInDB() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(g.issuingDir(), ca.CertFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, ok, err := st.IssuingCA(ctx); err != nil || ok {
		return err
	}
	iss, err := ca.Load(ca.Options{Dir: g.issuingDir()})
	if err != nil {
		return fmt.Errorf("the issuing CA in %s: %w", g.issuingDir(), err)
	}
	if err := g.adoptLegacy(ctx, st); err != nil {
		return err
	}
	recs, err := st.ListCAs(ctx)
	if err != nil {
		return err
	}
	cert := iss.Certificate()
	for _, r := range recs {
		p, err := r.Certificate()
		if err != nil {
			return err
		}
		if bytes.Equal(cert.RawIssuer, p.RawSubject) && cert.CheckSignatureFrom(p) == nil {
			id, err := caset.KeyID(cert)
			if err != nil {
				return err
			}
			_, err = caset.NewService(st, nil).PutIssuing(ctx, cert, p, caset.IssuingKeyPrefix+id, nil, g.actor(), "the issuing CA of "+g.issuingDir()+" became the database's")
			if fault.KindOf(err) == fault.Conflict {
				return nil // another process took it first
			}
			return err
		}
	}
	return fault.Invalidf("the issuing CA %s in %s was not signed by a CAPF certificate of the set (issued by %s): move that directory away", cert.Subject, g.issuingDir(), cert.Issuer)
}

// openIssuing opens the issuing CA st has in place (nil when none): its
// key from ms on a cluster with a KEK, else from DATA/ca/issuing, checked
// against the database's certificate. have (the issuing CA in force, or
// nil) is reused when it is the same certificate; the LSCs it signs get
// the validity of cfg.
func (g *globals) openIssuing(ctx context.Context, st caset.Store, ms func() (map[string]keys.Material, error), cfg config.Config, have *ca.Authority) (*ca.Authority, error) {
	r, ok, err := st.IssuingCA(ctx)
	if err != nil || !ok {
		return nil, err
	}
	cert, err := r.Certificate()
	if err != nil {
		return nil, err
	}
	if have != nil && have.Certificate().Equal(cert) {
		return have, nil
	}
	var m map[string]keys.Material
	if g.keysInDB() && !isTokenKeyRef(r.KeyRef) {
		if m, err = ms(); err != nil {
			return nil, err
		}
	}
	a, err := g.caAuthorityKey(ctx, caset.Record{ID: r.ID, Chain: r.Chain, KeyRef: r.KeyRef}, cfg, m)
	if err != nil {
		return nil, fmt.Errorf("the issuing %w", err)
	}
	return a, nil
}

// issuingInForce returns iss when it may sign now (valid at now), else
// nil with a warning: the active CAPF certificate then signs.
func issuingInForce(iss *ca.Authority, now time.Time, log *slog.Logger) *ca.Authority {
	if iss == nil {
		return nil
	}
	if c := iss.Certificate(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
		log.Warn("the issuing CA is not valid now: the active CAPF certificate signs new LSCs", "issuing", c.Subject.String(),
			"not_before", c.NotBefore.UTC().Format(time.RFC3339), "not_after", c.NotAfter.UTC().Format(time.RFC3339))
		return nil
	}
	return iss
}

// logIssuing says who signs new LSCs once the issuing CA iss (nil: none)
// was put in force in set.
func logIssuing(set *caset.Set, iss *ca.Authority, log *slog.Logger) {
	if iss == nil {
		if a := set.Active(); set.Signer() == a {
			log.Info("no issuing CA: the active CAPF certificate signs LSCs", "active", a.Certificate().Subject.String())
		}
		return
	}
	c := iss.Certificate()
	if set.Signer() != iss {
		log.Warn("the issuing CA was not signed by a CAPF certificate of the set that is not retired: the active CAPF certificate signs LSCs", "issuing", c.Subject.String(), "issuer", c.Issuer.String())
		return
	}
	log.Info("LSCs are signed by the issuing CA; TLS presents the CAPF certificate", "issuing", c.Subject.String(), "issuer", c.Issuer.String())
}

// issuingSigner returns the issuing CA in force in set, for the
// CRL and OCSP of its LSCs; nil when the active CA signs.
func issuingSigner(set *caset.Set) *ca.Authority {
	if s := set.Signer(); s != set.Active() {
		return s
	}
	return nil
}
