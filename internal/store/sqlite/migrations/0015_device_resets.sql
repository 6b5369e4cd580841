-- Each device's latest reset (Save, then Reset: a SIP NOTIFY check-sync
-- through the PBX): when, who asked, the outcome and why it failed. Owned
-- by the administrator who asked; a table of its own so that writing it
-- never touches the device row (its status, updated_at or config_rev).
CREATE TABLE device_resets (
    device  TEXT    NOT NULL PRIMARY KEY REFERENCES devices (name) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    outcome TEXT    NOT NULL CHECK (outcome IN ('ok', 'error')),
    reason  TEXT    NOT NULL DEFAULT ''
) STRICT;
