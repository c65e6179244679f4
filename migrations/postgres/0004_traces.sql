-- Traces the collector persists: errors, slow calls and a sample (see telemetry/traces).
-- `body` is the whole trace as JSON text (read back whole, never queried inside).
CREATE TABLE traces (
    trace_id      TEXT COLLATE "C"   NOT NULL,
    root_span_id  TEXT COLLATE "C"   NOT NULL,
    started_at_ms BIGINT NOT NULL,
    duration_ms   DOUBLE PRECISION NOT NULL,
    root          TEXT COLLATE "C"   NOT NULL,
    tool          TEXT,
    assistant     TEXT,
    status        TEXT COLLATE "C"   NOT NULL CHECK (status IN ('ok', 'error')),
    span_count    BIGINT NOT NULL,
    retries       BIGINT NOT NULL,
    body          TEXT COLLATE "C"   NOT NULL,
    PRIMARY KEY (trace_id, root_span_id)
);

CREATE INDEX traces_by_time ON traces (started_at_ms);
