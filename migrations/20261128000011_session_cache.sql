-- Each instance keeps recently loaded browser sessions, with their account, in memory
-- (src/auth/cache.rs). What makes a kept copy wrong is announced on the channel
-- `portcullis_auth`, which every instance listens to; NOTIFY is transactional, so a change is
-- announced once it is committed. Payloads:
--   s:<session id>,...   these stored sessions changed or ended
--   u:<user id>          this account changed (name, role, time zone, disabled) or is gone
--   *                    forget everything (approver membership changed, or too many ids)

CREATE FUNCTION web_sessions_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
    n bigint;
BEGIN
    SELECT count(*), string_agg(id, ',') INTO n, ids FROM (SELECT id FROM changed LIMIT 101) c;
    IF n > 100 THEN
        PERFORM pg_notify('portcullis_auth', '*');
    ELSIF n > 0 THEN
        PERFORM pg_notify('portcullis_auth', 's:' || ids);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER web_sessions_updated
    AFTER UPDATE ON web_sessions REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION web_sessions_announce();
CREATE TRIGGER web_sessions_deleted
    AFTER DELETE ON web_sessions REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION web_sessions_announce();

CREATE FUNCTION users_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_auth', 'u:' || OLD.id);
    RETURN NULL;
END;
$$;
-- Only the columns a session's account is read with (db::users::CURRENT_COLUMNS): sign-in
-- bookkeeping (failed attempts, lockout) changes nothing kept.
CREATE TRIGGER users_updated
    AFTER UPDATE OF username, display_name, role, time_zone, disabled ON users
    FOR EACH ROW
    WHEN (OLD.username IS DISTINCT FROM NEW.username
          OR OLD.display_name IS DISTINCT FROM NEW.display_name
          OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.time_zone IS DISTINCT FROM NEW.time_zone
          OR OLD.disabled IS DISTINCT FROM NEW.disabled)
    EXECUTE FUNCTION users_announce();
CREATE TRIGGER users_deleted
    AFTER DELETE ON users FOR EACH ROW EXECUTE FUNCTION users_announce();

-- Whether someone is an approver depends on tiers and group memberships: rare admin changes,
-- so they simply clear every instance's copies.
CREATE FUNCTION approvers_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_auth', '*');
    RETURN NULL;
END;
$$;
CREATE TRIGGER approval_tier_users_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval_tier_users
    FOR EACH STATEMENT EXECUTE FUNCTION approvers_announce();
CREATE TRIGGER approval_tier_groups_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON approval_tier_groups
    FOR EACH STATEMENT EXECUTE FUNCTION approvers_announce();
CREATE TRIGGER group_members_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON group_members
    FOR EACH STATEMENT EXECUTE FUNCTION approvers_announce();
