package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/capfd"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/system"
)

func init() { subcommands = append(subcommands, newMigrateFromCmd) }

// auditMigrateCapfd is the audit action of a migration from capfd.
const auditMigrateCapfd = "migrate.capfd"

// maxPEMFile bounds the --capf and --issuer files.
const maxPEMFile = 1 << 20

type migrateCapfdFlags struct {
	capf, issuer  string
	dryRun, force bool
}

func newMigrateFromCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate-from",
		Short: "Carry devices, LSCs and the CAPF certificate over from another CAPF (capfd); for CallManager's CAPF report CSV see: capf device import",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var f migrateCapfdFlags
	sub := &cobra.Command{
		Use:   "capfd DB.sqlite3 --capf CERT_AND_KEY.pem",
		Short: "Migrate from capfd, the Python CAPF daemon: its devices, pending operations, authentication settings and issued LSCs, and its CAPF certificate and key as this CAPF's",
		Long: `migrate-from capfd reads capfd's SQLite database (read-only: capfd may still run) and
its CAPF certificate and key (--capf, one PEM file), and makes them this installation's:
phones that trust capfd's CAPF certificate keep working without a new trust file, and
phones holding an LSC capfd issued authenticate with it (By Existing Certificate).

It prints what it mapped and every row it could not (with its number and name, and
why), and changes nothing for those rows. --dry-run prints the same and changes nothing.

The installation (--data, or --db with --kek-file for keys in PostgreSQL) is created when
it does not exist. A different CAPF certificate there is always refused: phones trust one
CAPF certificate, so merging two is not a migration (move the other aside if it was never
used). A device that exists already is refused too, unless --force: then its settings are
replaced by capfd's and its LSC is kept. Devices are imported in one transaction.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMigrateCapfd(cmd.Context(), g, args[0], f)
		},
	}
	sub.Flags().StringVar(&f.capf, "capf", "", "capfd's CAPF certificate and private key, PEM, in one file (required)")
	sub.Flags().StringVar(&f.issuer, "issuer", "", "capfd's separate issuing CA (PEM certificate; a key in the file is not used): its LSCs stay valid for authentication")
	sub.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would be migrated and change nothing")
	sub.Flags().BoolVar(&f.force, "force", false, "update devices that exist already with capfd's settings (their LSC is kept) instead of refusing")
	cmd.AddCommand(sub)
	return cmd
}

// migrationSource is what was read from capfd.
type migrationSource struct {
	cert          *x509.Certificate
	key           crypto.Signer
	issuers       []*x509.Certificate
	issuerHadKey  bool
	keyExposed    string // a warning when the --capf file was readable by others
	plan          capfd.Plan
	rows          int
	capfdDatabase string
}

// migrationTarget is what the installation holds that the migration meets.
type migrationTarget struct {
	exists     bool                // the database is there
	caState    string              // "none", "same" or "different"
	caCert     *x509.Certificate   // the installation's CAPF certificate, when there is one
	issuers    []*x509.Certificate // LSC issuers trusted already
	collisions []string            // devices that exist already
}

func runMigrateCapfd(ctx context.Context, g *globals, dbPath string, f migrateCapfdFlags) error {
	if f.capf == "" {
		return usagef("--capf is required: the file with capfd's CAPF certificate and private key (PEM)")
	}
	if err := store.Check(g.db); err != nil {
		return err
	}
	src, err := readCapfd(ctx, dbPath, f)
	if err != nil {
		return err
	}
	tgt, err := inspectTarget(ctx, g, src)
	if err != nil {
		return err
	}
	printMigrationReport(g.stdout, g, src, tgt, f)
	if tgt.caState == "different" {
		return fault.Conflictf("the installation has another CAPF certificate (%s, SHA-256 %X): phones trust one CAPF certificate, so nothing was changed; migrate into a new data directory (or database), or move %s aside if that certificate was never given to phones",
			tgt.caCert.Subject, sha256.Sum256(tgt.caCert.Raw), g.dir().CA())
	}
	if len(tgt.collisions) > 0 && !f.force {
		return fault.Conflictf("%d of capfd's devices exist already (%s): nothing was changed; --force updates them with capfd's settings (keeping their LSC)",
			len(tgt.collisions), firstNames(tgt.collisions, 5))
	}
	if f.dryRun {
		fmt.Fprintln(g.stdout, "dry run: nothing was changed")
		return nil
	}
	return applyMigration(ctx, g, src, tgt, f)
}

// readCapfd reads and maps everything the migration takes from capfd,
// before anything is written.
func readCapfd(ctx context.Context, dbPath string, f migrateCapfdFlags) (*migrationSource, error) {
	src := &migrationSource{capfdDatabase: dbPath}
	data, err := readBounded(f.capf, maxPEMFile)
	if err != nil {
		return nil, err
	}
	if src.cert, src.key, err = ca.ParsePEMPair(data); err != nil {
		return nil, fault.Invalidf("--capf %s: %v", f.capf, err)
	}
	if fi, err := os.Stat(f.capf); err == nil && fi.Mode().Perm()&0o077 != 0 {
		src.keyExposed = fmt.Sprintf("the --capf file %s (mode %04o) let group or others read capfd's CAPF key: if anyone else could read it, treat the key as copied and plan a new CAPF certificate", f.capf, fi.Mode().Perm())
	}
	if f.issuer != "" {
		data, err := readBounded(f.issuer, maxPEMFile)
		if err != nil {
			return nil, err
		}
		certs, err := ca.ParseCertificatesPEM(data)
		if err != nil {
			return nil, fault.Invalidf("--issuer %s: %v", f.issuer, err)
		}
		for _, c := range certs {
			if !c.IsCA {
				return nil, fault.Invalidf("--issuer %s: %s is not a CA certificate", f.issuer, c.Subject)
			}
			if !bytes.Equal(c.Raw, src.cert.Raw) {
				src.issuers = append(src.issuers, c)
			}
		}
		src.issuerHadKey = bytes.Contains(data, []byte("PRIVATE KEY-----"))
	}
	rows, err := capfd.Read(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	src.rows = len(rows)
	src.plan = capfd.Map(rows, capfd.Options{CAPF: src.cert, Issuers: src.issuers, Now: time.Now()})
	return src, nil
}

// inspectTarget looks, without changing anything, at the installation the
// migration goes into: its CAPF certificate and the devices that exist.
func inspectTarget(ctx context.Context, g *globals, src *migrationSource) (*migrationTarget, error) {
	tgt := &migrationTarget{caState: "none"}
	if err := store.Initialised(g.storeOptions(store.ReadOnly)); err == nil {
		st, err := g.openStore(ctx, readOnly)
		if err != nil {
			if !store.IsPostgres(g.db) {
				return nil, err
			}
			// A PostgreSQL database without the schema yet is new.
		} else {
			defer st.Close()
			tgt.exists = true
			for _, r := range src.plan.Rows {
				switch _, err := st.GetDevice(ctx, r.Device.Name); {
				case err == nil:
					tgt.collisions = append(tgt.collisions, r.Device.Name)
				case fault.KindOf(err) != fault.NotFound:
					return nil, fmt.Errorf("look up device %s: %w", r.Device.Name, err)
				}
			}
			if g.keysInDB() {
				if err := inspectClusterKeys(ctx, st, tgt); err != nil {
					return nil, err
				}
			}
		}
	}
	if !g.keysInDB() {
		a, err := ca.Load(ca.Options{Dir: g.dir().CA()})
		switch {
		case err == nil:
			tgt.caCert, tgt.issuers = a.Certificate(), a.LSCIssuers()
		case fault.KindOf(err) != fault.NotFound:
			return nil, fmt.Errorf("the installation's CAPF certificate: %w", err)
		}
	}
	if tgt.caCert != nil {
		tgt.caState = "different"
		if bytes.Equal(tgt.caCert.Raw, src.cert.Raw) {
			tgt.caState = "same"
		}
	}
	return tgt, nil
}

// inspectClusterKeys reads the CAPF certificate and LSC issuers of a
// cluster's keys (no KEK needed: certificates are not sealed).
func inspectClusterKeys(ctx context.Context, st keys.Store, tgt *migrationTarget) error {
	recs, err := st.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	for _, r := range recs {
		chain, err := x509.ParseCertificates(r.Chain)
		if err != nil || len(chain) == 0 {
			return fault.Invalidf("key %s: the certificate does not parse: %v", r.ID, err)
		}
		switch {
		case r.ID == keys.IDCAPF: // not the CA set's other keys (ca-ID, issuing-ID, ca-pending), also of kind capf
			tgt.caCert = chain[0]
		case r.Kind == keys.KindLSCIssuer:
			tgt.issuers = append(tgt.issuers, chain[0])
		}
	}
	if len(recs) > 0 && tgt.caCert == nil {
		return fault.Invalidf("the database's keys (%s) hold no CAPF key", recordIDs(recs))
	}
	return nil
}

// printMigrationReport says what the migration maps and what it cannot.
func printMigrationReport(w io.Writer, g *globals, src *migrationSource, tgt *migrationTarget, f migrateCapfdFlags) {
	p := src.plan
	fmt.Fprintf(w, "capfd database %s: %d devices\n", src.capfdDatabase, src.rows)
	fmt.Fprintf(w, "CAPF certificate: %s\n  SHA-256 %X, valid until %s\n", src.cert.Subject, sha256.Sum256(src.cert.Raw), src.cert.NotAfter.UTC().Format(time.RFC3339))
	switch tgt.caState {
	case "none":
		fmt.Fprintf(w, "  becomes this installation's CAPF certificate (%s): phones that trust it need no new trust file\n", caWhere(g))
	case "same":
		fmt.Fprintf(w, "  is this installation's CAPF certificate already (%s)\n", caWhere(g))
	default:
		fmt.Fprintf(w, "  REFUSED: the installation has another CAPF certificate: %s, SHA-256 %X\n", tgt.caCert.Subject, sha256.Sum256(tgt.caCert.Raw))
	}
	if src.keyExposed != "" {
		fmt.Fprintf(w, "  WARNING: %s\n", src.keyExposed)
	}
	if notes := capfd.DescribeCAPF(src.cert, time.Now()); len(notes) > 0 {
		fmt.Fprintln(w, "  taken as it is (phones trust it as it is); compared with a CAPF certificate of ours:")
		for _, n := range notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	for _, c := range src.issuers {
		fmt.Fprintf(w, "LSC issuer (--issuer): %s, SHA-256 %X\n", c.Subject, sha256.Sum256(c.Raw))
		fmt.Fprintln(w, "  trusted for LSC authentication, so phones holding an LSC it issued authenticate with it;")
		fmt.Fprintln(w, "  NEW LSCs are signed by the CAPF key above, not by this issuer (a separate issuing CA is not supported yet)")
	}
	if src.issuerHadKey {
		fmt.Fprintln(w, "  the --issuer file holds a private key: it is not imported or used")
	}
	fmt.Fprintf(w, "mapped: %d devices (%d with their LSC)\n", len(p.Rows), p.LSCs)
	for _, op := range []device.Operation{device.OpInstall, device.OpTroubleshoot, device.OpDelete, device.OpNone} {
		if n := p.Operations[op]; n > 0 {
			fmt.Fprintf(w, "  operation %-13s %d\n", op, n)
		}
	}
	for _, m := range []device.AuthMode{device.AuthString, device.AuthLSC, device.AuthNull} {
		if n := p.AuthModes[m]; n > 0 {
			fmt.Fprintf(w, "  auth mode %-13s %d\n", m, n)
		}
	}
	if len(tgt.collisions) > 0 {
		verb := "REFUSED (without --force)"
		if f.force {
			verb = "updated with capfd's settings, LSC kept (--force)"
		}
		fmt.Fprintf(w, "exist already: %d devices, %s: %s\n", len(tgt.collisions), verb, firstNames(tgt.collisions, 20))
	}
	fmt.Fprintf(w, "not mapped: %d rows\n", len(p.Skipped))
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  row %d %s: %s\n", s.N, s.Name, s.Reason)
	}
	if len(p.Notes) > 0 {
		fmt.Fprintf(w, "notes: %d\n", len(p.Notes))
		for _, n := range p.Notes {
			fmt.Fprintf(w, "  row %d %s: %s\n", n.N, n.Name, n.Text)
		}
	}
}

func caWhere(g *globals) string {
	if g.keysInDB() {
		return "the database, sealed under the KEK"
	}
	return g.dir().CA()
}

func firstNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(", … (%d more)", len(names)-n)
}

// applyMigration writes: the installation if it is new, the CAPF
// certificate and key (and LSC issuers), then every mapped device in one
// transaction, then the audit event that sums it up.
func applyMigration(ctx context.Context, g *globals, src *migrationSource, tgt *migrationTarget, f migrateCapfdFlags) error {
	if err := g.dir().Ensure(); err != nil {
		return err
	}
	if _, err := config.WriteIfMissing(g.dataDir, config.Defaults()); err != nil {
		return err
	}
	cfg, err := config.Load(g.dataDir)
	if err != nil {
		return err
	}
	if store.IsPostgres(g.db) {
		if _, err := store.Migrate(ctx, g.storeOptions(store.Create), false); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}
	st, err := store.Open(ctx, g.storeOptions(store.Create))
	if err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	defer st.Close()

	caHow, err := installCA(ctx, g, st, cfg, src, tgt)
	if err != nil {
		return err
	}

	if cfg, _, err = system.NewService(system.Options{DataDir: g.dataDir, Store: st}).Effective(ctx, cfg); err != nil {
		return err
	}
	svc := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec(cfg.DefaultKey)})
	rows := src.plan.Rows
	if f.force {
		for i := range rows {
			rows[i].MustCreate = false
		}
	}
	counts, err := svc.Import(ctx, g.actor(), rows)
	if err != nil {
		return fmt.Errorf("import capfd's devices (the CAPF certificate is in place; nothing else was changed, and running the migration again is safe): %w", err)
	}
	detail := fmt.Sprintf("from capfd database %s: %d devices created, %d updated, %d unchanged, %d with their LSC; %d rows not mapped; CAPF certificate %s (SHA-256 %X) %s; %d LSC issuers",
		src.capfdDatabase, counts.Created, counts.Updated, counts.Unchanged, src.plan.LSCs, len(src.plan.Skipped), src.cert.Subject, sha256.Sum256(src.cert.Raw), caHow, len(src.issuers))
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: auditMigrateCapfd, Target: "capfd", Detail: detail}
	if err := st.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("audit the migration (it is done): %w", err)
	}
	fmt.Fprintf(g.stdout, "migrated: %d devices created, %d updated, %d unchanged; CAPF certificate %s\n", counts.Created, counts.Updated, counts.Unchanged, caHow)
	fmt.Fprintf(g.stdout, "start the service with: capf --data %s serve\n", g.dataDir)
	return nil
}

// installCA makes capfd's CAPF certificate and key the installation's,
// with the LSC issuers, and says what it did.
func installCA(ctx context.Context, g *globals, st store.Store, cfg config.Config, src *migrationSource, tgt *migrationTarget) (string, error) {
	newIssuers := missingCerts(src.issuers, tgt.issuers)
	if !g.keysInDB() {
		how := "kept (it was in place)"
		if tgt.caState == "none" {
			if err := ca.Install(g.dir().CA(), src.cert, src.key); err != nil {
				return "", fmt.Errorf("install the CAPF certificate: %w", err)
			}
			how = "installed in " + g.dir().CA()
		}
		if len(newIssuers) > 0 {
			if err := ca.WriteLSCIssuers(g.dir().CA(), append(tgt.issuers, newIssuers...)); err != nil {
				return "", fmt.Errorf("keep the LSC issuers: %w", err)
			}
		}
		return how, nil
	}
	k, err := g.loadKEK()
	if err != nil {
		return "", err
	}
	have, err := st.ListKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("read keys: %w", err)
	}
	if len(have) > 0 {
		if tgt.caState != "same" {
			return "", fault.Conflictf("the database's keys changed since they were read: nothing was changed; run the migration again")
		}
		if len(newIssuers) > 0 {
			return "", fault.Conflictf("the database holds this cluster's keys already, and an LSC issuer cannot be added to them: nothing was changed; migrate into a new database")
		}
		return "kept (it was in the database)", nil
	}
	// A new cluster: the keys cluster init makes, with capfd's CAPF pair.
	ms, err := clusterMaterials(g, cfg, clusterInitFlags{}, false)
	if err != nil {
		return "", err
	}
	plain := make([]keys.Material, 0, len(ms)+len(newIssuers))
	for _, m := range ms {
		if m.ID == keys.IDCAPF {
			m.Chain, m.Key = []*x509.Certificate{src.cert}, src.key
		}
		plain = append(plain, m.Material)
	}
	for i, c := range newIssuers {
		plain = append(plain, keys.Material{ID: fmt.Sprintf("%s%d", keys.IDLSCIssuerPrefix, i+1), Kind: keys.KindLSCIssuer, Chain: []*x509.Certificate{c}})
	}
	if err := keys.NewService(st, k, nil).Init(ctx, plain, g.actor(), "cluster keys with the CAPF key migrated from capfd, sealed under "+k.ID()); err != nil {
		return "", err
	}
	return "stored in the database, sealed under the KEK " + k.ID() + " (new SAST signers and admin CA were made)", nil
}

// missingCerts returns the certificates of want that have does not hold.
func missingCerts(want, have []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range want {
		found := false
		for _, h := range have {
			found = found || bytes.Equal(c.Raw, h.Raw)
		}
		if !found {
			out = append(out, c)
		}
	}
	return out
}
