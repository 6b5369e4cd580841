-- The cluster's key material (issue #15, ADR 0009): each key's certificate
-- chain (DER, leaf first) and its PKCS #8 private key sealed with
-- AES-256-GCM under the key-encryption key whose id is kek_id. On SQLite
-- the node's keys normally stay files in the data directory; this table is
-- what `capf cluster init` and `capf kek rotate` work on either way.

CREATE TABLE keys (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind <> ''),
    chain      BLOB    NOT NULL,
    sealed     BLOB    NOT NULL,
    kek_id     TEXT    NOT NULL CHECK (kek_id <> ''),
    created_at INTEGER NOT NULL
) STRICT;
