-- Keys declared in the fleet file were shown by their first characters; a person-chosen key
-- can be short enough that those give much of it away. They are shown by a fingerprint of
-- their digest from now on (the key itself was never stored, its digest is).
UPDATE api_keys
SET prefix = 'sha256:' || substr(digest, 1, 12)
WHERE created_by = 'fleet-file';

-- Fleet events also tell of what the gateway refused from an instance: a tool catalog over
-- its limits (`catalog`), an instance it would not start (`refused`).
ALTER TABLE fleet_events DROP CONSTRAINT fleet_events_kind_check;
ALTER TABLE fleet_events ADD CONSTRAINT fleet_events_kind_check
    CHECK (kind IN ('health', 'scale_up', 'scale_down', 'catalog', 'refused'));
