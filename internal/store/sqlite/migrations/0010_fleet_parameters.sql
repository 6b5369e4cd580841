-- The fleet parameters (ADR 0011): one row per parameter an administrator
-- set (its value as JSON text; a parameter without a row has its default),
-- and one row holding the change counter every node polls and whether a
-- capf.json was imported. UpdateFleetParameters writes both in one
-- transaction with the audit event.

CREATE TABLE fleet_parameters (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
) STRICT, WITHOUT ROWID;

CREATE TABLE fleet_parameters_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL,
    imported INTEGER NOT NULL CHECK (imported IN (0, 1))
) STRICT;

INSERT INTO fleet_parameters_state (id, version, imported) VALUES (1, 0, 0);
