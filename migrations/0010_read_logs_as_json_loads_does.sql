-- convmeta schema 10. Earlier builds read some lines otherwise than gptme's `json.loads` does:
-- nesting deeper than 256 levels was malformed (Python reads about 990), an integer of more
-- than 4300 digits was read (Python refuses it, so gptme skips the line), bytes that encode a
-- surrogate became three U+FFFD in a preview (Python reads the lone surrogate), and metadata
-- under a key spelled with escapes (`"met\u0061data"`) was counted (gptme's sums skip a line
-- whose bytes do not hold `"metadata"`). Forget where each log was read to: the next refresh
-- reads every log again from the start. Rows stay readable until it rewrites them.

UPDATE _scan_state SET log_ino = NULL;
