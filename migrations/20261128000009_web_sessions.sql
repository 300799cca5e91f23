-- Browser sessions, kept by our own store (src/auth/store.rs) instead of the generic
-- tower_sessions table: each row names the account it is signed in as, so that the query
-- that loads a session also loads its user in the same round trip.
CREATE TABLE web_sessions (
    id          text PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    data        bytea NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id) WHERE user_id IS NOT NULL;

-- The generic store's table, if an earlier version made it: its sessions end here (everyone
-- signs in again once).
DROP SCHEMA IF EXISTS tower_sessions CASCADE;
