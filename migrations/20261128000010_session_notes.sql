-- Each session carries its request's notes and ticket number, so that the dashboard reads a
-- page of sessions from one table (an index scan on the requester) instead of looking up the
-- request of every row. Both are written once, when the request is made, and never change.
ALTER TABLE activity_sessions
    ADD COLUMN notes text NOT NULL DEFAULT '',
    ADD COLUMN ticket_number text NOT NULL DEFAULT '';

UPDATE activity_sessions s
SET notes = r.notes, ticket_number = r.ticket_number
FROM requests r
WHERE r.id = s.request_id AND (r.notes <> '' OR r.ticket_number <> '');

-- A request's notes and ticket number are fixed once made, as their copies assume.
CREATE FUNCTION requests_notes_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.notes IS DISTINCT FROM OLD.notes
       OR NEW.ticket_number IS DISTINCT FROM OLD.ticket_number THEN
        RAISE EXCEPTION 'a request''s notes and ticket number cannot change';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER requests_notes_fixed BEFORE UPDATE OF notes, ticket_number ON requests
    FOR EACH ROW EXECUTE FUNCTION requests_notes_fixed();
