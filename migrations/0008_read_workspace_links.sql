-- convmeta schema 8. When a `config.toml` names no workspace, gptme takes the conversation's
-- `workspace` entry if it leads anywhere: where that entry is a symlink, its target (outside
-- the archive) decides. Such conversations are now marked, so that a sweep looks at the target
-- too and a refresh of named conversations (watch mode) takes them along. Marking every
-- conversation's side files as changed makes the next refresh read them again and mark them:
-- no log is re-read.

ALTER TABLE _scan_state ADD COLUMN workspace_linked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX _scan_state_workspace_linked ON _scan_state (id) WHERE workspace_linked;
UPDATE _scan_state SET side_stamp = 0;
