package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// Paths inside the data directory.
const (
	dbFile   = "capf.db"
	caDir    = "ca"
	traceDir = "trace"
)

func (g *globals) path(elem ...string) string {
	return filepath.Join(append([]string{g.dataDir}, elem...)...)
}

// ensureDataDir creates the data directory (private to its owner).
func (g *globals) ensureDataDir() error {
	if err := os.MkdirAll(g.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// loadConfig reads the service parameters of the data directory.
func (g *globals) loadConfig() (config.Config, error) {
	return config.Load(g.dataDir)
}

// openStore opens the embedded database of the data directory.
func (g *globals) openStore(ctx context.Context) (*sqlite.Store, error) {
	if err := g.ensureDataDir(); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, g.path(dbFile), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// openService opens the store and returns the device service over it and a
// function that closes the store.
func (g *globals) openService(ctx context.Context) (*device.Service, func(), error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	svc := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec(cfg.DefaultKey)})
	return svc, func() { st.Close() }, nil
}

// caOptions returns the authority options for the data directory.
func (g *globals) caOptions(cfg config.Config) ca.Options {
	return ca.Options{
		Dir:          g.path(caDir),
		KeyAlgorithm: ca.KeyAlgorithm(cfg.CAKey),
		LSCValidity:  days(cfg.CertificateValidityDays),
	}
}
