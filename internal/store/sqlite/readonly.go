package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// ErrReadOnly, of kind fault.Invalid, is returned (wrapped) by every write
// to a store opened with [OpenReadOnly].
var ErrReadOnly error = &fault.Error{Kind: fault.Invalid, Msg: "database opened read-only"}

// OpenReadOnly opens the existing SQLite database at path for reading only:
// it creates no file (a missing database is a NotFound error), applies no
// migration, and every write returns an error wrapping [ErrReadOnly]. It is
// for commands that only look, so that they work on a data directory or
// database file the caller may not write. A database whose schema differs
// from this binary's is refused.
//
// SQLite needs to write the -shm file of a database in WAL mode even to
// read it; when that is impossible (a read-only directory where no server
// runs, so no -shm exists) the file is opened as immutable, which is
// correct as long as nothing writes it meanwhile, true of a directory
// nobody can write.
func OpenReadOnly(ctx context.Context, path string, opts Options) (*Store, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fault.NotFoundf("sqlite store: no database at %s", path)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = max(4, runtime.GOMAXPROCS(0))
	}
	s := &Store{path: path, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	db, err := openReader(ctx, dsn(path, busy, false)+"&mode=ro", readConns)
	if err != nil {
		var immErr error
		db, immErr = openReader(ctx, dsn(path, busy, false)+"&mode=ro&immutable=1", readConns)
		if immErr != nil {
			return nil, fmt.Errorf("sqlite store %s: open read-only: %w", path, err)
		}
	}
	s.read = db
	if err := checkSchema(ctx, s.read); err != nil {
		s.read.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	s.readPrep.db = s.read
	s.rs = prepareRead(ctx, &s.readPrep)
	if err := s.readPrep.err; err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	return s, nil
}

// openReader opens a pool on dsn and checks that it can read the schema.
func openReader(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if _, err := db.ExecContext(ctx, `SELECT count(*) FROM sqlite_schema`); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkSchema fails unless db has exactly the schema version this binary
// knows: a read-only open can neither migrate an older file nor read a newer
// one safely.
func checkSchema(ctx context.Context, db *sql.DB) error {
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch known := SchemaVersion(); {
	case current > known:
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade capf", current, known)
	case current < known:
		return fault.Invalidf("database schema version %d is older than this binary's (%d): run capf serve once to upgrade it", current, known)
	}
	return nil
}
