-- Traces the collector persists: errors, slow calls and a sample (see telemetry/traces).
-- One row per root span of ours; a client reusing its trace id for several calls gets
-- several rows with that trace id. `body` is the whole trace as JSON (spans, events).
CREATE TABLE traces (
    trace_id      TEXT    NOT NULL,
    root_span_id  TEXT    NOT NULL,
    started_at_ms INTEGER NOT NULL,
    duration_ms   REAL    NOT NULL,
    root          TEXT    NOT NULL,
    tool          TEXT,
    assistant     TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('ok', 'error')),
    span_count    INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (trace_id, root_span_id)
);

CREATE INDEX traces_by_time ON traces (started_at_ms);
