-- convmeta schema 10. Earlier builds took a line nested deeper than 256 levels for malformed
-- (gptme reads it: Python's limit is its stack's, about 990 levels), and counted the metadata
-- under a key spelled with escapes (`"met\u0061data"`), whose line gptme leaves out of its sums
-- when no `"metadata"` appears in its bytes. Forget where each log was read to: the next refresh
-- reads every log again from the start. Rows stay readable until it rewrites them.

UPDATE _scan_state SET log_ino = NULL;
