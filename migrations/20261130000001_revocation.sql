-- Revocation (issue 13). A session's connection string is an HMAC of its id and of this
-- access epoch (src/crypto.rs), so it stops verifying whenever the epoch moves: on Lock, on
-- Unlock (access given back gets a new string, so one seen before the lock stays dead) and on
-- every end, whoever or whatever causes it. The trigger moves it, so no path that changes a
-- status can forget to.
ALTER TABLE activity_sessions ADD COLUMN access_epoch integer NOT NULL DEFAULT 0;

CREATE FUNCTION activity_sessions_access_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND (OLD.status = 'locked'
            OR NEW.status IN ('locked', 'completed', 'canceled', 'approval_denied', 'expired',
                              'failed')) THEN
        NEW.access_epoch := OLD.access_epoch + 1;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER activity_sessions_access_epoch
    BEFORE UPDATE OF status ON activity_sessions
    FOR EACH ROW EXECUTE FUNCTION activity_sessions_access_epoch();
