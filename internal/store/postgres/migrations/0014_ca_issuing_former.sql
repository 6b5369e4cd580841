-- Former issuing CAs: see the SQLite migration 0021.

CREATE TABLE ca_issuing_former (
    id         TEXT    PRIMARY KEY COLLATE "C" CHECK (id <> ''),
    parent_id  TEXT    NOT NULL CHECK (parent_id <> ''),
    chain      BYTEA   NOT NULL,
    key_ref    TEXT    NOT NULL CHECK (key_ref <> ''),
    created_at BIGINT  NOT NULL,
    removed_at BIGINT  NOT NULL
);
