-- The separate issuing CA: see the SQLite migration 0017. One at a time
-- (slot 1); putting it in place moves ca_set_state's counter and notifies
-- the fleet channel, so every node takes it at once.

CREATE TABLE ca_issuing (
    slot       INTEGER PRIMARY KEY CHECK (slot = 1),
    id         TEXT    NOT NULL COLLATE "C" CHECK (id <> ''),
    parent_id  TEXT    NOT NULL CHECK (parent_id <> ''),
    chain      BYTEA   NOT NULL,
    key_ref    TEXT    NOT NULL CHECK (key_ref <> ''),
    created_at BIGINT  NOT NULL
);
