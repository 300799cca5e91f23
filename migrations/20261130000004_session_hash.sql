-- Browser sessions are stored under the SHA-256 of their id (lowercase hex), never under the
-- id itself: the id is the session cookie's value, and a copy of this table (a backup, a
-- replica, a dump) must not hold live sign-ins (src/auth/store.rs, `stored_id`). Sessions
-- already stored keep working: their rows move to the digest of their id.
UPDATE web_sessions SET id = encode(sha256(convert_to(id, 'UTF8')), 'hex');

-- Nothing else can be stored by mistake.
ALTER TABLE web_sessions
    ADD CONSTRAINT web_sessions_id_is_a_digest CHECK (id ~ '^[0-9a-f]{64}$');
