package cli

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

func init() { subcommands = append(subcommands, newInitCmd) }

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a data directory without serving: database, capf.json with defaults, CAPF key and certificate (keeps what exists)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(cmd, g)
		},
	}
}

// runInit creates what the data directory lacks and says, for each part,
// whether it created or kept it. An invalid capf.json, or a PostgreSQL
// --db it cannot open, stops it before it creates anything.
func runInit(cmd *cobra.Command, g *globals) error {
	d := g.dir()
	existed, err := d.Exists()
	if err != nil {
		return err
	}
	cfg, err := config.Load(g.dataDir)
	if err != nil {
		return err
	}
	// A PostgreSQL database first: one that cannot be opened (unreachable,
	// credentials refused, a newer schema) leaves the directory as it was.
	var pg store.Schema
	if store.IsPostgres(g.db) {
		if pg, err = store.Migrate(cmd.Context(), g.storeOptions(store.Create), false); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}
	// So does a KEK that does not open the cluster's keys, or its absence
	// when the database holds them: a node with a CA of its own would
	// present another CAPF certificate than the cluster's (serve refuses
	// it too).
	var cluster *clusterKeys
	if err := g.refuseOwnKeysOnCluster(cmd.Context()); err != nil {
		return err
	}
	if g.kekFile != "" {
		if !g.keysInDB() {
			_, err := g.loadKEK() // says why not
			return err
		}
		if cluster, err = g.clusterKeysOf(cmd.Context()); err != nil {
			return err
		}
	}
	w := g.stdout
	report := func(created bool, what, path string) {
		verb := "kept   "
		if created {
			verb = "created"
		}
		fmt.Fprintf(w, "%s %-26s %s\n", verb, what, path)
	}
	if err := d.Ensure(); err != nil {
		return err
	}
	report(!existed, "data directory", string(d))
	wrote, err := config.WriteIfMissing(g.dataDir, config.Defaults())
	if err != nil {
		return err
	}
	report(wrote, "node settings", d.Config())
	if store.IsPostgres(g.db) {
		report(pg.Current == 0, "database", store.Describe(g.storeOptions(store.Create)))
	} else {
		_, statErr := os.Stat(d.DB())
		newDB := errors.Is(statErr, fs.ErrNotExist)
		st, err := store.Open(cmd.Context(), g.storeOptions(store.Create))
		if err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		if err := st.Close(); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		report(newDB, "database", d.DB())
	}
	var c *x509.Certificate
	if cluster != nil {
		// A cluster node: the keys are the database's, made by cluster init.
		c = cluster.authority.Certificate()
		report(false, "CAPF key and certificate", "the database (cluster key "+keys.IDCAPF+")")
	} else {
		a, created, err := ca.LoadOrCreate(g.caOptions(cfg))
		if err != nil {
			return fmt.Errorf("CAPF certificate: %w", err)
		}
		report(created, "CAPF key", d.CAKey())
		report(created, "CAPF certificate", d.CACert())
		c = a.Certificate()
	}
	fmt.Fprintf(w, "  subject: %s\n  SHA-256: %X\n", c.Subject, sha256.Sum256(c.Raw))
	fmt.Fprintf(w, "start the service with: capf --data %s serve\n", d)
	return nil
}
