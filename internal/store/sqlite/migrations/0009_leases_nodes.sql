-- Leases for the once-per-fleet jobs (one row per job name: holder node,
-- term, expiry) and the node registry (one row per `capf serve` node,
-- kept current by its heartbeat). See ADR 0010. With one node per SQLite
-- file they hold one holder and one node; the contract is the same.

CREATE TABLE leases (
    name        TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    holder      TEXT    NOT NULL DEFAULT '',
    term        INTEGER NOT NULL DEFAULT 0,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE nodes (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    addresses  TEXT    NOT NULL DEFAULT '',
    version    TEXT    NOT NULL DEFAULT '',
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    sessions   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The authentication-string guesses of each source address in the last
-- window (auth_failures_per_address); the sweeper prunes what left it.
CREATE TABLE address_guesses (
    id      INTEGER PRIMARY KEY,
    address TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX address_guesses_address_at ON address_guesses (address, at);
CREATE INDEX address_guesses_at ON address_guesses (at);
