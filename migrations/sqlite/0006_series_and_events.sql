-- Per-minute series of the fleet (telemetry::series): one row per minute per series, where
-- an empty server, instance or tool means "all" ('', '', '' is the whole fleet).
CREATE TABLE series_minutes (
    server        TEXT    NOT NULL,
    instance      TEXT    NOT NULL,
    tool          TEXT    NOT NULL,
    minute_ms     INTEGER NOT NULL,
    calls         INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    cache_lookups INTEGER NOT NULL,
    cache_hits    INTEGER NOT NULL,
    p50_ms        REAL,
    p95_ms        REAL,
    p99_ms        REAL,
    utilisation   REAL,
    PRIMARY KEY (server, instance, tool, minute_ms)
);

-- Retention deletes by age.
CREATE INDEX series_minutes_by_minute ON series_minutes (minute_ms);

-- What happened to the fleet that operators should see: health changes and capacity advice,
-- each with its evidence (JSON).
CREATE TABLE fleet_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('health', 'scale_up', 'scale_down')),
    server    TEXT    NOT NULL,
    instance  TEXT,
    message   TEXT    NOT NULL,
    evidence  TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX fleet_events_by_time ON fleet_events (at_ms);
