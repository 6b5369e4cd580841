-- The cluster's key material (issue #15, ADR 0009): each key's certificate
-- chain (DER, leaf first) and its PKCS #8 private key sealed with
-- AES-256-GCM under the key-encryption key whose id is kek_id. Every node
-- of the cluster loads them at start.

CREATE TABLE keys (
    id         TEXT   PRIMARY KEY COLLATE "C",
    kind       TEXT   NOT NULL CHECK (kind <> ''),
    chain      BYTEA  NOT NULL,
    sealed     BYTEA  NOT NULL,
    kek_id     TEXT   NOT NULL CHECK (kek_id <> ''),
    created_at BIGINT NOT NULL
);
