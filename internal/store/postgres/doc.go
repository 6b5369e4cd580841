// Package postgres implements the store contracts ([device.Store],
// [account.Store], [system.Store]) on a PostgreSQL database, through a pgx
// v5 connection pool (pgxpool), for several CAPF nodes sharing one fleet.
// It passes the same contract suite (store/storetest) as the SQLite
// backend.
//
// # Transactions
//
// Every administrative write runs in its own SERIALIZABLE transaction
// (the phone session's writes are the exception below). PostgreSQL then
// guarantees that the writes of all nodes behave as if they ran one at a
// time — the guarantee SQLite's single writer gives — so the contracts'
// read-then-write steps (a claim's check for an open attempt and its
// revision, the last-admin rule, the login throttle's reservation, the
// authentication-guess compare-and-swap) hold across nodes without explicit
// row locks. The database enforces the rest itself: the partial unique
// index attempts_one_open allows one open attempt per device.
//
// The writes of a phone session (StartAttempt, RecordIssuance,
// FinishAttempt, CountAuthGuess, SaveFetchedCertificate) are the
// exception: each is a compare-and-swap on one row — an UPDATE whose WHERE
// says what the row must still be (no open attempt and the same revision,
// the attempt still open and held by this node, the guess counter still at
// the value read), which PostgreSQL re-checks on the newest row version
// after waiting for the row's lock — or an insert guarded by a unique
// index. They run READ COMMITTED, which gives the same outcome without the
// serializable predicate locks that made different phones' sessions abort
// one another. A SERIALIZABLE write that read a row such a write changed
// meanwhile fails to serialize and is retried.
//
// A transaction that PostgreSQL aborts with a serialization failure
// (SQLSTATE 40001) or a deadlock (40P01) runs again from the start, up to
// 20 times, after a short pause. A caller's closure passed to UpdateDevice,
// ImportDevices, ScheduleCampaign or ReserveLogin may therefore be called
// more than once for one call of the method, each time with the state as
// the new transaction reads it; the store contracts say so, and the
// closures in this project are pure functions of their arguments.
//
// Reads that must be consistent across several queries (ListDevices, the
// dashboard, campaign progress) run in one read-only REPEATABLE READ
// transaction; single-statement reads use the pool directly.
//
// There is no group commit: each transaction commits on its own
// connection, and PostgreSQL's own group commit (commit_delay,
// synchronous_commit) batches the WAL flushes of concurrent commits.
//
// # Schema
//
// The schema lives in the embedded migrations directory, numbered on its
// own (0001 is all of SQLite's 0001–0006). [Open] applies, in one
// transaction under an advisory lock, every migration the database lacks,
// and refuses a database whose schema is newer than the binary before
// changing anything. Times are BIGINT microseconds since the Unix epoch, as
// on SQLite. Account and token names are unique ignoring case through a
// key column generated as lower(name). Text filters of [device.Query] use
// ILIKE; names sort bytewise (COLLATE "C"), as SQLite's BINARY does.
package postgres
