-- Revocable dashboard sessions and disabled logins (PostgreSQL twin of sqlite/0008).
--
-- A session keeps the session epoch its user had at login and is valid only while the
-- user's epoch is still that number: a password reset, a role change, disabling the user
-- and "log out everywhere" add one to it, in the transaction of the change, so every
-- other session of that user ends at its next request, on every replica (sessions are
-- read from the database on each request). Sessions made before this migration carry no
-- epoch and count as epoch 0 until the first such change.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

-- When an admin disabled the login (NULL: enabled). A disabled user cannot log in.
ALTER TABLE users ADD COLUMN disabled_at_ms BIGINT;
