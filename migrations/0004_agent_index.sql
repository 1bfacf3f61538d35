-- convmeta schema 4. An agent's gptme.toml lies outside the logs directory, so no watch on it
-- tells a watching server that it changed: each refresh of named conversations checks the
-- conversations that use one too. This index finds them without reading every state.

CREATE INDEX IF NOT EXISTS _scan_state_agent ON _scan_state (id) WHERE agent_toml IS NOT NULL;
