-- convmeta schema 3. Earlier builds read a naive timestamp that falls in a daylight-saving gap
-- or overlap differently from Python (which gptme uses), so a `created` could be an hour off.
-- Forget where each log was read to (no stored inode means "not the same file"): the next
-- refresh reads every log again from the start. Rows stay readable until it rewrites them.

UPDATE _scan_state SET log_ino = NULL;
