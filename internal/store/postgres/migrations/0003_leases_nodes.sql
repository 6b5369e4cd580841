-- Leases for the once-per-fleet jobs (one row per job name: holder node,
-- term, expiry) and the node registry (one row per `capf serve` node,
-- kept current by its heartbeat). See ADR 0010. Times are BIGINT
-- microseconds since the epoch, as elsewhere.

CREATE TABLE leases (
    name        TEXT   NOT NULL PRIMARY KEY CHECK (name <> ''),
    holder      TEXT   NOT NULL DEFAULT '',
    term        BIGINT NOT NULL DEFAULT 0,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE nodes (
    id         TEXT   NOT NULL PRIMARY KEY CHECK (id <> ''),
    addresses  TEXT   NOT NULL DEFAULT '',
    version    TEXT   NOT NULL DEFAULT '',
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    sessions   BIGINT NOT NULL DEFAULT 0
);

-- The authentication-string guesses of each source address in the last
-- window (auth_failures_per_address), shared by every node; the sweeper
-- prunes what left the window.
CREATE TABLE address_guesses (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address TEXT   NOT NULL,
    at      BIGINT NOT NULL
);

CREATE INDEX address_guesses_address_at ON address_guesses (address, at);
CREATE INDEX address_guesses_at ON address_guesses (at);
