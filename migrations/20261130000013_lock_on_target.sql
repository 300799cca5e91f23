-- Lock on the target (issue 14): when the activity says so (`activities.revoke_on_lock`), a
-- Lock removes the session's access on its target and the Unlock grants it afresh (a new
-- password). A session may so hold several grants in turn: each grant and the revoke that
-- undoes it share a round, 0 for the first grant, one more for each grant after an Unlock.
ALTER TABLE provision_steps ADD COLUMN round integer NOT NULL DEFAULT 0;
ALTER TABLE provision_steps
    DROP CONSTRAINT provision_steps_one_per_action,
    ADD CONSTRAINT provision_steps_one_per_round UNIQUE (session_id, action, round),
    ADD CONSTRAINT provision_steps_round CHECK (round >= 0);

-- The revoke undoes the session's latest grant, copying what it recorded. An end queues it
-- (as before), and so does a Lock when the session's activity removes the access on Lock. A
-- revoke already queued for that grant (a Lock, then the end) is not queued twice.
CREATE OR REPLACE FUNCTION provision_steps_queue_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'locked' AND NOT EXISTS (
        SELECT 1 FROM requests r JOIN activities a ON a.id = r.activity_id
        WHERE r.id = NEW.request_id AND a.revoke_on_lock
    ) THEN
        RETURN NULL;
    END IF;
    INSERT INTO provision_steps (session_id, action, round, provisioner, credential_id, host,
                                 port, host_key, login_mode, account, target_groups,
                                 database_name, provisioner_command, owned_objects)
    SELECT g.session_id, 'revoke', g.round, g.provisioner, g.credential_id, g.host, g.port,
           g.host_key, g.login_mode, g.account, g.target_groups, g.database_name,
           g.provisioner_command, g.owned_objects
    FROM provision_steps g
    WHERE g.session_id = NEW.id AND g.action = 'grant'
    ORDER BY g.round DESC
    LIMIT 1
    ON CONFLICT (session_id, action, round) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('portcullis_provision', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER activity_sessions_queue_revoke ON activity_sessions;
CREATE TRIGGER activity_sessions_queue_revoke
    AFTER UPDATE OF status ON activity_sessions
    FOR EACH ROW
    WHEN (NEW.status IN ('locked', 'completed', 'canceled', 'approval_denied', 'expired', 'failed')
          AND OLD.status NOT IN ('completed', 'canceled', 'approval_denied', 'expired', 'failed')
          AND NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION provision_steps_queue_revoke();

-- An Unlock of a session whose latest grant was revoked (by its Lock) queues a fresh grant of
-- the same account in the next round, for the worker; the password revealed before the Lock
-- no longer works, so it is no longer shown (the fresh grant stores the new one).
CREATE FUNCTION provision_steps_queue_regrant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO provision_steps (session_id, action, round, provisioner, credential_id, host,
                                 port, host_key, login_mode, account, target_groups,
                                 database_name, provisioner_command, owned_objects)
    SELECT g.session_id, 'grant', g.round + 1, g.provisioner, g.credential_id, g.host, g.port,
           g.host_key, g.login_mode, g.account, g.target_groups, g.database_name,
           g.provisioner_command, g.owned_objects
    FROM provision_steps g
    WHERE g.session_id = NEW.id AND g.action = 'revoke'
      AND g.round = (SELECT max(m.round) FROM provision_steps m
                     WHERE m.session_id = NEW.id AND m.action = 'grant')
    ON CONFLICT (session_id, action, round) DO NOTHING;
    IF FOUND THEN
        NEW.password_ciphertext := NULL;
        PERFORM pg_notify('portcullis_provision', NEW.id::text);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER activity_sessions_queue_regrant
    BEFORE UPDATE OF status ON activity_sessions
    FOR EACH ROW
    WHEN (OLD.status = 'locked' AND NEW.status IN ('available', 'logged_in'))
    EXECUTE FUNCTION provision_steps_queue_regrant();
