-- The private half of a session's own SSH key (linux_ssh ephemeral accounts), sealed with
-- the key file like the generated password; the gateway logs in upstream with it.
ALTER TABLE activity_sessions ADD COLUMN ssh_key_ciphertext bytea;

-- Wiped when the session ends, whichever path ends it (the account it opens is removed then
-- too), and when an Unlock queues a fresh grant, which makes a new key.
CREATE FUNCTION activity_sessions_wipe_session_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.ssh_key_ciphertext := NULL;
    RETURN NEW;
END;
$$;
CREATE TRIGGER activity_sessions_wipe_session_key
    BEFORE UPDATE OF status ON activity_sessions
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'canceled', 'approval_denied', 'expired', 'failed')
          OR (OLD.status = 'locked' AND NEW.status IN ('available', 'logged_in')
              AND NEW.password_ciphertext IS NULL AND OLD.password_ciphertext IS NOT NULL))
    EXECUTE FUNCTION activity_sessions_wipe_session_key();
