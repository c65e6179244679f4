-- Dashboard sessions, in the layout of tower-sessions' PostgresStore. Created here, not by
-- the session store's own `migrate`, so that replicas starting together create it once under
-- the migration lock (the store's check-then-create races between processes).
CREATE TABLE session (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    data        BYTEA       NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);

-- Expired sessions are deleted every minute by every replica.
CREATE INDEX session_by_expiry ON session (expiry_date);
