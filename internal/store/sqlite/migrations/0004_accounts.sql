-- The administrators of issue #9: accounts with their argon2id password
-- hash and login throttle, browser sessions (the id only as its SHA-256),
-- and API tokens (the secret only as its SHA-256). Names are unique
-- ignoring case.

CREATE TABLE accounts (
    name                TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash       TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_login          INTEGER,
    login_failures      INTEGER NOT NULL DEFAULT 0,
    login_blocked_until INTEGER
) STRICT;

CREATE TABLE account_sessions (
    id_hash    TEXT    NOT NULL PRIMARY KEY,
    account    TEXT    NOT NULL COLLATE NOCASE REFERENCES accounts (name) ON DELETE CASCADE ON UPDATE CASCADE,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX account_sessions_account ON account_sessions (account);
CREATE INDEX account_sessions_expires ON account_sessions (expires_at);
CREATE INDEX account_sessions_seen ON account_sessions (last_seen);

CREATE TABLE api_tokens (
    name       TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used  INTEGER,
    created_by TEXT    NOT NULL DEFAULT ''
) STRICT;
