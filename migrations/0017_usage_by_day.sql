-- convmeta schema 17. `conversation_days`: each conversation's `conversation_models` split by
-- the day each message was written, as its timestamp reads (see docs/schema.md). Filled as
-- logs are read: the logs of conversations that have usage are read again from the start at
-- the next refresh (no stored inode means "not the same file"). Rows stay readable until it
-- rewrites them.

CREATE TABLE conversation_days (
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    day               TEXT NOT NULL,
    model             TEXT NOT NULL,
    cost              REAL NOT NULL,
    input_tokens      INTEGER NOT NULL,
    output_tokens     INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, day, model)
) WITHOUT ROWID;

UPDATE _scan_state SET log_ino = NULL
WHERE NOT json_valid(accumulator) OR json_array_length(accumulator, '$.models_usage') > 0;
