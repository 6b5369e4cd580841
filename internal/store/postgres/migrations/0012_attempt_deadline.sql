-- Each open attempt records how long its session may run: see the SQLite
-- migration 0019. NULL for the attempts stored before.

ALTER TABLE attempts ADD COLUMN deadline BIGINT;
