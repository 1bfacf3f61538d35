-- convmeta schema 13. A workspace or agent path resolved through a symlink outside the archive
-- (`workspace = "~/current/proj"`, `~/current` re-pointed) changed gptme's answer and not ours:
-- only a `<dir>/workspace` symlink's target was watched. Each conversation now keeps the paths
-- whose resolution went through such a symlink (a JSON array, NULL for none); a sweep resolves
-- them again and a refresh of named conversations (watch mode) takes them along. Marking every
-- conversation's side files as changed makes the next refresh read them again and note the
-- paths: no log is re-read.

DROP INDEX _scan_state_workspace_linked;
ALTER TABLE _scan_state DROP COLUMN workspace_linked;
ALTER TABLE _scan_state ADD COLUMN link_paths TEXT;
CREATE INDEX _scan_state_linked ON _scan_state (id) WHERE link_paths IS NOT NULL;
UPDATE _scan_state SET side_stamp = 0;
