-- One open attempt per device, held by a node; the configuration revision
-- that lets a finishing session see whether an administrator changed the
-- device since its claim; authentication-guess counters; a bounded history
-- with a total count; and the audit stream.

ALTER TABLE devices ADD COLUMN config_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_auth_failure INTEGER;
ALTER TABLE devices ADD COLUMN attempts_total INTEGER NOT NULL DEFAULT 0;

ALTER TABLE attempts ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN config_rev INTEGER NOT NULL DEFAULT 0;

-- A database written before claims may hold several open attempts for one
-- device; keep the newest open, close the others as interrupted.
UPDATE attempts
   SET finished_at = COALESCE(started_at, 0),
       result = 'Operation Failed: Interrupted By Server Restart',
       reason = 'closed by the schema upgrade: another attempt of the device was open'
 WHERE finished_at IS NULL
   AND id NOT IN (SELECT MAX(id) FROM attempts WHERE finished_at IS NULL GROUP BY device);

CREATE UNIQUE INDEX attempts_one_open ON attempts (device) WHERE finished_at IS NULL;

UPDATE devices SET attempts_total = (SELECT COUNT(*) FROM attempts WHERE attempts.device = devices.name);

-- An authentication string is only used By Authentication String.
UPDATE devices SET auth_string = '' WHERE auth_mode <> 'string';

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor_kind   TEXT    NOT NULL DEFAULT '',
    actor_name   TEXT    NOT NULL DEFAULT '',
    actor_remote TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL,
    target       TEXT    NOT NULL DEFAULT '',
    changes      TEXT    NOT NULL DEFAULT '[]',
    detail       TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_events_target ON audit_events (target, id);
