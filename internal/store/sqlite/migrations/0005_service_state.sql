-- The activation of the CAPF service (Serviceability > Service Activation):
-- one row at most; none means active, never changed. `capf serve` polls it.

CREATE TABLE service_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    active     INTEGER NOT NULL CHECK (active IN (0, 1)),
    changed_at INTEGER,
    changed_by TEXT    NOT NULL DEFAULT ''
) STRICT;
