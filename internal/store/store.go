// Package store is the one seam between the CAPF node and its database: it
// opens SQLite (the data directory's capf.db, the zero-set-up default) or
// PostgreSQL (a postgres:// URL, for several nodes serving one fleet) and
// returns the same [Store], so that nothing above it names a backend.
//
// What only SQLite has lives here too, behind the SQLite branch: a data
// directory is "initialised" when it holds capf.db, a command that writes
// needs the directory and the file writable (SQLite keeps its -wal and
// -shm files beside the database), and a command that only looks opens the
// file read-only. A PostgreSQL database is always there to connect to;
// whether the node may read or write it is the server's to say.
package store

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/lease"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
)

// EnvDB is the environment variable that gives --db its default.
const EnvDB = "CAPF_DB"

// Store is everything the server and the admin commands need from a
// database: the devices and their history, the accounts, sessions and
// tokens, the service state, the cluster's key material, the leases of
// the once-per-fleet jobs and the node registry. Both backends implement it
// and pass the
// contract suite in store/storetest.
type Store interface {
	device.Store
	device.AddressGuesses
	account.Store
	system.Store
	keys.Store
	lease.Store
	cluster.Store
	lsc.Store
	caset.Store
}

// The backends implement Store.
var (
	_ Store = (*sqlite.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)

// Mode says what a caller does with the database.
type Mode int

const (
	// ReadWrite opens an existing database to change it. On SQLite the data
	// directory must be initialised and writable.
	ReadWrite Mode = iota
	// ReadOnly opens an existing database only to look: it never changes
	// the schema, and refuses one that is not exactly this binary's. On
	// SQLite it creates nothing and works on a directory the caller cannot
	// write; on PostgreSQL writes are still possible (the role's
	// privileges decide), but look-only commands make none.
	ReadOnly
	// Create opens the database, creating it first when it does not exist
	// (SQLite: capf.db in the data directory, which must exist); `capf
	// serve` and `capf init`.
	Create
)

// Options says which database Open opens and how.
type Options struct {
	// DB is the --db value: a postgres:// (or postgresql://) URL, or ""
	// for the SQLite database of DataDir.
	DB string
	// DataDir is the node's data directory; the SQLite database is its
	// capf.db.
	DataDir string
	Mode    Mode
	// Now is the store's clock; time.Now when nil.
	Now func() time.Time
}

// IsPostgres reports whether db names a PostgreSQL database.
func IsPostgres(db string) bool {
	scheme, _, ok := strings.Cut(db, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// Check returns an Invalid error unless db is "" or a PostgreSQL URL.
func Check(db string) error {
	if db == "" || IsPostgres(db) {
		return nil
	}
	return fault.Invalidf("--db %s: want a postgres:// URL, or none for the SQLite database of the data directory", postgres.Redact(db))
}

// Describe names the database of o for people: the PostgreSQL URL without
// its password, or the SQLite file.
func Describe(o Options) string {
	if IsPostgres(o.DB) {
		return postgres.Redact(o.DB)
	}
	return datadir.Dir(o.DataDir).DB()
}

// Open opens the database o names. On SQLite, ReadWrite and ReadOnly need
// an initialised data directory (a NotFound error says how to make one),
// and ReadWrite a writable one. On PostgreSQL it connects and brings the
// schema up to date; an unreachable server, refused credentials or a
// schema newer than the binary are errors that say so, and change nothing.
func Open(ctx context.Context, o Options) (Store, error) {
	if err := Check(o.DB); err != nil {
		return nil, err
	}
	if IsPostgres(o.DB) {
		st, err := postgres.Open(ctx, o.DB, postgres.Options{Now: o.Now, NoMigrate: o.Mode == ReadOnly})
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return st, nil
	}
	d := datadir.Dir(o.DataDir)
	opts := sqlite.Options{Now: o.Now}
	var (
		st  *sqlite.Store
		err error
	)
	switch o.Mode {
	case Create:
		st, err = sqlite.Open(ctx, d.DB(), opts)
	case ReadOnly:
		if err := d.Initialised(); err != nil {
			return nil, err
		}
		st, err = sqlite.OpenReadOnly(ctx, d.DB(), opts)
	default:
		if err := d.Initialised(); err != nil {
			return nil, err
		}
		if err := writable(d); err != nil {
			return nil, err
		}
		st, err = sqlite.Open(ctx, d.DB(), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// Initialised returns nil if the database o names is there to open: any
// PostgreSQL URL, or a data directory that holds capf.db (otherwise a
// NotFound error that says how to create one, so that a mistyped --data
// never silently starts an empty installation).
func Initialised(o Options) error {
	if err := Check(o.DB); err != nil {
		return err
	}
	if IsPostgres(o.DB) {
		return nil
	}
	return datadir.Dir(o.DataDir).Initialised()
}

// writable fails with a clear message when the user may not write the data
// directory or its database.
func writable(d datadir.Dir) error {
	const wOK = 2 // W_OK of access(2)
	for _, p := range []string{string(d), d.DB()} {
		if err := syscall.Access(p, wOK); err != nil {
			return fmt.Errorf("%s is not writable (%v): this command changes the database; commands that only look (device list, device show, report csv, ca show, config show) still work", p, err)
		}
	}
	return nil
}

// PeekServiceState reads the service activation of the database o names
// without creating or migrating anything, for `capf serve` to decide
// before it binds the phone port. A database that does not exist yet, or
// has no state stored, is active.
func PeekServiceState(ctx context.Context, o Options) (system.ServiceState, error) {
	if IsPostgres(o.DB) {
		return postgres.PeekServiceState(ctx, o.DB)
	}
	return sqlite.PeekServiceState(ctx, datadir.Dir(o.DataDir).DB())
}

// Schema is where a database's schema stands against this binary.
type Schema struct {
	Current int      // the version the database records; 0 for none
	Known   int      // the newest version this binary knows
	Pending []string // the migrations that bring it to Known, in order
}

// Migrate brings the schema of the database o names up to date and
// returns where it stood before, or, when dryRun, only says what it would
// apply and changes nothing. A schema newer than the binary is an error
// either way. On SQLite the data directory must be initialised.
func Migrate(ctx context.Context, o Options, dryRun bool) (Schema, error) {
	if err := Initialised(o); err != nil {
		return Schema{}, err
	}
	var (
		sc  Schema
		err error
	)
	if IsPostgres(o.DB) {
		sc.Known = postgres.SchemaVersion()
		sc.Current, sc.Pending, err = postgres.SchemaState(ctx, o.DB)
	} else {
		sc.Known = sqlite.SchemaVersion()
		sc.Current, sc.Pending, err = sqlite.SchemaState(ctx, datadir.Dir(o.DataDir).DB())
	}
	if err != nil {
		return Schema{}, fmt.Errorf("read schema version: %w", err)
	}
	if sc.Current > sc.Known {
		return Schema{}, fault.Invalidf("database schema version %d is newer than this binary supports (%d): upgrade capf, or restore a backup made by this version", sc.Current, sc.Known)
	}
	if dryRun || len(sc.Pending) == 0 {
		return sc, nil
	}
	o.Mode = ReadWrite
	st, err := Open(ctx, o)
	if err != nil {
		return Schema{}, err
	}
	if err := st.Close(); err != nil {
		return Schema{}, fmt.Errorf("close database: %w", err)
	}
	return sc, nil
}
