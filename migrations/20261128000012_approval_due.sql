-- The worker expires a waiting request at its decision deadline or at the end of its
-- requested window, whichever comes first. That instant is now kept on each waiting session
-- (and kept right by the triggers below), so the worker finds the due ones with a range scan
-- of a small partial index instead of joining every waiting session to its request every two
-- seconds (15 ms with 7,000 waiting, and growing with them).
ALTER TABLE activity_sessions ADD COLUMN approval_due_at timestamptz;

CREATE FUNCTION approval_due(request uuid, start timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT least(r.decision_deadline, start + make_interval(mins => r.duration_minutes))
    FROM requests r WHERE r.id = request
$$;

CREATE FUNCTION activity_sessions_approval_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.approval_due_at := CASE WHEN NEW.status = 'waiting_for_approval'
                                THEN approval_due(NEW.request_id, NEW.requested_start) END;
    RETURN NEW;
END;
$$;
CREATE TRIGGER activity_sessions_approval_due
    BEFORE INSERT OR UPDATE OF status, requested_start, request_id ON activity_sessions
    FOR EACH ROW EXECUTE FUNCTION activity_sessions_approval_due();

CREATE FUNCTION requests_approval_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE activity_sessions SET approval_due_at = approval_due(NEW.id, requested_start)
    WHERE request_id = NEW.id AND status = 'waiting_for_approval';
    RETURN NULL;
END;
$$;
CREATE TRIGGER requests_approval_due
    AFTER UPDATE OF decision_deadline, duration_minutes ON requests
    FOR EACH ROW EXECUTE FUNCTION requests_approval_due();

UPDATE activity_sessions s
SET approval_due_at = least(r.decision_deadline,
                            s.requested_start + make_interval(mins => r.duration_minutes))
FROM requests r
WHERE r.id = s.request_id AND s.status = 'waiting_for_approval';

CREATE INDEX sessions_approval_due_idx ON activity_sessions (approval_due_at)
    WHERE status = 'waiting_for_approval';

-- So the planner knows at once how few sessions are due (autovacuum would tell it later).
ANALYZE activity_sessions;
