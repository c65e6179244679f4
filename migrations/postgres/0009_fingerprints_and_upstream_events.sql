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
-- its limits (`catalog`), an instance it would not start (`refused`).
ALTER TABLE fleet_events DROP CONSTRAINT fleet_events_kind_check;
ALTER TABLE fleet_events ADD CONSTRAINT fleet_events_kind_check
    CHECK (kind IN ('health', 'scale_up', 'scale_down', 'catalog', 'refused'));
