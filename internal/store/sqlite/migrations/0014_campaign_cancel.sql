-- A campaign can be cancelled: its phones still waiting for its operation
-- return to No Pending Operation, and the campaign records when and by
-- whom. skipped counts the phones its search matched that it left out
-- (Delete and Troubleshoot act only on phones with an LSC on record).

ALTER TABLE campaigns ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN cancelled_at INTEGER;
ALTER TABLE campaigns ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
