-- Reserved for issue #9; filled in by its own change.
SELECT 1;
