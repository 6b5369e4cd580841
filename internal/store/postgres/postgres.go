package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
)

// The store implements every store contract the server needs.
var (
	_ device.Store  = (*Store)(nil)
	_ account.Store = (*Store)(nil)
	_ system.Store  = (*Store)(nil)
)

// DefaultHistoryLimit is how many attempts of each device the history keeps
// when [Options.HistoryLimit] is zero, as on SQLite.
const DefaultHistoryLimit = 100

// maxRetries bounds how often a write transaction is run again after a
// serialization failure or a deadlock before the error is returned.
const maxRetries = 20

// Options tunes a [Store]. The zero value is ready to use.
type Options struct {
	// Now is the clock; time.Now when nil (see the SQLite backend).
	Now func() time.Time
	// HistoryLimit is how many attempts the history keeps per device (the
	// newest); DefaultHistoryLimit when zero or negative.
	HistoryLimit int
	// NoMigrate opens without changing the schema, for commands that
	// only look: a database whose schema is not exactly this binary's is
	// refused (older: run capf migrate; newer: upgrade capf).
	NoMigrate bool
	// MaxConns caps the connection pool; pgxpool's default
	// (max(4, GOMAXPROCS)) when zero or negative, or the DSN's
	// pool_max_conns.
	MaxConns int32

	// tracer, when set, sees every statement, batch and preparation the
	// pool's connections send: the tests count round trips with it.
	tracer pgx.QueryTracer
}

// Store is a [device.Store], [account.Store] and [system.Store] on one
// PostgreSQL database, through a pgx connection pool. It is safe for
// concurrent use, and any number of processes and nodes may open the same
// database.
type Store struct {
	pool         *pgxpool.Pool
	now          func() time.Time
	historyLimit int
	what         string // the database as errors name it, without the password
	retries      atomic.Int64
}

// Retries returns how many write transactions this store has run again
// after a serialization failure or deadlock since it opened.
func (s *Store) Retries() int64 { return s.retries.Load() }

// Open connects to the PostgreSQL database dsn names (a postgres:// URL or
// a key=value connection string), checks that it answers, and brings its
// schema up to date. It fails, changing nothing, when the database cannot
// be reached, refuses the credentials, or has a schema newer than this
// binary knows.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	what := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, fault.Invalidf("postgres store %s: the connection string is not valid", what)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if opts.tracer != nil {
		cfg.ConnConfig.Tracer = opts.tracer
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// The phone path's single statements and batches run in implicit
	// transactions, at the default level: it must be READ COMMITTED
	// (StartAttempt's count relies on a snapshot per statement), whatever
	// the server's or the role's default says. Every explicit transaction
	// names its level.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "capf"
	}
	s := &Store{now: opts.Now, historyLimit: opts.HistoryLimit, what: what}
	if s.now == nil {
		s.now = time.Now
	}
	if s.historyLimit <= 0 {
		s.historyLimit = DefaultHistoryLimit
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", what, connectErr(err))
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres store %s: %w", what, connectErr(err))
	}
	check := migrate
	if opts.NoMigrate {
		check = checkSchema
	}
	if err := check(ctx, s.pool); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres store %s: %w", what, err)
	}
	return s, nil
}

// Close closes the connection pool, waiting for the connections in use to
// be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Redact returns dsn with its password, if any, replaced by "xxxxx", for
// error messages and logs.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok {
		// A URL that does not parse: hide what stands before its last @.
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			user, _, _ := strings.Cut(rest[:i], ":")
			return scheme + "://" + user + ":xxxxx" + rest[i:]
		}
		return dsn
	}
	// key=value form: hide the value of password=.
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(strings.TrimSpace(k), "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// connectErr names the cause of a failure to connect: the server refused
// the credentials, the database does not exist, or nothing answered.
func connectErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return unavailablef("the server refused the credentials (%s): check the user and password of the DSN", pe.Message)
		case "3D000":
			return unavailablef("the database does not exist (%s): create it first", pe.Message)
		}
		return unavailablef("connect: %s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return unavailablef("the database server is unreachable: %s", distinctLines(ce.Unwrap().Error()))
	}
	return unavailablef("connect: %v", err)
}

// distinctLines joins the distinct lines of s with "; ": pgx reports each
// connection attempt (with and without TLS, each address) on a line, most
// often the same.
func distinctLines(s string) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUnique reports whether err is a primary-key or unique violation.
func isUnique(err error) bool { return sqlState(err) == "23505" }

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool { return sqlState(err) == "23503" }

// isCheck reports whether err is a CHECK or NOT NULL violation.
func isCheck(err error) bool { c := sqlState(err); return c == "23514" || c == "23502" }

// retryable reports whether the transaction that failed with err may be run
// again: a serialization failure or a deadlock.
func retryable(err error) bool { c := sqlState(err); return c == "40001" || c == "40P01" }

// txFunc is one write: it runs inside a SERIALIZABLE transaction and may
// run more than once (see [Store.write]).
type txFunc func(ctx context.Context, tx pgx.Tx) error

// write runs fn in a SERIALIZABLE read-write transaction and commits it;
// see writeAt.
func (s *Store) write(ctx context.Context, what string, fn txFunc) error {
	return s.writeAt(ctx, pgx.Serializable, what, fn)
}

// writeRowCAS runs fn in a READ COMMITTED transaction: for the phone
// session's writes, each of which is a compare-and-swap on one row (an
// UPDATE whose WHERE states what the row must still be, which PostgreSQL
// re-checks on the newest version after waiting for the row's lock) or a
// plain insert guarded by a unique index. They need no serializable
// snapshot, and under SERIALIZABLE the predicate locks of different
// phones' rows on shared index pages made them abort one another
// (BenchmarkEnrollmentWrites: 0.25 retries per enrolment at 4 connections,
// 2.5 at 16). A deadlock (40P01) still runs fn again.
func (s *Store) writeRowCAS(ctx context.Context, what string, fn txFunc) error {
	return s.writeAt(ctx, pgx.ReadCommitted, what, fn)
}

// writeAt runs fn in a read-write transaction at iso and commits it.
// When PostgreSQL aborts the transaction with a serialization failure or a
// deadlock (another node or connection wrote what fn read), the whole
// transaction, fn included, runs again, up to maxRetries times: fn must
// reset whatever it reports back at its start, and a caller's closure that
// fn calls must be safe to call again (the store contracts say which).
// Every write therefore behaves as if the writes ran one at a time, the
// guarantee SQLite's single writer gives.
func (s *Store) writeAt(ctx context.Context, iso pgx.TxIsoLevel, what string, fn txFunc) error {
	var err error
	for try := 0; try <= maxRetries; try++ {
		if try > 0 {
			if perr := s.pause(ctx, try); perr != nil {
				return fmt.Errorf("%s: %w", what, perr)
			}
		}
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: iso}, func(tx pgx.Tx) error {
			return fn(ctx, tx)
		})
		if err == nil || !retryable(err) {
			break
		}
	}
	if retryable(err) {
		return fmt.Errorf("%s: %w", what, unavailablef("gave up after %d serialization retries: %v", maxRetries, err))
	}
	return err
}

// retryStatement runs fn, which sends one statement or one batch on the
// pool: PostgreSQL runs it as one implicit transaction, atomic on its own,
// so no BEGIN and COMMIT round trips surround it. As writeAt does, it runs
// fn again after a serialization failure or a deadlock, up to maxRetries
// times; fn must reset whatever it reports back at its start. Any other
// error is returned as it is, for the caller to map.
func (s *Store) retryStatement(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	for try := 0; try <= maxRetries; try++ {
		if try > 0 {
			if perr := s.pause(ctx, try); perr != nil {
				return fmt.Errorf("wait to run again after %v: %w", err, perr)
			}
		}
		if err = fn(ctx); err == nil || !retryable(err) {
			return err
		}
	}
	return unavailablef("gave up after %d serialization retries: %v", maxRetries, err)
}

// pause counts the retry and waits before try number try: a short,
// growing pause lets the transaction it collided with finish. It returns
// ctx's error when ctx ends first.
func (s *Store) pause(ctx context.Context, try int) error {
	s.retries.Add(1)
	t := time.NewTimer(time.Duration(try) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// unavailablef returns an Unavailable error: try again later.
func unavailablef(format string, args ...any) error {
	return fault.New(fault.Unavailable, format, args...)
}

// read runs fn in a read-only REPEATABLE READ transaction: every query of
// fn sees one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// micros encodes t for a time column: NULL for the zero time, else
// microseconds since the Unix epoch.
func micros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMicro()
	return &v
}

// fromMicros decodes a time column: the zero time for NULL.
func fromMicros(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.UnixMicro(*n).UTC()
}

// limitArg is a LIMIT argument: NULL, which PostgreSQL reads as no limit,
// when n <= 0.
func limitArg(n int) *int64 {
	if n <= 0 {
		return nil
	}
	v := int64(n)
	return &v
}

// affected returns notFound if tag affected no row.
func affected(tag pgconn.CommandTag, notFound error) error {
	if tag.RowsAffected() == 0 {
		return notFound
	}
	return nil
}
