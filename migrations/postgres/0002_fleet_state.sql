-- The fleet's persisted state on top of the fleet file: operators' admin states, and
-- instances added while running (the file's own instances are declared there).

CREATE TABLE instance_admin_state (
    instance_id   TEXT COLLATE "C"   PRIMARY KEY,
    state         TEXT COLLATE "C"   NOT NULL CHECK (state IN ('active', 'draining', 'drained')),
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE fleet_instances (
    id          TEXT COLLATE "C"   PRIMARY KEY,
    server      TEXT COLLATE "C"   NOT NULL,
    url         TEXT,
    command     TEXT,
    env         TEXT COLLATE "C"   NOT NULL DEFAULT '{}',
    added_at_ms BIGINT NOT NULL,
    added_by    TEXT COLLATE "C"   NOT NULL,
    CHECK ((url IS NULL) <> (command IS NULL))
);
