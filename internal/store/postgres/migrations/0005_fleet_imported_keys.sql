-- Which fleet parameters a capf.json was imported for (ADR 0011, amended):
-- the list of fleet keys grows as node settings become fleet parameters,
-- and a key that moves later is imported once from the capf.json of the
-- first node that starts the version that moved it. A database already
-- imported holds the nine keys of the first import.

ALTER TABLE fleet_parameters_state
    ADD COLUMN imported_keys JSONB NOT NULL DEFAULT '[]';

UPDATE fleet_parameters_state
   SET imported_keys = '["auth_string_backoff","auth_string_max_failures","default_key","key_generation_max_attempts","key_generation_max_time","maintenance_time_zone","maintenance_windows","message_timeout","retry_delay"]'
 WHERE imported;
