-- convmeta schema 11. Earlier builds refused a `config.toml` or agent `gptme.toml` that is not
-- UTF-8, where gptme reads it with U+FFFD for the bad bytes and uses what it says, and they did
-- not count what gptme's ProjectConfig and MCP settings refuse, nor a `~user` for no user.
-- Marking every conversation's side files as changed makes the next refresh read them again:
-- no log is re-read.

UPDATE _scan_state SET side_stamp = 0;
