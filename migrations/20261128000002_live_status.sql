-- Live status: every session event with a status is announced on the channel
-- `portcullis_sessions`, so each server instance can relay it to its browsers
-- (server-sent events), whichever instance made the change. NOTIFY is transactional:
-- listeners hear of a change only once it is committed.
CREATE FUNCTION session_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s activity_sessions%ROWTYPE;
BEGIN
    SELECT * INTO s FROM activity_sessions WHERE id = NEW.session_id;
    PERFORM pg_notify('portcullis_sessions', json_build_object(
        'session', NEW.session_id,
        'request', s.request_id,
        'requester', s.requester_id,
        'resource', s.resource_name,
        'status', NEW.to_status,
        'kind', NEW.kind
    )::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER session_events_announce
    AFTER INSERT ON session_events
    FOR EACH ROW WHEN (NEW.to_status IS NOT NULL)
    EXECUTE FUNCTION session_events_notify();

-- The approvals page: waiting sessions by current tier.
CREATE INDEX approval_decisions_session_tier_idx ON approval_decisions (session_id, tier);
