// Package sqlite implements [device.Store] on a single SQLite file, with the
// pure-Go driver modernc.org/sqlite (no cgo).
//
// The file is opened in WAL mode with synchronous=FULL, so that a method that
// returns nil has made its change durable against a crash of the process or
// of the machine, and with a busy timeout, so that several processes (the
// server and CLI commands) can use the same file at once. Each [Store] keeps
// two connection pools: one connection for writes, whose transactions begin
// IMMEDIATE so that writers queue on the lock instead of failing on it, and a
// read-only pool for queries, which WAL lets run beside the writer.
//
// # Group commit
//
// Every write goes through one committer goroutine, which alone uses the
// writer connection. A durable commit costs an fsync of the WAL, and one
// connection commits one transaction at a time, so with a transaction per
// call hundreds of phones enrolling at once (three writes each) would queue
// on fsyncs. Instead a caller queues its write and waits; the committer takes
// every write queued (at most [Options.MaxBatch]), runs them in one IMMEDIATE
// transaction and commits it once, with one fsync. A batch is whatever queued
// while the previous one committed, plus, while writers crowd the committer,
// whatever arrives within a pace: after a batch of more than one write began,
// the next begins no sooner than [Options.CommitPace] (10 ms by default)
// after it, unless 32 writes are already queued. Phones' sessions write
// between their signatures, so their writes arrive spread out; without the
// pace the committer commits batches of two to five back to back, and each
// fsync costs the machine CPU time in the kernel as well as the wait (with
// an RSA CAPF key, 0.68 of a bare server's rate without the pace, 0.85 with
// it; docs/performance.md). A lone caller, whose batches hold one write,
// never waits for the pace; a crowd waits at most a pace more per write.
//
// Durability is unchanged: synchronous stays FULL, and a method returns nil
// only after the transaction holding its write has committed. If the commit
// fails, every write of the batch reports an error.
//
// Isolation between the writes of a batch: each runs inside its own
// SAVEPOINT. A write that fails (NotFound, Conflict on a duplicate serial, a
// constraint, even a panic) is rolled back to its savepoint and its caller
// gets its error, with the same fault kind as a transaction of its own would
// give; the other writes of the batch commit. (A write alone in its batch
// needs no savepoint.) Should SQLite roll back the whole transaction (it
// does on a full disk or an I/O error), the committer notices that the
// savepoint is gone and fails the whole batch rather than go on outside a
// transaction. Constraints must therefore be checked per statement, never
// deferred to COMMIT, where one write's violation would fail the batch.
//
// Cancellation: a caller whose context ends while its write is still queued
// gets the context's error and the write never runs. Once the committer has
// taken the write, the caller waits for the commit, so that a write that
// committed is never reported as failed; the statements run under the
// committer's context, because interrupting one would make SQLite roll back
// the whole batch. [Store.ImportDevices] and [Store.ScheduleCampaign], each
// one write of many rows, check their caller's context between rows and roll
// back to their savepoint if it ends.
//
// [Store.Close] refuses new writes (they get an Unavailable error), lets the
// committer finish every write queued so far, then closes the pools.
//
// # Prepared statements
//
// The statements of a phone session (GetDevice, StartAttempt,
// RecordIssuance, FinishAttempt, SaveFetchedCertificate) and the
// committer's savepoints are prepared once, by [Open], and closed by
// [Store.Close]; see stmts.go. A write binds them to its batch's
// transaction, once a batch, through committer.stmt.
//
// # Campaigns and the dashboard
//
// A campaign keeps its devices in campaign_devices, each with the
// configuration revision the campaign left it at; nothing there changes as
// sessions run. [Store.CampaignProgress] classifies every device of the
// campaign in one aggregate query over that table's primary key, one lookup
// of each device and one of its successful attempts (a partial index holds
// only those), so polling a 10,000-phone campaign stays cheap
// (BenchmarkCampaignProgress10k). [Store.Dashboard] reads one pass over the
// devices for its counts and indexes for the rest; the latest failures come
// from a partial index of failed attempts.
//
// The schema lives in the embedded migrations directory; [Open] applies the
// migrations the file lacks, in order, each in its own transaction, and
// refuses a file whose schema is newer than the binary.
//
// Times are stored as INTEGER microseconds since the Unix epoch (UTC), NULL
// for the zero time. Text filters of [device.Query] ignore case for ASCII
// letters only (SQLite's LIKE).
package sqlite
