-- Former issuing CAs (ADR 0017, "A removed issuing CA stays trusted"): an
-- issuing CA that capf ca issuer remove took out of place keeps being an
-- LSC trust anchor and the signer of its LSCs' CRL and OCSP answers, so
-- that phones holding its LSCs do not fall off a cliff, until capf ca
-- issuer forget drops it (row and key). Its key keeps its reference
-- (issuing-ID): the keys row on a cluster with a KEK, DATA/ca/issuing-ID
-- on a node that keeps its keys as files.

CREATE TABLE ca_issuing_former (
    id         TEXT    PRIMARY KEY CHECK (id <> ''),
    parent_id  TEXT    NOT NULL CHECK (parent_id <> ''),
    chain      BLOB    NOT NULL,
    key_ref    TEXT    NOT NULL CHECK (key_ref <> ''),
    created_at INTEGER NOT NULL,
    removed_at INTEGER NOT NULL
) STRICT;
