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
// The schema lives in the embedded migrations directory; [Open] applies the
// migrations the file lacks, in order, each in its own transaction, and
// refuses a file whose schema is newer than the binary.
//
// Times are stored as INTEGER microseconds since the Unix epoch (UTC), NULL
// for the zero time. Text filters of [device.Query] ignore case for ASCII
// letters only (SQLite's LIKE).
package sqlite
