package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
)

// Dir is the path of a data directory.
type Dir string

// The names inside a data directory.
const (
	DBFile   = "capf.db"    // SQLite database
	CADir    = "ca"         // CAPF key and certificate
	TraceDir = "trace"      // Troubleshoot trace files
	PhoneDir = "phones"     // state of simulated phones (capf phone)
	LockFile = "serve.lock" // held by the one capf serve of the directory
	TrustDir = "trust"      // SAST signing identities (capf trust)
	NodeFile = "node-id"    // this server's node id in the store's claims
	// PhoneListenFile holds the address the running serve listens on for
	// phones (written when it listens, removed when it stops), so that
	// capf phone-config gives phones the real port.
	PhoneListenFile = "phone-listen"
)

// Path returns the path of elem inside d.
func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// DB returns the path of the database.
func (d Dir) DB() string { return d.Path(DBFile) }

// Config returns the path of the service-parameter file.
func (d Dir) Config() string { return d.Path(config.FileName) }

// CA returns the directory of the CAPF key and certificate.
func (d Dir) CA() string { return d.Path(CADir) }

// CACert returns the path of the CAPF certificate.
func (d Dir) CACert() string { return d.Path(CADir, ca.CertFile) }

// CAKey returns the path of the CAPF private key.
func (d Dir) CAKey() string { return d.Path(CADir, ca.KeyFile) }

// Trace returns the directory of Troubleshoot trace files.
func (d Dir) Trace() string { return d.Path(TraceDir) }

// Phones returns the directory of simulated phones' state.
func (d Dir) Phones() string { return d.Path(PhoneDir) }

// Trust returns the directory of the SAST signing identities.
func (d Dir) Trust() string { return d.Path(TrustDir) }

// NodeID returns the path of the node-id file.
func (d Dir) NodeID() string { return d.Path(NodeFile) }

// Lock returns the path of the serve lock file.
func (d Dir) Lock() string { return d.Path(LockFile) }

// PhoneListen returns the path of the running serve's phone address.
func (d Dir) PhoneListen() string { return d.Path(PhoneListenFile) }

// Ensure creates the data directory, private to its owner, if it does not
// exist.
func (d Dir) Ensure() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// Exists reports whether d is an existing directory; a path that exists but
// is not a directory is an Invalid error.
func (d Dir) Exists() (bool, error) {
	fi, err := os.Stat(string(d))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("data directory: %w", err)
	case !fi.IsDir():
		return false, fault.Invalidf("data directory %s is not a directory", d)
	}
	return true, nil
}

// Initialised returns nil if d holds a CAPF database, and otherwise a
// NotFound error that says how to create one, so that a mistyped --data
// never silently starts an empty installation.
func (d Dir) Initialised() error {
	if _, err := d.Exists(); err != nil {
		return err
	}
	_, err := os.Stat(d.DB())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fault.NotFoundf("no CAPF data in %s: run `capf serve` (or `capf init`) there first, or pass --data", d)
	}
	return fmt.Errorf("data directory: %w", err)
}
