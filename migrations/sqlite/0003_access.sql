-- Access: assistants (MCP clients of the gateway), their API keys, per-tool permissions,
-- and the audit log of every tool call.

CREATE TABLE assistants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    tier          TEXT    NOT NULL CHECK (tier IN ('viewer', 'developer', 'admin')),
    created_at_ms INTEGER NOT NULL,
    created_by    TEXT    NOT NULL
);

-- Keys are stored as the SHA-256 digest of the whole key (they are 190+ random bits, so a
-- fast digest is safe and keeps authentication off argon2's cost); the prefix only tells
-- keys apart on the dashboard.
CREATE TABLE api_keys (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    assistant_id    INTEGER NOT NULL REFERENCES assistants (id) ON DELETE CASCADE,
    prefix          TEXT    NOT NULL,
    digest          TEXT    NOT NULL UNIQUE,
    created_at_ms   INTEGER NOT NULL,
    created_by      TEXT    NOT NULL,
    revoked_at_ms   INTEGER,
    last_used_at_ms INTEGER
);

CREATE INDEX api_keys_by_assistant ON api_keys (assistant_id);

-- Explicit decisions; they override the tier's patterns. tool = '*' covers every tool of
-- the server (a bulk grant or revoke); an entry for the tool itself wins over it.
CREATE TABLE permissions (
    assistant_id  INTEGER NOT NULL REFERENCES assistants (id) ON DELETE CASCADE,
    server        TEXT    NOT NULL,
    tool          TEXT    NOT NULL,
    decision      TEXT    NOT NULL CHECK (decision IN ('allow', 'deny')),
    updated_at_ms INTEGER NOT NULL,
    updated_by    TEXT    NOT NULL,
    PRIMARY KEY (assistant_id, server, tool)
);

-- Bumped by every change to assistants, keys or permissions, in the same transaction, so
-- that a running gateway notices changes made by another process (the CLI) and reloads.
CREATE TABLE access_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);

INSERT INTO access_revision (id, revision) VALUES (1, 0);

-- Every tool call through the gateway, written in batches off the hot path.
CREATE TABLE tool_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    assistant   TEXT    NOT NULL,
    server      TEXT    NOT NULL,
    tool        TEXT    NOT NULL,
    instance    TEXT,
    outcome     TEXT    NOT NULL CHECK (outcome IN
                  ('ok', 'tool_error', 'failed', 'denied', 'rate_limited', 'rejected', 'cancelled')),
    cache_hit   INTEGER NOT NULL DEFAULT 0,
    duration_ms REAL    NOT NULL,
    attempts    INTEGER NOT NULL,
    trace_id    TEXT,
    args_digest TEXT    NOT NULL,
    arguments   TEXT,
    error       TEXT
);

CREATE INDEX tool_calls_by_time ON tool_calls (at_ms);
CREATE INDEX tool_calls_by_assistant ON tool_calls (assistant, at_ms);
CREATE INDEX tool_calls_by_tool ON tool_calls (server, tool, at_ms);
CREATE INDEX admin_audit_by_actor ON admin_audit (actor, at_ms);
