-- The fleet parameters (ADR 0011): one row per parameter an administrator
-- set (a parameter without a row has its default), and one row holding
-- the change counter and whether a capf.json was imported. A writer locks
-- that row first (SELECT ... FOR UPDATE), so writers of the parameters
-- take turns and each reads what the previous one committed.
-- UpdateFleetParameters notifies the channel capf_fleet_parameters.

CREATE TABLE fleet_parameters (
    name  TEXT  PRIMARY KEY,
    value JSON NOT NULL -- JSON, not JSONB: the text is kept as written
);

CREATE TABLE fleet_parameters_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT  NOT NULL,
    imported BOOLEAN NOT NULL
);

INSERT INTO fleet_parameters_state (id, version, imported) VALUES (1, 0, false);
