-- An account can be disabled without being removed: when an administrator
-- disabled it, NULL while it is enabled. A disabled account cannot log in,
-- has no sessions, and the API tokens it owns act with no role.

ALTER TABLE accounts ADD COLUMN disabled_at INTEGER;
