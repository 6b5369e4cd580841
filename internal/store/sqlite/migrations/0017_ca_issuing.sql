-- The separate issuing CA (issue #16, ADR 0017 "A separate issuing CA"):
-- an optional CA certificate below a CAPF certificate of the set that
-- signs new LSCs while TLS presents the active CAPF certificate. One at a
-- time (slot 1). Its key is named as the set's are: a row of keys on a
-- cluster with a KEK, DATA/ca/issuing on a node that keeps its keys as
-- files. Putting it in place moves ca_set_state's counter, so every node
-- takes it with the set, without a restart.

CREATE TABLE ca_issuing (
    slot       INTEGER PRIMARY KEY CHECK (slot = 1),
    id         TEXT    NOT NULL CHECK (id <> ''),
    parent_id  TEXT    NOT NULL CHECK (parent_id <> ''),
    chain      BLOB    NOT NULL,
    key_ref    TEXT    NOT NULL CHECK (key_ref <> ''),
    created_at INTEGER NOT NULL
) STRICT;
