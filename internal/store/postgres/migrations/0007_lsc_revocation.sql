-- The life of issued LSCs (issue 17): each issuance records the key id of
-- the CA that signed it (with the serial, the key of an LSC across several
-- CAs) and its revocation; crls holds each issuing CA's latest CRL, which
-- one node of the fleet (under a lease) generates and every node serves.

ALTER TABLE issuances ADD COLUMN issuer_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE issuances ADD COLUMN revoked_at BIGINT;
ALTER TABLE issuances ADD COLUMN revocation_reason INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issuances ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';

CREATE INDEX issuances_revoked ON issuances (issuer_key_id, revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE crls (
    issuer_key_id TEXT   NOT NULL PRIMARY KEY,
    number        BIGINT NOT NULL,
    this_update   BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    der           BYTEA  NOT NULL
);
