-- An account can be disabled without being removed: see the SQLite
-- migration 0020.

ALTER TABLE accounts ADD COLUMN disabled_at BIGINT;
