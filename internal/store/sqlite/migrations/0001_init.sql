-- The first CAPF schema. Times are INTEGER microseconds since the Unix epoch,
-- UTC; NULL stands for the zero time. A device has an LSC when lsc_serial is
-- not NULL.

CREATE TABLE devices (
    name             TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    description      TEXT    NOT NULL DEFAULT '',
    security_profile TEXT    NOT NULL DEFAULT '',
    auth_mode        TEXT    NOT NULL DEFAULT '',
    auth_string      TEXT    NOT NULL DEFAULT '',
    operation        TEXT    NOT NULL DEFAULT 'none',
    key_spec         TEXT    NOT NULL DEFAULT '',
    deadline         INTEGER,
    status           TEXT    NOT NULL DEFAULT '',
    lsc_serial       TEXT,
    lsc_issuer       TEXT,
    lsc_not_before   INTEGER,
    lsc_not_after    INTEGER,
    lsc_der          BLOB,
    created_at       INTEGER,
    updated_at       INTEGER
) STRICT;

CREATE INDEX devices_lsc_not_after ON devices (lsc_not_after);
CREATE INDEX devices_status ON devices (status);

CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device      TEXT    NOT NULL REFERENCES devices (name) ON DELETE CASCADE,
    operation   TEXT    NOT NULL DEFAULT '',
    auth_mode   TEXT    NOT NULL DEFAULT '',
    remote      TEXT    NOT NULL DEFAULT '',
    started_at  INTEGER,
    finished_at INTEGER,
    result      TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX attempts_device_started ON attempts (device, started_at);
CREATE INDEX attempts_open ON attempts (started_at) WHERE finished_at IS NULL;

-- Issuances outlive their device: a certificate that left the CA is never
-- forgotten, so device is plain text, not a foreign key.
CREATE TABLE issuances (
    serial     TEXT    NOT NULL PRIMARY KEY,
    device     TEXT    NOT NULL,
    attempt_id INTEGER NOT NULL DEFAULT 0,
    issuer     TEXT    NOT NULL DEFAULT '',
    issued_at  INTEGER,
    not_before INTEGER,
    not_after  INTEGER,
    der        BLOB
) STRICT;

CREATE INDEX issuances_device ON issuances (device, issued_at);
CREATE INDEX issuances_issued ON issuances (issued_at);

CREATE TABLE fetched_certificates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    device     TEXT    NOT NULL REFERENCES devices (name) ON DELETE CASCADE,
    type       TEXT    NOT NULL DEFAULT '',
    fetched_at INTEGER,
    der        BLOB
) STRICT;

CREATE INDEX fetched_certificates_device ON fetched_certificates (device, fetched_at);
