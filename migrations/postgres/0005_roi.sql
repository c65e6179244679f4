-- ROI inputs per server, edited by admins on the ROI page (each change is audited in the
-- same transaction). Usage is not stored here: it is measured from tool_calls.

CREATE TABLE roi_inputs (
    server                TEXT COLLATE "C"             PRIMARY KEY,
    development_hours     DOUBLE PRECISION NOT NULL CHECK (development_hours >= 0),
    hourly_rate           DOUBLE PRECISION NOT NULL CHECK (hourly_rate >= 0),
    currency              TEXT COLLATE "C"             NOT NULL,
    default_minutes_saved DOUBLE PRECISION NOT NULL CHECK (default_minutes_saved >= 0),
    months                BIGINT           NOT NULL CHECK (months BETWEEN 1 AND 120),
    updated_at_ms         BIGINT           NOT NULL,
    updated_by            TEXT COLLATE "C"             NOT NULL
);

-- Minutes saved per use of one tool, where it differs from the server's default.
CREATE TABLE roi_tool_minutes (
    server        TEXT COLLATE "C"             NOT NULL REFERENCES roi_inputs (server) ON DELETE CASCADE,
    tool          TEXT COLLATE "C"             NOT NULL,
    minutes_saved DOUBLE PRECISION NOT NULL CHECK (minutes_saved >= 0),
    PRIMARY KEY (server, tool)
);
