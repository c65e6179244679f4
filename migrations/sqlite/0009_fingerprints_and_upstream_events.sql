-- Keys declared in the fleet file were shown by their first characters; a person-chosen key
-- can be short enough that those give much of it away. They are shown by a fingerprint of
-- their digest from now on (the key itself was never stored, its digest is).
-- The audit rows of their import named the same first characters: they say the
-- fingerprint too (before the keys themselves change, so that the rows can be matched).
UPDATE admin_audit
SET after = (
    SELECT 'key ' || k.id || ' sha256:' || substr(k.digest, 1, 12)
    FROM api_keys k
    WHERE k.created_by = 'fleet-file' AND admin_audit.after = 'key ' || k.id || ' ' || k.prefix
)
WHERE actor = 'fleet-file' AND action = 'key.issue' AND EXISTS (
    SELECT 1 FROM api_keys k
    WHERE k.created_by = 'fleet-file' AND admin_audit.after = 'key ' || k.id || ' ' || k.prefix
);

UPDATE api_keys
SET prefix = 'sha256:' || substr(digest, 1, 12)
WHERE created_by = 'fleet-file';

-- Fleet events also tell of what the gateway refused from an instance: a tool catalog over
-- its limits (`catalog`), an instance it would not start (`refused`). SQLite changes a
-- CHECK constraint by rebuilding the table.
CREATE TABLE fleet_events_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL
                CHECK (kind IN ('health', 'scale_up', 'scale_down', 'catalog', 'refused')),
    server    TEXT    NOT NULL,
    instance  TEXT,
    message   TEXT    NOT NULL,
    evidence  TEXT    NOT NULL DEFAULT '{}'
);
INSERT INTO fleet_events_new (id, at_ms, kind, server, instance, message, evidence)
    SELECT id, at_ms, kind, server, instance, message, evidence FROM fleet_events;
DROP TABLE fleet_events;
ALTER TABLE fleet_events_new RENAME TO fleet_events;
CREATE INDEX fleet_events_by_time ON fleet_events (at_ms);
