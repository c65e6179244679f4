-- The fleet's persisted state on top of the fleet file: operators' admin states, and
-- instances added while running (the file's own instances are declared there).

CREATE TABLE instance_admin_state (
    instance_id   TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL CHECK (state IN ('active', 'draining', 'drained')),
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE fleet_instances (
    id          TEXT    PRIMARY KEY,
    server      TEXT    NOT NULL,
    url         TEXT,
    command     TEXT,
    env         TEXT    NOT NULL DEFAULT '{}',
    added_at_ms INTEGER NOT NULL,
    added_by    TEXT    NOT NULL,
    CHECK ((url IS NULL) <> (command IS NULL))
);
