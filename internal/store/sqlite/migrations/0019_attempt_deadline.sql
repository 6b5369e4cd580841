-- Each open attempt records how long its session may run (issue #15,
-- ADR 0011 "The sweeper follows the parameters"): the claim stores the
-- latest its session may still be running, from the key-generation time
-- and the message timeout the session read, and the stale-attempt sweeper
-- fails an attempt only after that. A sweeper node started after an
-- administrator lowered key_generation_max_time no longer bounds the
-- sessions started under the old, longer value by the new one. NULL for
-- the attempts stored before, which the sweeper bounds as it did.

ALTER TABLE attempts ADD COLUMN deadline INTEGER;
