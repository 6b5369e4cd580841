package cli

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
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
// is not shown or checked as the defaults.
func (g *globals) hasConfigOrData() error {
	d := g.dir()
	if _, err := os.Stat(d.Config()); err == nil {
		return nil
	}
	return d.Initialised()
}

// openStore opens the database of an initialised data directory, never
// creating one. A readOnly store opens on a directory the user cannot
// write; a readWrite open of such a directory says so plainly.
func (g *globals) openStore(ctx context.Context, mode access) (*sqlite.Store, error) {
	d := g.dir()
	if err := d.Initialised(); err != nil {
		return nil, err
	}
	if mode == readOnly {
		st, err := sqlite.OpenReadOnly(ctx, d.DB(), sqlite.Options{})
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return st, nil
	}
	if err := writable(d); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, d.DB(), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// writable fails with a clear message when the user may not write the data
// directory or its database (SQLite needs both: it keeps its -wal and -shm
// files beside the database).
func writable(d datadir.Dir) error {
	const wOK = 2 // W_OK of access(2)
	for _, p := range []string{string(d), d.DB()} {
		if err := syscall.Access(p, wOK); err != nil {
			return fmt.Errorf("%s is not writable (%v): this command changes the database; commands that only look (device list, device show, report csv, ca show, config show) still work", p, err)
		}
	}
	return nil
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
	svc := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec(cfg.DefaultKey)})
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
