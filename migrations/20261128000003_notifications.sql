-- Email notifications: a queue filled by a trigger on session_events and drained by the
-- sender task (src/notify) when SMTP is configured. Transitions never wait for mail: the
-- trigger only inserts a row, and the sender works outside their transactions.

CREATE TYPE notification_kind AS ENUM (
    -- Approvers of the tier now deciding: a request arrived, or the previous tier agreed.
    'approval_needed',
    -- The requester: the last tier agreed (Pending or Provisioning).
    'approved',
    -- The requester: an approver denied it (Approval Denied).
    'denied',
    -- The requester: no decision came in time (Expired).
    'expired',
    -- The requester: a usable session ends within ten minutes (enqueued by the sender).
    'ending_soon'
);

-- One row per event to tell about (per session, not per recipient: recipients are looked up
-- when the mail is written, so a changed address or a disabled account is respected).
-- Rows of one request and kind that are due together go out as one email per recipient.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    kind            notification_kind NOT NULL,
    -- The event that caused it; NULL for ending_soon, which no event causes.
    event_id        bigint REFERENCES session_events (id),
    session_id      uuid NOT NULL REFERENCES activity_sessions (id),
    -- Copied from the session: rows are grouped by request without a join.
    request_id      uuid NOT NULL REFERENCES requests (id),
    -- approval_needed: the tier whose approvers are asked.
    tier            smallint,
    -- ending_soon: the end it warns about (an extension moves the end and earns a new warning).
    ends_at         timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    -- When the sender should (re)try; NULL once finished (sent, skipped or given up).
    -- While a sender works on a row this is pushed a few minutes ahead (a lease), so other
    -- instances leave it alone without a lock being held across SMTP.
    next_attempt_at timestamptz DEFAULT now(),
    -- Users who have been mailed about this row, so a retry reaches only the others.
    delivered_to    uuid[] NOT NULL DEFAULT '{}',
    -- Every recipient with an address has it (an empty delivered_to: nobody had one).
    sent_at         timestamptz,
    -- Why it was dropped unsent: no longer true when its turn came, or too old.
    skipped         text,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_event_key UNIQUE (event_id),
    CONSTRAINT notifications_event_or_warning CHECK ((kind = 'ending_soon') = (event_id IS NULL)),
    CONSTRAINT notifications_tier CHECK (
        (kind = 'approval_needed') = (tier IS NOT NULL) AND (tier IS NULL OR tier BETWEEN 1 AND 3)
    ),
    CONSTRAINT notifications_ends_at CHECK ((kind = 'ending_soon') = (ends_at IS NOT NULL)),
    CONSTRAINT notifications_attempts CHECK (attempts BETWEEN 0 AND 100),
    CONSTRAINT notifications_finished CHECK (
        NOT (sent_at IS NOT NULL AND skipped IS NOT NULL)
        AND (next_attempt_at IS NULL OR (sent_at IS NULL AND skipped IS NULL))
    ),
    CONSTRAINT notifications_skipped_length CHECK (char_length(skipped) <= 500),
    CONSTRAINT notifications_last_error_length CHECK (char_length(last_error) <= 2000)
);
-- The sender's claim: the few rows still to do, oldest due first.
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at, id)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX notifications_request_idx ON notifications (request_id, kind);
-- One warning per session and end time, however many instances scan for them.
CREATE UNIQUE INDEX notifications_ending_soon_key ON notifications (session_id, ends_at)
    WHERE kind = 'ending_soon';

-- Enqueues the events that need an email. Written so that it cannot fail: every value it
-- inserts satisfies the constraints above by construction, and an event it does not know
-- enqueues nothing.
CREATE FUNCTION notifications_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k notification_kind;
    s record;
BEGIN
    k := CASE
        WHEN NEW.kind IN ('requested', 'tier_approved')
             AND NEW.to_status = 'waiting_for_approval' THEN 'approval_needed'
        WHEN NEW.kind = 'approved' THEN 'approved'
        WHEN NEW.kind = 'denied' THEN 'denied'
        WHEN NEW.kind = 'expired' THEN 'expired'
    END;
    IF k IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT request_id, current_tier INTO s FROM activity_sessions WHERE id = NEW.session_id;
    IF k = 'approval_needed' AND s.current_tier IS NULL THEN
        -- Not waiting at any tier (cannot happen for the events above): nobody to ask.
        RETURN NULL;
    END IF;
    INSERT INTO notifications (kind, event_id, session_id, request_id, tier)
    VALUES (k, NEW.id, NEW.session_id, s.request_id,
            CASE WHEN k = 'approval_needed' THEN s.current_tier END);
    RETURN NULL;
END;
$$;
CREATE TRIGGER session_events_enqueue_notifications
    AFTER INSERT ON session_events
    FOR EACH ROW WHEN (NEW.kind IN ('requested', 'tier_approved', 'approved', 'denied', 'expired'))
    EXECUTE FUNCTION notifications_enqueue();
