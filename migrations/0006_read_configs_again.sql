-- convmeta schema 6. Earlier builds gave the conversation's directory for `workspace = ""`,
-- where gptme resolves the empty path to its working directory, and knew an older list of
-- gptme's `[chat]` keys (missing ones now counted as problems; `env` and `mcp` inside `[chat]`
-- not). Marking every conversation's side files as changed makes the next refresh read each
-- `config.toml` again: no log is re-read.

UPDATE _scan_state SET side_stamp = 0;
