-- One index of the open attempts, not two. attempts_one_open (device)
-- WHERE finished_at IS NULL, which refuses a second open attempt per
-- device, also serves every query of the open attempts (their count
-- under max_concurrent_operations, the stale-attempt sweeper, which
-- sorts the few open ones); attempts_open (started_at) with the same
-- condition only cost every enrolment an index entry written at the
-- claim and removed at the finish: two of its ~26 WAL pages
-- (docs/performance.md, 2026-12-04).

DROP INDEX attempts_open;
