-- Campaigns: one bulk operation scheduled, in one administrative action, for
-- every phone a Find Phone search matched, and the list of those phones.
-- A campaign's progress is computed from its devices' rows, attempts and
-- status in one aggregate query; nothing here is updated as sessions run.

CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    operation  TEXT    NOT NULL,
    search     TEXT    NOT NULL DEFAULT '',
    devices    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX campaigns_created ON campaigns (created_at, id);

-- device is plain text, not a foreign key: a phone removed after the
-- campaign stays in its list (counted as other). rev is the device's
-- config_rev as the campaign left it: an attempt at that revision acted on
-- the campaign's configuration, and a device whose revision moved on was
-- re-armed by someone else.
CREATE TABLE campaign_devices (
    campaign INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    device   TEXT    NOT NULL,
    rev      INTEGER NOT NULL,
    PRIMARY KEY (campaign, device)
) STRICT, WITHOUT ROWID;

-- The dashboard's latest failed attempts across all devices, newest first,
-- without scanning the whole history.
CREATE INDEX attempts_failed ON attempts (finished_at) WHERE instr(result, ' Failed') > 0;

-- A campaign's completions: each device's successful attempts, by the
-- revision they acted on, found without reading the device's failures.
CREATE INDEX attempts_succeeded ON attempts (device, config_rev, result, finished_at)
    WHERE instr(result, ' Success') > 0;
