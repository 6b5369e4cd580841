-- The CA set (issue #16, ADR 0017): every CAPF certificate with its state
-- (staged, active, retiring, retired), its chain (DER, leaf first) and
-- where its private key is (a file under DATA/ca on a node that keeps its
-- keys as files, a row of keys on a cluster with a KEK). At most one CA is
-- active. ca_set_state holds the change counter every node polls; each
-- change is written with it and its audit event in one transaction. The
-- set starts empty: serve adopts the CAPF certificate in use as its first
-- active CA.

CREATE TABLE ca_set (
    id         TEXT    PRIMARY KEY CHECK (id <> ''),
    state      TEXT    NOT NULL CHECK (state IN ('staged', 'active', 'retiring', 'retired')),
    chain      BLOB    NOT NULL,
    key_ref    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX ca_set_one_active ON ca_set (state) WHERE state = 'active';

CREATE TABLE ca_set_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;

INSERT INTO ca_set_state (id, version) VALUES (1, 0);
