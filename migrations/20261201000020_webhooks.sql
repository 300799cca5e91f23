-- Webhooks: endpoints registered by administrators, and a queue of deliveries filled by a
-- trigger on session_events in the transition's own transaction and drained by the webhook
-- sender (src/webhooks) outside it, so a slow or dead endpoint never delays a transition.

CREATE TABLE webhook_endpoints (
    id                uuid PRIMARY KEY,
    url               text NOT NULL,
    -- The signing secret, sealed with the key file (AES-256-GCM, the endpoint id as
    -- associated data); never shown again after saving.
    secret_ciphertext bytea NOT NULL,
    -- Every event type, including types added later.
    all_events        boolean NOT NULL DEFAULT true,
    -- Otherwise these: request.created, request.decision, session.status_changed.
    events            text[] NOT NULL DEFAULT '{}',
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_url_length CHECK (char_length(url) BETWEEN 1 AND 2000),
    CONSTRAINT webhook_endpoints_events CHECK (
        events <@ ARRAY['request.created', 'request.decision', 'session.status_changed']::text[]
        AND (all_events OR cardinality(events) > 0)
    )
);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event delivered; NULL for a test event.
    event_id        bigint REFERENCES session_events (id),
    event_type      text NOT NULL,
    -- The JSON body, fixed when queued (the facts as they were at the transition).
    payload         jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    -- When the sender should (re)try; NULL once delivered or given up. A sender working on
    -- a row pushes it ahead (a lease), so other instances leave it alone.
    next_attempt_at timestamptz DEFAULT now(),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    -- The HTTP status of the last attempt (NULL: no answer).
    response_code   integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_type CHECK (event_type IN
        ('request.created', 'request.decision', 'session.status_changed', 'test')),
    CONSTRAINT webhook_deliveries_attempts CHECK (attempts BETWEEN 0 AND 100),
    CONSTRAINT webhook_deliveries_finished CHECK (
        NOT (delivered_at IS NOT NULL AND gave_up_at IS NOT NULL)
        AND (next_attempt_at IS NULL OR (delivered_at IS NULL AND gave_up_at IS NULL))
    ),
    CONSTRAINT webhook_deliveries_last_error_length CHECK (char_length(last_error) <= 2000)
);
-- The sender's claim: the rows still to do, oldest due first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, created_at)
    WHERE next_attempt_at IS NOT NULL;
-- The delivery log of an endpoint, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- Queues one delivery per enabled endpoint that wants the event. Written so that it cannot
-- fail: the payload is built from columns that are always there, and an event of no type
-- queues nothing. A decision that also changes the status (approved, denied) has the type
-- request.decision, and reaches endpoints that want either type.
CREATE FUNCTION webhook_deliveries_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text;
    status_change boolean;
    body jsonb;
BEGIN
    status_change := NEW.to_status IS NOT NULL AND NEW.to_status IS DISTINCT FROM NEW.from_status;
    t := CASE
        WHEN NEW.kind = 'requested' THEN 'request.created'
        WHEN NEW.kind IN ('approval', 'tier_approved', 'approved', 'denied') THEN 'request.decision'
        WHEN status_change THEN 'session.status_changed'
    END;
    IF t IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_build_object(
               'type', t,
               'event_id', NEW.id,
               'event', NEW.kind,
               'occurred_at', to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'actor', CASE WHEN NEW.actor_id IS NULL THEN NULL
                             ELSE jsonb_build_object('id', NEW.actor_id, 'name', NEW.actor_name) END,
               'comment', NEW.comment,
               'session', jsonb_build_object(
                   'id', s.id,
                   'resource', s.resource_name,
                   'status', coalesce(NEW.to_status, s.status),
                   'from_status', NEW.from_status,
                   'starts_at', to_char(s.requested_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'ends_at', to_char(s.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
               'request', jsonb_build_object(
                   'id', r.id,
                   'activity', r.activity_name,
                   'ticket', r.ticket_number,
                   'requester', u.username))
    INTO body
    FROM activity_sessions s
    JOIN requests r ON r.id = s.request_id
    JOIN users u ON u.id = r.requester_id
    WHERE s.id = NEW.session_id;
    IF body IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
    SELECT e.id, NEW.id, t, body
    FROM webhook_endpoints e
    WHERE e.enabled
      AND (e.all_events OR t = ANY (e.events)
           OR (status_change AND 'session.status_changed' = ANY (e.events)));
    RETURN NULL;
END;
$$;
CREATE TRIGGER session_events_enqueue_webhooks
    AFTER INSERT ON session_events
    FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_enqueue();

-- Ticket validation: a connection profile may name an endpoint of the ticket system that the
-- wizard's Notes page asks whether the ticket exists and is open (src/ticket_validation.rs).
ALTER TABLE connection_profiles
    ADD COLUMN ticket_validator_url text,
    ADD COLUMN ticket_validator_timeout_seconds integer NOT NULL DEFAULT 5,
    -- 'block': the requester cannot go on unless the ticket is confirmed open;
    -- 'warn': the requester goes on, and the warning is stored with the request.
    ADD COLUMN ticket_validator_on_failure text NOT NULL DEFAULT 'block',
    ADD CONSTRAINT connection_profiles_validator_url CHECK (char_length(ticket_validator_url) BETWEEN 1 AND 2000),
    ADD CONSTRAINT connection_profiles_validator_timeout CHECK (ticket_validator_timeout_seconds BETWEEN 1 AND 30),
    ADD CONSTRAINT connection_profiles_validator_on_failure CHECK (ticket_validator_on_failure IN ('block', 'warn'));

-- What the validator said about the request's ticket (NULL: not checked).
ALTER TABLE requests
    ADD COLUMN ticket_check_outcome text,
    ADD COLUMN ticket_check_message text,
    ADD CONSTRAINT requests_ticket_check CHECK (
        (ticket_check_outcome IS NULL) = (ticket_check_message IS NULL)
        AND ticket_check_outcome IN ('open', 'closed', 'unknown', 'failed')
        AND char_length(ticket_check_message) <= 1000
    );
