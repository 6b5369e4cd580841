-- The CAPF schema on PostgreSQL, equal to SQLite's migrations 0001-0006
-- taken together. Times are BIGINT microseconds since the Unix epoch, UTC,
-- as on SQLite (one encoding for both backends); NULL stands for the zero
-- time. A device has an LSC when lsc_serial is not NULL. Later schema steps
-- are numbered on from 0002 here, independently of SQLite's numbering.

CREATE TABLE devices (
    name              TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    description       TEXT    NOT NULL DEFAULT '',
    security_profile  TEXT    NOT NULL DEFAULT '',
    auth_mode         TEXT    NOT NULL DEFAULT '',
    auth_string       TEXT    NOT NULL DEFAULT '',
    operation         TEXT    NOT NULL DEFAULT 'none',
    key_spec          TEXT    NOT NULL DEFAULT '',
    deadline          BIGINT,
    status            TEXT    NOT NULL DEFAULT '',
    lsc_serial        TEXT,
    lsc_issuer        TEXT,
    lsc_not_before    BIGINT,
    lsc_not_after     BIGINT,
    lsc_der           BYTEA,
    created_at        BIGINT,
    updated_at        BIGINT,
    config_rev        BIGINT  NOT NULL DEFAULT 0,
    auth_failures     BIGINT  NOT NULL DEFAULT 0,
    last_auth_failure BIGINT,
    attempts_total    BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX devices_lsc_not_after ON devices (lsc_not_after);
CREATE INDEX devices_status ON devices (status);

CREATE TABLE attempts (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device      TEXT    NOT NULL REFERENCES devices (name) ON DELETE CASCADE,
    operation   TEXT    NOT NULL DEFAULT '',
    auth_mode   TEXT    NOT NULL DEFAULT '',
    remote      TEXT    NOT NULL DEFAULT '',
    started_at  BIGINT,
    finished_at BIGINT,
    result      TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    node        TEXT    NOT NULL DEFAULT '',
    config_rev  BIGINT  NOT NULL DEFAULT 0,
    sudi        TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX attempts_device_started ON attempts (device, started_at);
CREATE INDEX attempts_open ON attempts (started_at) WHERE finished_at IS NULL;
-- At most one open attempt per device: the claim of a phone session,
-- enforced by the database for every node sharing it.
CREATE UNIQUE INDEX attempts_one_open ON attempts (device) WHERE finished_at IS NULL;
CREATE INDEX attempts_failed ON attempts (finished_at) WHERE strpos(result, ' Failed') > 0;
CREATE INDEX attempts_succeeded ON attempts (device, config_rev, result, finished_at)
    WHERE strpos(result, ' Success') > 0;

-- Issuances outlive their device: a certificate that left the CA is never
-- forgotten, so device is plain text, not a foreign key. seq orders
-- issuances of the same instant as SQLite's rowid does.
CREATE TABLE issuances (
    serial     TEXT    NOT NULL PRIMARY KEY,
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY,
    device     TEXT    NOT NULL,
    attempt_id BIGINT  NOT NULL DEFAULT 0,
    issuer     TEXT    NOT NULL DEFAULT '',
    issued_at  BIGINT,
    not_before BIGINT,
    not_after  BIGINT,
    der        BYTEA
);

CREATE INDEX issuances_device ON issuances (device, issued_at);
CREATE INDEX issuances_issued ON issuances (issued_at);

CREATE TABLE fetched_certificates (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device     TEXT    NOT NULL REFERENCES devices (name) ON DELETE CASCADE,
    type       TEXT    NOT NULL DEFAULT '',
    fetched_at BIGINT,
    der        BYTEA
);

CREATE INDEX fetched_certificates_device ON fetched_certificates (device, fetched_at);

CREATE TABLE audit_events (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT  NOT NULL,
    actor_kind   TEXT    NOT NULL DEFAULT '',
    actor_name   TEXT    NOT NULL DEFAULT '',
    actor_remote TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL,
    target       TEXT    NOT NULL DEFAULT '',
    changes      TEXT    NOT NULL DEFAULT '[]',
    detail       TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX audit_events_target ON audit_events (target, id);

-- Accounts, browser sessions and API tokens. Names are unique ignoring
-- case (SQLite's COLLATE NOCASE): a unique index on lower(name), and every
-- lookup compares lower(name). Sessions refer to their account by that key.
CREATE TABLE accounts (
    name                TEXT    NOT NULL,
    key                 TEXT    NOT NULL PRIMARY KEY GENERATED ALWAYS AS (lower(name)) STORED,
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash       TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    last_login          BIGINT,
    login_failures      BIGINT  NOT NULL DEFAULT 0,
    login_blocked_until BIGINT
);

CREATE TABLE account_sessions (
    id_hash     TEXT    NOT NULL PRIMARY KEY,
    account_key TEXT    NOT NULL REFERENCES accounts (key) ON DELETE CASCADE,
    csrf        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);

CREATE INDEX account_sessions_account ON account_sessions (account_key);
CREATE INDEX account_sessions_expires ON account_sessions (expires_at);
CREATE INDEX account_sessions_seen ON account_sessions (last_seen);

CREATE TABLE api_tokens (
    name       TEXT    NOT NULL,
    key        TEXT    NOT NULL PRIMARY KEY GENERATED ALWAYS AS (lower(name)) STORED,
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at BIGINT  NOT NULL,
    expires_at BIGINT,
    last_used  BIGINT,
    created_by TEXT    NOT NULL DEFAULT '',
    -- The account that owns the token (its key); NULL for a service token
    -- made with the local CLI. A token acts with at most its owner's
    -- current role and is deleted with the account.
    owner_key  TEXT    REFERENCES accounts (key) ON DELETE CASCADE
);

CREATE INDEX api_tokens_owner ON api_tokens (owner_key);

-- The activation of the CAPF service: one row at most; none means active,
-- never changed.
CREATE TABLE service_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    active     BOOLEAN NOT NULL,
    changed_at BIGINT,
    changed_by TEXT    NOT NULL DEFAULT ''
);

-- Campaigns and the devices each one covers, with the config_rev the
-- campaign left each at (see the SQLite migration 0006).
CREATE TABLE campaigns (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at BIGINT  NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    operation  TEXT    NOT NULL,
    search     TEXT    NOT NULL DEFAULT '',
    devices    BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX campaigns_created ON campaigns (created_at, id);

CREATE TABLE campaign_devices (
    campaign BIGINT  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    device   TEXT    NOT NULL,
    rev      BIGINT  NOT NULL,
    PRIMARY KEY (campaign, device)
);
