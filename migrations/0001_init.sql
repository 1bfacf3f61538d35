-- convmeta schema 1. Public: conversations, conversation_models (see docs/schema.md).
-- Internal (names start with an underscore): _scan_state, _meta. Never edit a landed migration;
-- add the next file instead.

CREATE TABLE conversations (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    path                    TEXT NOT NULL,
    created                 REAL NOT NULL,
    modified                REAL NOT NULL,
    messages                INTEGER NOT NULL,
    branches                INTEGER NOT NULL,
    workspace               TEXT NOT NULL,
    agent_name              TEXT,
    agent_path              TEXT,
    agent_avatar            TEXT,
    agent_urls              TEXT,
    model                   TEXT,
    total_cost              REAL NOT NULL,
    total_input_tokens      INTEGER NOT NULL,
    total_output_tokens     INTEGER NOT NULL,
    total_cache_read_tokens INTEGER NOT NULL,
    models_usage            TEXT NOT NULL,
    last_message_role       TEXT,
    last_message_preview    TEXT,
    hidden                  INTEGER NOT NULL,
    problems                INTEGER NOT NULL,
    problem_notes           TEXT,
    item_json               TEXT NOT NULL,
    created_at              TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%fZ', created, 'unixepoch')) VIRTUAL,
    modified_at             TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%fZ', modified, 'unixepoch')) VIRTUAL
);

CREATE INDEX conversations_newest ON conversations (hidden, modified DESC, id DESC);

CREATE TABLE conversation_models (
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    model             TEXT NOT NULL,
    cost              REAL NOT NULL,
    input_tokens      INTEGER NOT NULL,
    output_tokens     INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, model)
) WITHOUT ROWID;

CREATE TABLE _scan_state (
    id              TEXT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    log_ino         INTEGER,
    log_size        INTEGER,
    log_mtime_ns    INTEGER,
    log_offset      INTEGER NOT NULL,
    log_fingerprint INTEGER NOT NULL,
    accumulator     TEXT NOT NULL,
    side_stamp      INTEGER NOT NULL,
    agent_toml      TEXT,
    side            TEXT NOT NULL
);

CREATE TABLE _meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
