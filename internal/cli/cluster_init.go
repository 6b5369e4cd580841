package cli

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/trust"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterInitCmd) }

type clusterInitFlags struct {
	newKEK     bool
	capfKey    string
	adminHosts []string
}

func newClusterInitCmd(g *globals) *cobra.Command {
	var f clusterInitFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Store a new cluster's keys (CAPF, SAST signers, admin CA) in the PostgreSQL --db, sealed under --kek-file; with --data, import that data directory's keys",
		Long: `cluster init runs once, on the first node of a cluster. It creates the CAPF key and
certificate, the two SAST trust-file signers and the admin CA, or, when --data is given,
imports the existing ones of that data directory (so that phones that trust its CAPF
certificate keep trusting it), and stores them in the PostgreSQL database --db with each
private key sealed under the key-encryption key in --kek-file (AES-256-GCM). --new-kek
writes a new KEK file there first (mode 0600). A database that holds keys already is
refused and left as it is. Every node then starts with: capf serve --db DSN --kek-file FILE`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runClusterInit(cmd.Context(), g, f, cmd.Flags().Changed("data"))
		},
	}
	cmd.Flags().BoolVar(&f.newKEK, "new-kek", false, "write a new key-encryption key to --kek-file (mode 0600; an existing file is never replaced)")
	cmd.Flags().StringVar(&f.capfKey, "capf-key", "", "key algorithm of a new CAPF key: "+strings.Join(config.CAPFKeys, ", ")+" (default: capf_key of capf.json, rsa2048)")
	cmd.Flags().StringSliceVar(&f.adminHosts, "admin-host", nil, "a host name or address of a node's admin listener that the new admin CA may issue for (repeat, or comma-separated; this host, localhost and loopback are always in); with --data, a new admin CA is made instead of importing that directory's")
	return cmd
}

// clusterMaterial is a key to store and where it came from.
type clusterMaterial struct {
	keys.Material
	source string
}

func runClusterInit(ctx context.Context, g *globals, f clusterInitFlags, importData bool) error {
	if !store.IsPostgres(g.db) {
		if err := store.Check(g.db); err != nil {
			return err
		}
		return usagef("cluster init needs a PostgreSQL --db (or %s): a node on the SQLite database of its data directory keeps its keys as files there", store.EnvDB)
	}
	if g.kekFile == "" {
		return usagef("no KEK file: pass --kek-file FILE (with --new-kek to create it) or set %s", kek.EnvFile)
	}
	cfg := config.Defaults()
	if importData {
		var err error
		if cfg, err = config.Load(g.dataDir); err != nil {
			return err
		}
	}
	if f.capfKey != "" {
		if _, err := ca.ParseKeyAlgorithm(f.capfKey); err != nil {
			return err
		}
		cfg.CAKey = strings.ToLower(strings.TrimSpace(f.capfKey))
	}
	var k *kek.KEK
	if !f.newKEK {
		var err error
		if k, err = kek.Load(g.kekFile); err != nil {
			return err
		}
	}
	// The keys to store, before anything is written: an import that
	// fails (a key file of the wrong mode, a key that does not match)
	// changes nothing.
	ms, err := clusterMaterials(g, cfg, f, importData)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, g.storeOptions(store.ReadWrite))
	if err != nil {
		return err
	}
	defer st.Close()
	if have, err := st.ListKeys(ctx); err != nil {
		return fmt.Errorf("read keys: %w", err)
	} else if len(have) > 0 {
		return fault.Conflictf("the database %s already holds this cluster's keys (%s, sealed under %s): nothing was changed; a node joins with capf serve --db DSN --kek-file FILE",
			store.Describe(g.storeOptions(store.ReadWrite)), recordIDs(have), have[0].KEKID)
	}
	if f.newKEK {
		if k, err = kek.Generate(g.kekFile, nil); err != nil {
			return err
		}
	}
	plain := make([]keys.Material, len(ms))
	for i, m := range ms {
		plain[i] = m.Material
	}
	how := "generated"
	if importData {
		how = "imported from " + g.dataDir
	}
	if err := keys.NewService(st, k, nil).Init(ctx, plain, g.actor(), fmt.Sprintf("cluster keys %s, sealed under %s", how, k.ID())); err != nil {
		if f.newKEK {
			_ = os.Remove(g.kekFile) // it sealed nothing
		}
		return err
	}
	w := g.stdout
	fmt.Fprintf(w, "cluster keys stored in %s, sealed under the KEK %s (%s):\n", store.Describe(g.storeOptions(store.ReadWrite)), k.Path(), k.ID())
	for _, m := range ms {
		sum := sha256.Sum256(m.Leaf().Raw)
		fmt.Fprintf(w, "  %-13s %s: %s\n", m.ID, m.source, m.Leaf().Subject)
		fmt.Fprintf(w, "  %-13s SHA-256 %X\n", "", sum)
	}
	if f.newKEK {
		fmt.Fprintf(w, "the KEK was written to %s (mode 0600): copy it to every node over a secure channel and keep a copy offline; without it the keys cannot be opened\n", k.Path())
	}
	fmt.Fprintf(w, "start every node with: capf serve --db DSN --kek-file %s\n", k.Path())
	return nil
}

// clusterMaterials generates the cluster's keys, or, with importData,
// reads those of the data directory (its CAPF certificate must be there;
// missing SAST signers or admin CA are generated).
func clusterMaterials(g *globals, cfg config.Config, f clusterInitFlags, importData bool) ([]clusterMaterial, error) {
	now := time.Now()
	var out []clusterMaterial
	add := func(id string, kind keys.Kind, leaf certAndKey, source string) {
		out = append(out, clusterMaterial{Material: keys.Material{ID: id, Kind: kind, Chain: leaf.chain(), Key: leaf.key}, source: source})
	}
	// CAPF.
	var a *ca.Authority
	var err error
	if importData {
		if a, err = ca.Load(g.caOptions(cfg)); err != nil {
			if fault.KindOf(err) == fault.NotFound {
				return nil, fault.NotFoundf("no CAPF certificate to import in %s: give the data directory of the node whose phones are to keep trusting it, or leave --data out to create new keys", g.dir().CA())
			}
			return nil, fmt.Errorf("import the CAPF key: %w", err)
		}
		add(keys.IDCAPF, keys.KindCAPF, certAndKey{a.Certificate(), a.Signer()}, "imported from "+g.dir().CA())
		// The CA set's other keys (capf ca regenerate, ADR 0017).
		staged, err := g.caSetKeyFiles(cfg)
		if err != nil {
			return nil, err
		}
		for _, m := range staged {
			add(m.ID, keys.KindCAPF, certAndKey{m.Leaf(), m.Key}, "imported from "+g.dir().CA())
		}
	} else {
		if a, err = ca.Generate(ca.Options{KeyAlgorithm: ca.KeyAlgorithm(cfg.CAKey), Now: func() time.Time { return now }}); err != nil {
			return nil, err
		}
		add(keys.IDCAPF, keys.KindCAPF, certAndKey{a.Certificate(), a.Signer()}, "created ("+cfg.CAKey+")")
	}
	// SAST signers.
	var ks *trust.Keystore
	source := "created"
	if importData {
		ks, err = trust.LoadKeystore(g.dir().Trust())
		switch {
		case err == nil:
			source = "imported from " + ks.Dir
		case fault.KindOf(err) != fault.NotFound:
			return nil, fmt.Errorf("import the SAST signers: %w", err)
		}
	}
	if ks == nil {
		if ks, err = trust.GenerateKeystore(trust.KeystoreOptions{Now: func() time.Time { return now }}); err != nil {
			return nil, err
		}
	}
	for _, id := range []struct {
		id string
		i  trust.Identity
	}{{keys.IDSASTPrimary, ks.Primary}, {keys.IDSASTBackup, ks.Backup}} {
		src := source
		if id.i.Key == nil {
			src += " (certificate only: the key is offline)"
		}
		var ck certAndKey
		ck.cert, ck.key = id.i.Cert, id.i.Key
		add(id.id, keys.KindSAST, ck, src)
	}
	// Admin CA.
	source = "created"
	var adm certAndKey
	if importData && len(f.adminHosts) > 0 {
		// The data directory's CA covers that node's names only.
		source = "created for --admin-host (the data directory's admin CA is not imported)"
	} else if importData {
		adm.cert, adm.key, err = admintls.LoadCA(admintls.Dir(g.dataDir))
		switch {
		case err == nil:
			source = "imported from " + admintls.Dir(g.dataDir)
		case fault.KindOf(err) != fault.NotFound:
			return nil, fmt.Errorf("import the admin CA: %w", err)
		}
	}
	if adm.cert == nil {
		if adm.cert, adm.key, err = admintls.NewCA(f.adminHosts, now); err != nil {
			return nil, err
		}
	}
	add(keys.IDAdminCA, keys.KindAdminCA, adm, source)
	return out, nil
}

// certAndKey is a certificate and its private key (nil when offline).
type certAndKey struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (c certAndKey) chain() []*x509.Certificate { return []*x509.Certificate{c.cert} }

// recordIDs lists the ids of stored keys.
func recordIDs(rs []keys.Record) string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return strings.Join(ids, ", ")
}
