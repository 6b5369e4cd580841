package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

var _ device.Store = (*Store)(nil)

// DefaultBusyTimeout is how long a statement waits for a lock held by
// another connection or process when [Options.BusyTimeout] is zero.
const DefaultBusyTimeout = 10 * time.Second

// Options tunes a [Store]. The zero value is ready to use.
type Options struct {
	// Now is the clock; time.Now when nil. The store reads it for
	// device.Query.Now when that is zero and for the finish time of the
	// attempts FailStaleAttempts closes.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection or process; DefaultBusyTimeout when zero or negative.
	BusyTimeout time.Duration
	// ReadConns caps the read pool; max(4, GOMAXPROCS) when zero or negative.
	ReadConns int
	// MaxBatch caps how many concurrent writes share one transaction (group
	// commit); 256 when zero or negative. 1 gives every write
	// its own transaction.
	MaxBatch int
	// CommitPace is how long, after a transaction that held more than one
	// write began, the committer waits before it begins the next: the
	// writes arriving meanwhile share one commit and its fsync. A crowd of
	// writers then pays for fewer fsyncs (each costs the machine CPU time
	// in the kernel, beyond the wait) at the price of up to CommitPace more
	// latency per write; a lone writer never waits. DefaultCommitPace when
	// zero; negative for none (every batch begins as soon as the previous
	// one has committed).
	CommitPace time.Duration
	// HistoryLimit is how many attempts the history keeps per device
	// (the newest); DefaultHistoryLimit when zero or negative.
	HistoryLimit int
}

// DefaultHistoryLimit is how many attempts of each device the history keeps
// when [Options.HistoryLimit] is zero: enough for every real phone's story,
// and a bound on what a flood of failed attempts can write.
const DefaultHistoryLimit = 100

// Store is a [device.Store] backed by one SQLite file. It is safe for
// concurrent use, and several processes may open the same file.
type Store struct {
	path         string
	now          func() time.Time
	historyLimit int
	write        *sql.DB    // one connection, owned by the committer once open
	read         *sql.DB    // query_only connections
	c            *committer // every write goes through it

	// The hot path's prepared statements; see stmts.go.
	rs        readStmts
	ws        writeStmts
	readPrep  preparer
	writePrep preparer

	closeOnce sync.Once
	closeErr  error
}

// Open opens the SQLite database at path, creating the file (mode 0600) if it
// does not exist, and brings its schema up to date. The directory must exist.
// It fails if the file's schema is newer than this binary knows.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || strings.HasPrefix(path, ":") {
		return nil, fault.Invalidf("sqlite store: path %q is not a file path", path)
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = max(4, runtime.GOMAXPROCS(0))
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = defaultMaxBatch
	}
	pace := opts.CommitPace
	if pace == 0 {
		pace = DefaultCommitPace
	}
	pace = max(pace, 0)
	s := &Store{path: path, now: opts.Now, historyLimit: opts.HistoryLimit}
	if s.historyLimit <= 0 {
		s.historyLimit = DefaultHistoryLimit
	}
	if s.now == nil {
		s.now = time.Now
	}

	var err error
	s.write, err = sql.Open("sqlite", dsn(path, busy, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: open writer: %w", path, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)
	if err := s.write.PingContext(ctx); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlite store %s: open writer: %w", path, err)
	}
	if err := migrate(ctx, s.write); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}

	s.read, err = sql.Open("sqlite", dsn(path, busy, false))
	if err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlite store %s: open readers: %w", path, err)
	}
	s.read.SetMaxOpenConns(readConns)
	s.read.SetMaxIdleConns(readConns)
	if err := s.read.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: open readers: %w", path, err)
	}
	s.readPrep.db, s.writePrep.db = s.read, s.write
	s.rs = prepareRead(ctx, &s.readPrep)
	s.ws = prepareWrite(ctx, &s.writePrep)
	if err := errors.Join(s.readPrep.err, s.writePrep.err); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	s.c, err = newCommitter(ctx, s.write, &s.writePrep, maxBatch, pace)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	return s, nil
}

// Close lets the writes already submitted commit, then stops the committer
// and closes both connection pools. Writes submitted after Close return an
// Unavailable error. Calling Close again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.c != nil {
			s.c.close()
		}
		var errs []error
		if err := errors.Join(s.readPrep.close(), s.writePrep.close()); err != nil {
			errs = append(errs, fmt.Errorf("sqlite store %s: close statements: %w", s.path, err))
		}
		if s.read != nil {
			if err := s.read.Close(); err != nil {
				errs = append(errs, fmt.Errorf("sqlite store %s: close readers: %w", s.path, err))
			}
		}
		if s.write != nil {
			if err := s.write.Close(); err != nil {
				errs = append(errs, fmt.Errorf("sqlite store %s: close writer: %w", s.path, err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// createFile creates the database file with mode 0600 if it does not exist,
// so that SQLite, which gives its WAL and shared-memory files the mode of
// the database, never makes any of them readable by others.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite store: create %s: %w", path, err)
		}
		return nil
	case errors.Is(err, os.ErrExist):
		return nil
	default:
		return fmt.Errorf("sqlite store: create %s: %w", path, err)
	}
}

// dsn returns the modernc.org/sqlite data source name for path. Pragmas are
// set on every new connection: busy_timeout first (the driver orders it so),
// then foreign keys and synchronous=FULL; the writer also sets WAL mode,
// which is persistent in the file, before any reader connects. The writer's transactions
// begin IMMEDIATE so that they take the write lock up front, where the busy
// timeout applies, rather than failing with SQLITE_BUSY when a deferred
// transaction tries to upgrade its read lock. The writer keeps its
// temporary files in memory (temp_store=MEMORY): above all the
// sub-journal of the committer's per-write savepoints, which SQLite
// otherwise spills to a temporary file once it holds more than 64 KiB of
// pages, so a batch paid a file's creation and writes on top of its
// WAL's. Durability is the WAL's alone and unchanged.
// Readers are query_only.
func dsn(path string, busy time.Duration, writer bool) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	// SQLite decodes %HH in a file: URI; escape what would end the path.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	params := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busy.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(FULL)",
	}
	if writer {
		params = append(params, "_pragma=journal_mode(WAL)", "_pragma=temp_store(MEMORY)", "_txlock=immediate")
	} else {
		params = append(params, "_pragma=query_only(1)")
	}
	return "file:" + escaped + "?" + strings.Join(params, "&")
}

// sqliteCode returns the extended result code of a driver error, or 0.
func sqliteCode(err error) int {
	if err == nil {
		return 0
	}
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUnique reports whether err is a primary-key or unique violation.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// isCheck reports whether err is a CHECK or NOT NULL violation.
func isCheck(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_CHECK || c == sqlite3.SQLITE_CONSTRAINT_NOTNULL
}

// submit runs fn as one write of a group-committed transaction, which
// begins IMMEDIATE, and returns once it is durable or rolled back; see
// committer.submit. fn must use the ctx it is given, not the caller's.
func (s *Store) submit(ctx context.Context, what string, fn txFunc) error {
	if s.c == nil {
		return fmt.Errorf("%s: %w", what, ErrReadOnly)
	}
	return s.c.submit(ctx, what, fn)
}

// micros encodes t for a time column: NULL for the zero time, else
// microseconds since the Unix epoch.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros decodes a time column: the zero time for NULL.
func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}
