-- A phone's latest contact with the service, whatever became of it (a
-- session, or a RETRY_LATER before one started): when, from where, the
-- outcome and why. Session-owned: administrators' writes never touch it.
-- NULL last_contact_at: no contact on record.

ALTER TABLE devices ADD COLUMN last_contact_at INTEGER;
ALTER TABLE devices ADD COLUMN last_contact_remote TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_contact_outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_contact_reason TEXT NOT NULL DEFAULT '';
