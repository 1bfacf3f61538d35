-- convmeta schema 5. Earlier builds gave `agent_path` as `[chat].agent` was written; gptme
-- expands `~` and resolves the path (symlinks, `..`, a trailing slash, a relative path). Marking
-- the side files of conversations that use an agent as changed makes the next refresh read
-- their `config.toml` and the agent's `gptme.toml` again: no log is re-read.

UPDATE _scan_state SET side_stamp = 0 WHERE agent_toml IS NOT NULL;
