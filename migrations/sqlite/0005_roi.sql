-- ROI inputs per server, edited by admins on the ROI page (each change is audited in the
-- same transaction). Usage is not stored here: it is measured from tool_calls.

CREATE TABLE roi_inputs (
    server                TEXT    PRIMARY KEY,
    development_hours     REAL    NOT NULL CHECK (development_hours >= 0),
    hourly_rate           REAL    NOT NULL CHECK (hourly_rate >= 0),
    currency              TEXT    NOT NULL,
    default_minutes_saved REAL    NOT NULL CHECK (default_minutes_saved >= 0),
    months                INTEGER NOT NULL CHECK (months BETWEEN 1 AND 120),
    updated_at_ms         INTEGER NOT NULL,
    updated_by            TEXT    NOT NULL
);

-- Minutes saved per use of one tool, where it differs from the server's default.
CREATE TABLE roi_tool_minutes (
    server        TEXT NOT NULL REFERENCES roi_inputs (server) ON DELETE CASCADE,
    tool          TEXT NOT NULL,
    minutes_saved REAL NOT NULL CHECK (minutes_saved >= 0),
    PRIMARY KEY (server, tool)
);
