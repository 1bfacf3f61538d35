-- convmeta schema 7. Earlier builds took any `[chat] context_budget`, where gptme fails on one
-- that is not a fraction (0 < x ≤ 1) or a whole token count (> 1); such a value is now counted
-- as a problem. Marking every conversation's side files as changed makes the next refresh read
-- each `config.toml` again: no log is re-read.

UPDATE _scan_state SET side_stamp = 0;
