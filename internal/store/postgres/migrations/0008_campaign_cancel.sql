-- A campaign can be cancelled; see the SQLite migration 0014.

ALTER TABLE campaigns ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN cancelled_at BIGINT;
ALTER TABLE campaigns ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
