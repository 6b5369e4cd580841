package cli

import (
	"context"
	"os"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/system"
)

// access says whether a command only reads the data directory or also
// writes it.
type access int

const (
	readOnly access = iota
	readWrite
)

// dir returns the data directory the --data flag names.
func (g *globals) dir() datadir.Dir { return datadir.Dir(g.dataDir) }

// loadConfig reads the service parameters of a data directory that has
// them or a database (see hasConfigOrData).
func (g *globals) loadConfig() (config.Config, error) {
	if err := g.hasConfigOrData(); err != nil {
		return config.Config{}, err
	}
	return config.Load(g.dataDir)
}

// hasConfigOrData fails unless the data directory is initialised or holds
// a capf.json written before the first start, so that a mistyped --data
// is not shown or checked as the defaults. With a PostgreSQL --db the
// database is initialised wherever the node's files are.
func (g *globals) hasConfigOrData() error {
	d := g.dir()
	if _, err := os.Stat(d.Config()); err == nil {
		return nil
	}
	return store.Initialised(g.storeOptions(store.ReadOnly))
}

// storeOptions returns the options of the node's database in mode.
func (g *globals) storeOptions(mode store.Mode) store.Options {
	return store.Options{DB: g.db, DataDir: g.dataDir, Mode: mode}
}

// openStore opens the node's database (--db, or the data directory's
// SQLite database), never creating one. A readOnly store opens on a
// directory the user cannot write; a readWrite open of such a directory
// says so plainly.
func (g *globals) openStore(ctx context.Context, mode access) (store.Store, error) {
	m := store.ReadWrite
	if mode == readOnly {
		m = store.ReadOnly
	}
	return store.Open(ctx, g.storeOptions(m))
}

// openService opens the store and returns the device service over it and a
// function that closes the store.
func (g *globals) openService(ctx context.Context, mode access) (*device.Service, func(), error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := g.openStore(ctx, mode)
	if err != nil {
		return nil, nil, err
	}
	// default_key is a fleet parameter: the database's is in force.
	if cfg, _, err = system.NewService(system.Options{DataDir: g.dataDir, Store: st}).Effective(ctx, cfg); err != nil {
		st.Close()
		return nil, nil, err
	}
	o := device.ServiceOptions{Store: st, DefaultKey: device.KeySpec(cfg.DefaultKey)}
	if resetConfigured(cfg) {
		o.Notifier = &lazyNotifier{build: func() (device.Notifier, error) { return buildNotifier(cfg, g.dir()) }}
	}
	svc := device.NewService(o)
	return svc, func() { st.Close() }, nil
}

// caOptions returns the authority options for the data directory.
func (g *globals) caOptions(cfg config.Config) ca.Options {
	return ca.Options{
		Dir:          g.dir().CA(),
		KeyAlgorithm: ca.KeyAlgorithm(cfg.CAKey),
		LSCValidity:  days(cfg.CertificateValidityDays),
	}
}
